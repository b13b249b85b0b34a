//! A conv encoder–decoder segmentation network: the segmenter whose predictions the case
//! study scores, with its mean predictive entropy and mean max-softmax confidence as the
//! free baselines.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Module, VarBuilder, VarMap};
use gnsm_models::layers::{conv2d, Conv2d};
use gnsm_models::{
    init_vars, load_envelope, save_envelope, sorted_vars, upsample2, AdamW, LrSchedule,
};
use gnsm_noise::NoiseRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::batch::{next_batch, stack_images};
use crate::{LoopConfig, SegmentationError, SegmentationPair};

/// Format name and version of a saved [`Segmenter`].
const FORMAT: &str = "gnsm-segmenter";
const VERSION: u32 = 1;

/// The segmenter's learning rate: cosine from the base rate to this floor over the steps.
const COSINE: LrSchedule = LrSchedule::Cosine { min_lr: 1e-5 };

/// Per-pixel log-softmax over the class axis of (B, K, H, W) logits, from plain ops (the
/// shift is detached: it only guards exp).
fn log_softmax_classes(logits: &Tensor) -> candle_core::Result<Tensor> {
    let max = logits.max_keepdim(1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Files written before the depth was a setting hold the one-level network.
fn one_level() -> usize {
    1
}

/// Settings of a [`Segmenter`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SegmenterConfig {
    /// Classes predicted (void excluded).
    pub classes: usize,
    /// Channels at full resolution (doubled at every down-sampling).
    pub channels: usize,
    /// Down-samplings (stride-2 convs); image sides must be multiples of `2^depth`.
    #[serde(default = "one_level")]
    pub depth: usize,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        Self {
            classes: 11,
            channels: 32,
            depth: 3,
            seed: 0,
        }
    }
}

/// One prediction of a [`Segmenter`]: the mask and the segmenter's own confidence in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Argmax class per pixel, row-major.
    pub mask: Vec<u8>,
    /// Mean per-pixel predictive entropy (nats): high when the segmenter is unsure.
    pub entropy: f64,
    /// Mean per-pixel largest class probability: low when the segmenter is unsure.
    pub confidence: f64,
}

/// A UNet-style segmentation network: two 3×3 convs at full resolution, then per level a
/// stride-2 conv and a 3×3 conv, nearest up-sampling with a skip and a 3×3 conv per level
/// on the way up, and a 1×1 conv to class logits (ReLU throughout).
pub struct Segmenter {
    config: SegmenterConfig,
    varmap: VarMap,
    stem: [Conv2d; 2],
    /// Per level (from the top): the stride-2 conv and the conv after it.
    down: Vec<[Conv2d; 2]>,
    /// Per level (from the top): the conv after up-sampling and concatenating the skip.
    up: Vec<Conv2d>,
    out: Conv2d,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter")
            .field("config", &self.config)
            .finish()
    }
}

/// The variable-name suffix of level `i` (1-based): none for the first, so that one-level
/// files written before the depth was a setting keep their names.
fn level_name(base: &str, i: usize) -> String {
    if i == 1 {
        base.to_string()
    } else {
        format!("{base}{i}")
    }
}

/// A pair mirrored left to right (image and mask).
fn flipped(pair: &SegmentationPair) -> SegmentationPair {
    fn mirror<T: Copy>(rows: &[T], width: usize) -> Vec<T> {
        rows.chunks(width)
            .flat_map(|row| row.iter().rev().copied())
            .collect()
    }
    SegmentationPair {
        image: mirror(&pair.image, pair.width),
        mask: mirror(&pair.mask, pair.width),
        ..pair.clone()
    }
}

