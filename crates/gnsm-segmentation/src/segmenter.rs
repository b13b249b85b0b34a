//! A small conv segmentation network: the predictions (at several training stages) whose
//! quality the case study scores, with its mean predictive entropy as the free baseline.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Conv2d, Conv2dConfig, Module, VarBuilder, VarMap};
use gnsm_models::{init_vars, load_envelope, save_envelope, sorted_vars, upsample2, AdamW};
use gnsm_noise::NoiseRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::batch::{next_batch, stack_images};
use crate::{LoopConfig, SegmentationError, SegmentationPair};

/// Format name and version of a saved [`Segmenter`].
const FORMAT: &str = "gnsm-segmenter";
const VERSION: u32 = 1;

/// Per-pixel log-softmax over the class axis of (B, K, H, W) logits, from plain ops (the
/// shift is detached: it only guards exp).
fn log_softmax_classes(logits: &Tensor) -> candle_core::Result<Tensor> {
    let max = logits.max_keepdim(1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Settings of a [`Segmenter`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SegmenterConfig {
    /// Classes predicted (void excluded).
    pub classes: usize,
    /// Channels at full resolution (twice that at half resolution).
    pub channels: usize,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        Self {
            classes: 11,
            channels: 16,
            seed: 0,
        }
    }
}

/// A small encoder–decoder segmentation network: two 3×3 convs, a stride-2 conv and
/// another at half resolution, nearest up-sampling, a skip, a 3×3 and a 1×1 conv to class
/// logits. Small on purpose: its early checkpoints are poor and its late ones decent, which
/// is the spread of prediction quality the case study needs.
pub struct Segmenter {
    config: SegmenterConfig,
    varmap: VarMap,
    convs: Vec<Conv2d>,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter")
            .field("config", &self.config)
            .finish()
    }
}

impl Segmenter {
    /// A freshly (seeded) initialised network.
    ///
    /// # Errors
    /// [`SegmentationError::Invalid`] for zero classes or channels, or a candle error.
    pub fn new(config: SegmenterConfig, device: &Device) -> Result<Self, SegmentationError> {
        if config.classes < 2 || config.channels == 0 {
            return Err(SegmentationError::Invalid(format!(
                "segmenter needs at least 2 classes and 1 channel, got {} and {}",
                config.classes, config.channels
            )));
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let c = config.channels;
        let pad = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let down = Conv2dConfig {
            padding: 1,
            stride: 2,
            ..Default::default()
        };
        let convs = vec![
            candle_nn::conv2d(3, c, 3, pad, vb.pp("conv0"))?,
            candle_nn::conv2d(c, c, 3, pad, vb.pp("conv1"))?,
            candle_nn::conv2d(c, 2 * c, 3, down, vb.pp("down"))?,
            candle_nn::conv2d(2 * c, 2 * c, 3, pad, vb.pp("mid"))?,
            candle_nn::conv2d(3 * c, c, 3, pad, vb.pp("up"))?,
            candle_nn::conv2d(c, config.classes, 1, Default::default(), vb.pp("out"))?,
        ];
        let model = Self {
            config,
            varmap,
            convs,
        };
        let mut rng = NoiseRng::seed_from_u64(model.config.seed);
        init_vars(&model.named_vars(), &mut rng, device)?;
        Ok(model)
    }

    /// The settings.
    pub fn config(&self) -> &SegmenterConfig {
        &self.config
    }

    /// The trainable variables, sorted by name.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        sorted_vars(&self.varmap)
    }

    /// Logits (B, classes, H, W) of images (B, 3, H, W); H and W must be even.
    ///
    /// # Errors
    /// A candle error for a wrong shape.
    pub fn forward(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let c = &self.convs;
        let skip = c[1].forward(&c[0].forward(images)?.relu()?)?.relu()?;
        let low = c[3].forward(&c[2].forward(&skip)?.relu()?)?.relu()?;
        let up = Tensor::cat(&[&upsample2(&low)?, &skip], 1)?;
        c[5].forward(&c[4].forward(&up)?.relu()?)
    }

    /// Predicted masks (argmax class per pixel, row-major per pair) and each pair's mean
    /// per-pixel predictive entropy (nats).
    ///
    /// # Errors
    /// A candle error.
    pub fn predict(
        &self,
        pairs: &[&SegmentationPair],
        batch: usize,
    ) -> Result<(Vec<Vec<u8>>, Vec<f64>), SegmentationError> {
        let device = self.convs[0].weight().device().clone();
        let mut masks = Vec::with_capacity(pairs.len());
        let mut entropies = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(batch.max(1)) {
            let logp = log_softmax_classes(&self.forward(&stack_images(chunk, &device)?)?)?;
            let labels: Vec<Vec<Vec<u32>>> = logp.argmax(1)?.to_vec3()?;
            let entropy: Vec<f32> = (logp.exp()? * &logp)?
                .sum(1)?
                .neg()?
                .mean((1, 2))?
                .to_vec1()?;
            for (mask, e) in labels.into_iter().zip(entropy) {
                masks.push(mask.into_iter().flatten().map(|v| v as u8).collect());
                entropies.push(f64::from(e));
            }
        }
        Ok((masks, entropies))
    }

    /// Train with per-pixel cross-entropy (void pixels ignored), AdamW and a constant
    /// learning rate; `on_step(step, loss, model)` runs after every step (checkpoints,
    /// progress).
    ///
    /// # Errors
    /// [`SegmentationError::Invalid`] without pairs, or whatever `on_step` or candle returns.
    pub fn train(
        &self,
        pairs: &[SegmentationPair],
        void: u8,
        settings: &LoopConfig,
        on_step: &mut dyn FnMut(usize, f64, &Segmenter) -> Result<(), SegmentationError>,
    ) -> Result<(), SegmentationError> {
        if pairs.is_empty() {
            return Err(SegmentationError::Invalid("no training pairs".into()));
        }
        let device = self.convs[0].weight().device().clone();
        let mut optimizer = AdamW::new(self.named_vars(), 0.9, 0.999, 1e-8, 0.0)?;
        let mut rng = NoiseRng::seed_from_u64(settings.seed);
        let mut order: Vec<usize> = Vec::new();
        let k = self.config.classes;
        for step in 1..=settings.steps {
            let batch = next_batch(&mut order, pairs.len(), settings.batch_size, &mut rng);
            let chosen: Vec<&SegmentationPair> = batch.iter().map(|&i| &pairs[i]).collect();
            let (h, w) = (chosen[0].height, chosen[0].width);
            // One-hot targets (B, K, H, W); void pixels all zero, so they add nothing.
            let mut target = vec![0f32; chosen.len() * k * h * w];
            let mut valid = 0usize;
            for (b, p) in chosen.iter().enumerate() {
                for (i, &c) in p.mask.iter().enumerate() {
                    if c != void && usize::from(c) < k {
                        target[(b * k + usize::from(c)) * h * w + i] = 1.0;
                        valid += 1;
                    }
                }
            }
            let target = Tensor::from_vec(target, (chosen.len(), k, h, w), &device)?;
            let logp = log_softmax_classes(&self.forward(&stack_images(&chosen, &device)?)?)?;
            let loss = ((logp * target)?.sum_all()?.neg()? / valid.max(1) as f64)?;
            let grads = loss.backward()?;
            optimizer.step(&grads, settings.lr, 1.0)?;
            on_step(step, f64::from(loss.to_scalar::<f32>()?), self)?;
        }
        Ok(())
    }

    /// Save the configuration and weights: gnsm-models' checksummed safetensors envelope,
    /// written atomically.
    ///
    /// # Errors
    /// [`SegmentationError::Model`] when the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SegmentationError> {
        let tensors: Vec<(String, Tensor)> = self
            .named_vars()
            .into_iter()
            .map(|(name, var)| (name, var.as_tensor().clone()))
            .collect();
        save_envelope(path.as_ref(), FORMAT, VERSION, &self.config, &tensors)?;
        Ok(())
    }

    /// Load a network written by [`Segmenter::save`]; the file's checksum, configuration
    /// and every tensor's shape are checked.
    ///
    /// # Errors
    /// [`SegmentationError::Model`] for a foreign, newer, damaged or incomplete file.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, SegmentationError> {
        let path = path.as_ref();
        let file = load_envelope::<SegmenterConfig>(path, FORMAT, VERSION, device)?;
        let model = Self::new(file.header, device)?;
        let bad = |reason: String| {
            SegmentationError::Model(gnsm_models::ModelError::Checkpoint {
                path: path.display().to_string(),
                reason,
            })
        };
        let vars = model.named_vars();
        if vars.len() != file.tensors.len() {
            return Err(bad(format!(
                "{} tensors, the network has {}",
                file.tensors.len(),
                vars.len()
            )));
        }
        for (name, var) in &vars {
            let tensor = file
                .tensors
                .get(name)
                .ok_or_else(|| bad(format!("missing tensor {name}")))?;
            if tensor.dims() != var.dims() {
                return Err(bad(format!(
                    "tensor {name} is {:?}, the network's is {:?}",
                    tensor.dims(),
                    var.dims()
                )));
            }
            var.set(tensor)?;
        }
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_rows_normalise() {
        let logits = Tensor::new(&[[[[1.0f32]], [[2.0]], [[0.5]]]], &Device::Cpu).unwrap();
        let p: Vec<f32> = log_softmax_classes(&logits)
            .unwrap()
            .exp()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let e = [1f32.exp(), 2f32.exp(), 0.5f32.exp()];
        assert!((p[1] - e[1] / e.iter().sum::<f32>()).abs() < 1e-6);
    }

    #[test]
    fn saved_networks_load_identically_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.safetensors");
        let config = SegmenterConfig {
            classes: 3,
            channels: 4,
            seed: 7,
        };
        let model = Segmenter::new(config.clone(), &Device::Cpu).unwrap();
        model.save(&path).unwrap();
        let loaded = Segmenter::load(&path, &Device::Cpu).unwrap();
        assert_eq!(loaded.config(), &config);
        let images = Tensor::rand(0f32, 1.0, (1, 3, 4, 4), &Device::Cpu).unwrap();
        let a: Vec<f32> = model
            .forward(&images)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let b: Vec<f32> = loaded
            .forward(&images)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(a, b);

        // One flipped byte near the end (inside a tensor) fails the checksum.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = Segmenter::load(&path, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("seg.safetensors"), "{err}");
    }
}