impl Segmenter {
    /// A freshly (seeded) initialised network.
    ///
    /// # Errors
    /// [`SegmentationError::Invalid`] for zero classes or channels, or a candle error.
    pub fn new(config: SegmenterConfig, device: &Device) -> Result<Self, SegmentationError> {
        if config.classes < 2 || config.channels == 0 || config.depth == 0 || config.depth > 6 {
            return Err(SegmentationError::Invalid(format!(
                "segmenter needs at least 2 classes, 1 channel and a depth in 1..=6, got {}, {} \
                 and {}",
                config.classes, config.channels, config.depth
            )));
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let c = config.channels;
        let width = |level: usize| c << level;
        let stem = [
            conv2d(3, c, 3, 1, 1, vb.pp("conv0"))?,
            conv2d(c, c, 3, 1, 1, vb.pp("conv1"))?,
        ];
        let mut down = Vec::with_capacity(config.depth);
        let mut up = Vec::with_capacity(config.depth);
        for i in 1..=config.depth {
            let (above, here) = (width(i - 1), width(i));
            down.push([
                conv2d(above, here, 3, 2, 1, vb.pp(level_name("down", i)))?,
                conv2d(here, here, 3, 1, 1, vb.pp(level_name("mid", i)))?,
            ]);
            up.push(conv2d(
                here + above,
                above,
                3,
                1,
                1,
                vb.pp(level_name("up", i)),
            )?);
        }
        let out = conv2d(c, config.classes, 1, 1, 0, vb.pp("out"))?;
        let model = Self {
            config,
            varmap,
            stem,
            down,
            up,
            out,
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

    /// Logits (B, classes, H, W) of images (B, 3, H, W); H and W must be multiples of
    /// `2^depth`.
    ///
    /// # Errors
    /// A candle error for a wrong shape.
    pub fn forward(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = self.stem[1]
            .forward(&self.stem[0].forward(images)?.relu()?)?
            .relu()?;
        let mut skips = Vec::with_capacity(self.down.len());
        for [stride2, conv] in &self.down {
            skips.push(x.clone());
            x = conv.forward(&stride2.forward(&x)?.relu()?)?.relu()?;
        }
        for (conv, skip) in self.up.iter().zip(skips).rev() {
            x = conv
                .forward(&Tensor::cat(&[&upsample2(&x)?, &skip], 1)?)?
                .relu()?;
        }
        self.out.forward(&x)
    }

    /// The device the weights live on.
    fn device(&self) -> Device {
        self.out.weight().device().clone()
    }

    /// Predictions (mask, mean entropy, mean max-softmax confidence) of pairs' images, `batch`
    /// images per forward pass.
    ///
    /// # Errors
    /// A candle error.
    pub fn predict(
        &self,
        pairs: &[&SegmentationPair],
        batch: usize,
    ) -> Result<Vec<Prediction>, SegmentationError> {
        let device = self.device();
        let mut out = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(batch.max(1)) {
            let logp = log_softmax_classes(&self.forward(&stack_images(chunk, &device)?)?)?;
            let labels: Vec<Vec<Vec<u32>>> = logp.argmax(1)?.to_vec3()?;
            let entropy: Vec<f32> = (logp.exp()? * &logp)?
                .sum(1)?
                .neg()?
                .mean((1, 2))?
                .to_vec1()?;
            let confidence: Vec<f32> = logp.max(1)?.exp()?.mean((1, 2))?.to_vec1()?;
            for ((mask, e), c) in labels.into_iter().zip(entropy).zip(confidence) {
                out.push(Prediction {
                    mask: mask.into_iter().flatten().map(|v| v as u8).collect(),
                    entropy: f64::from(e),
                    confidence: f64::from(c),
                });
            }
        }
        Ok(out)
    }

    /// Train with per-pixel cross-entropy (void pixels ignored), AdamW, a cosine learning
    /// rate from `settings.lr` and seeded horizontal flips of half the pairs;
    /// `on_step(step, loss, model)` runs after every step (checkpoints, progress).
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
        let device = self.device();
        let mut optimizer = AdamW::new(self.named_vars(), 0.9, 0.999, 1e-8, 0.0)?;
        let mut rng = NoiseRng::seed_from_u64(settings.seed);
        let mut order: Vec<usize> = Vec::new();
        let k = self.config.classes;
        for step in 1..=settings.steps {
            let batch = next_batch(&mut order, pairs.len(), settings.batch_size, &mut rng);
            let chosen: Vec<SegmentationPair> = batch
                .iter()
                .map(|&i| {
                    if rng.random::<bool>() {
                        flipped(&pairs[i])
                    } else {
                        pairs[i].clone()
                    }
                })
                .collect();
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
            let refs: Vec<&SegmentationPair> = chosen.iter().collect();
            let logp = log_softmax_classes(&self.forward(&stack_images(&refs, &device)?)?)?;
            let loss = ((logp * target)?.sum_all()?.neg()? / valid.max(1) as f64)?;
            let grads = loss.backward()?;
            let lr = COSINE.rate(settings.lr, 0, settings.steps, step);
            optimizer.step(&grads, lr, 1.0)?;
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
            depth: 2,
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

    #[test]
    fn files_without_a_depth_hold_the_one_level_network() {
        let config: SegmenterConfig =
            serde_json::from_str(r#"{"classes": 3, "channels": 4, "seed": 1}"#).unwrap();
        assert_eq!(config.depth, 1);
        let names: Vec<String> = Segmenter::new(config, &Device::Cpu)
            .unwrap()
            .named_vars()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        // The names (and so the files) of the network before the depth was a setting.
        for layer in ["conv0", "conv1", "down", "mid", "up", "out"] {
            assert!(names.contains(&format!("{layer}.weight")), "{names:?}");
        }
        assert_eq!(names.len(), 12);
        let bad = SegmenterConfig {
            depth: 0,
            ..SegmenterConfig::default()
        };
        assert!(Segmenter::new(bad, &Device::Cpu).is_err());
    }

    #[test]
    fn flips_mirror_image_and_mask_alike() {
        let pair = SegmentationPair {
            name: "a".into(),
            height: 2,
            width: 3,
            image: (0..18).map(|v| v as f32).collect(),
            mask: vec![0, 1, 2, 3, 4, 5],
        };
        let f = flipped(&pair);
        assert_eq!(f.mask, vec![2, 1, 0, 5, 4, 3]);
        assert_eq!(&f.image[..6], &[2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
        assert_eq!(&f.image[12..], &[14.0, 13.0, 12.0, 17.0, 16.0, 15.0]);
        assert_eq!(flipped(&f), pair);
    }
}
