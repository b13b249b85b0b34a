//! A conv encoder–decoder segmentation network: the segmenter whose predictions the case
//! study scores, with its mean predictive entropy and mean max-softmax confidence as the
//! free baselines.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Module, VarBuilder, VarMap};
use gnsm_models::layers::{conv2d, group_norm, Conv2d, GroupNorm};
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

/// Files written before normalisation was a setting hold the network without it.
fn no_norm() -> usize {
    0
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
    /// GroupNorm groups after every 3×3 conv, followed by SiLU (0: no normalisation, ReLU
    /// after each conv, as in files written before this setting). Must divide `channels`.
    #[serde(default = "no_norm")]
    pub groups: usize,
    /// Class balance of the cross-entropy: each class's pixels weigh
    /// `(median share / class share)^class_balance`, the shares counted over the training
    /// pairs' labelled pixels (0: plain cross-entropy; 1: median-frequency balancing, which
    /// lifts small classes such as poles and signs; the default 0.5 is the CamVid study's
    /// choice on val Dice).
    #[serde(default)]
    pub class_balance: f64,
    /// Photometric jitter of the training images: each drawn image becomes
    /// `clamp(a·(m + c·(x − m)))` with brightness `a` and contrast `c` uniform in
    /// `[1 − jitter, 1 + jitter]` and `m` the image's mean (0: none), an augmentation
    /// against lighting changes (0.3 lowered the CamVid study's val Dice, so it is off by
    /// default).
    #[serde(default)]
    pub jitter: f64,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        Self {
            classes: 11,
            channels: 32,
            depth: 3,
            groups: 8,
            class_balance: 0.5,
            jitter: 0.0,
            seed: 0,
        }
    }
}

/// A 3×3 conv followed by GroupNorm + SiLU, or by ReLU in networks without normalisation.
struct Block {
    conv: Conv2d,
    norm: Option<GroupNorm>,
}

impl Block {
    /// The conv `name` (its variables keep the names of the network without normalisation)
    /// and its norm `name_norm`.
    fn new(
        inp: usize,
        out: usize,
        stride: usize,
        groups: usize,
        name: &str,
        vb: &VarBuilder<'_>,
    ) -> candle_core::Result<Self> {
        let norm = match groups {
            0 => None,
            g => Some(group_norm(g, out, 1e-5, vb.pp(format!("{name}_norm")))?),
        };
        Ok(Self {
            conv: conv2d(inp, out, 3, stride, 1, vb.pp(name))?,
            norm,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.conv.forward(x)?;
        match &self.norm {
            Some(norm) => norm.forward_silu(&y),
            None => y.relu(),
        }
    }
}

/// Photometric jitter in place: `clamp(brightness·(m + contrast·(x − m)), 0, 1)` with `m`
/// the mean over all of the image's values.
fn jitter(image: &mut [f32], brightness: f32, contrast: f32) {
    let m = image.iter().map(|&v| f64::from(v)).sum::<f64>() / image.len().max(1) as f64;
    let m = m as f32;
    for v in image {
        *v = (brightness * (m + contrast * (*v - m))).clamp(0.0, 1.0);
    }
}

/// Per-class weights `(median share / share)^power` of the labelled (non-void) pixels of
/// `pairs`; classes without training pixels weigh 1 (they never occur in the loss).
pub(crate) fn class_weights(
    pairs: &[SegmentationPair],
    classes: usize,
    void: u8,
    power: f64,
) -> Vec<f32> {
    let mut counts = vec![0u64; classes];
    for c in pairs.iter().flat_map(|p| &p.mask) {
        if *c != void && usize::from(*c) < classes {
            counts[usize::from(*c)] += 1;
        }
    }
    let mut present: Vec<u64> = counts.iter().copied().filter(|&n| n > 0).collect();
    if present.is_empty() || power == 0.0 {
        return vec![1.0; classes];
    }
    present.sort_unstable();
    let mid = present.len() / 2;
    let median = if present.len() % 2 == 1 {
        present[mid] as f64
    } else {
        (present[mid - 1] + present[mid]) as f64 / 2.0
    };
    counts
        .iter()
        .map(|&n| {
            if n == 0 {
                1.0
            } else {
                (median / n as f64).powf(power) as f32
            }
        })
        .collect()
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
/// on the way up, and a 1×1 conv to class logits; each 3×3 conv is followed by GroupNorm
/// and SiLU (or by ReLU alone: [`SegmenterConfig::groups`]).
pub struct Segmenter {
    config: SegmenterConfig,
    varmap: VarMap,
    stem: [Block; 2],
    /// Per level (from the top): the stride-2 conv and the conv after it.
    down: Vec<[Block; 2]>,
    /// Per level (from the top): the conv after up-sampling and concatenating the skip.
    up: Vec<Block>,
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
        if config.groups > 0 && config.channels % config.groups != 0 {
            return Err(SegmentationError::Invalid(format!(
                "segmenter GroupNorm groups ({}) must divide the channels ({})",
                config.groups, config.channels
            )));
        }
        if !(config.class_balance.is_finite() && config.class_balance >= 0.0) {
            return Err(SegmentationError::Invalid(format!(
                "segmenter class balance must be finite and non-negative, got {}",
                config.class_balance
            )));
        }
        if !(0.0..1.0).contains(&config.jitter) {
            return Err(SegmentationError::Invalid(format!(
                "segmenter jitter must lie in [0, 1), got {}",
                config.jitter
            )));
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let (c, g) = (config.channels, config.groups);
        let width = |level: usize| c << level;
        let stem = [
            Block::new(3, c, 1, g, "conv0", &vb)?,
            Block::new(c, c, 1, g, "conv1", &vb)?,
        ];
        let mut down = Vec::with_capacity(config.depth);
        let mut up = Vec::with_capacity(config.depth);
        for i in 1..=config.depth {
            let (above, here) = (width(i - 1), width(i));
            down.push([
                Block::new(above, here, 2, g, &level_name("down", i), &vb)?,
                Block::new(here, here, 1, g, &level_name("mid", i), &vb)?,
            ]);
            up.push(Block::new(
                here + above,
                above,
                1,
                g,
                &level_name("up", i),
                &vb,
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
        let mut x = self.stem[1].forward(&self.stem[0].forward(images)?)?;
        let mut skips = Vec::with_capacity(self.down.len());
        for [stride2, block] in &self.down {
            skips.push(x.clone());
            x = block.forward(&stride2.forward(&x)?)?;
        }
        for (block, skip) in self.up.iter().zip(skips).rev() {
            x = block.forward(&Tensor::cat(&[&upsample2(&x)?, &skip], 1)?)?;
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

    /// Train with per-pixel cross-entropy (void pixels ignored; classes weighted by
    /// [`SegmenterConfig::class_balance`]), AdamW, a cosine learning rate from
    /// `settings.lr`, seeded windows ([`LoopConfig::crop`]) and seeded horizontal flips of
    /// half the pairs; `on_step(step, loss, model)` runs after every step (checkpoints,
    /// progress).
    ///
    /// # Errors
    /// [`SegmentationError::Invalid`] without pairs or for settings that do not fit them
    /// ([`LoopConfig`]), or whatever `on_step` or candle returns.
    pub fn train(
        &self,
        pairs: &[SegmentationPair],
        void: u8,
        settings: &LoopConfig,
        on_step: &mut dyn FnMut(usize, f64, &Segmenter) -> Result<(), SegmentationError>,
    ) -> Result<(), SegmentationError> {
        settings.check(pairs, 1 << self.config.depth)?;
        let device = self.device();
        let mut optimizer = AdamW::new(self.named_vars(), 0.9, 0.999, 1e-8, 0.0)?;
        let mut rng = NoiseRng::seed_from_u64(settings.seed);
        let mut order: Vec<usize> = Vec::new();
        let k = self.config.classes;
        let weights = class_weights(pairs, k, void, self.config.class_balance);
        for step in 1..=settings.steps {
            let batch = next_batch(&mut order, pairs.len(), settings.batch_size, &mut rng);
            let chosen: Vec<SegmentationPair> = batch
                .iter()
                .map(|&i| {
                    let window = settings.window(&pairs[i], &mut rng);
                    let mut pair = if rng.random::<bool>() {
                        flipped(&window)
                    } else {
                        window.into_owned()
                    };
                    if self.config.jitter > 0.0 {
                        let j = self.config.jitter;
                        let brightness = rng.random_range(1.0 - j..=1.0 + j) as f32;
                        let contrast = rng.random_range(1.0 - j..=1.0 + j) as f32;
                        jitter(&mut pair.image, brightness, contrast);
                    }
                    pair
                })
                .collect();
            let (h, w) = (chosen[0].height, chosen[0].width);
            // Weighted one-hot targets (B, K, H, W); void pixels all zero, so they add
            // nothing. The loss is the weighted mean over labelled pixels.
            let mut target = vec![0f32; chosen.len() * k * h * w];
            let mut total = 0f64;
            for (b, p) in chosen.iter().enumerate() {
                for (i, &c) in p.mask.iter().enumerate() {
                    if c != void && usize::from(c) < k {
                        let weight = weights[usize::from(c)];
                        target[(b * k + usize::from(c)) * h * w + i] = weight;
                        total += f64::from(weight);
                    }
                }
            }
            let target = Tensor::from_vec(target, (chosen.len(), k, h, w), &device)?;
            let refs: Vec<&SegmentationPair> = chosen.iter().collect();
            let lr = COSINE.rate(settings.lr, 0, settings.steps, step);
            // On a worker of rayon's pool, like the score model's step: the convolutions'
            // gemm calls and the fused norms split by work stealing.
            let loss = rayon::scope(|_| -> Result<f32, SegmentationError> {
                let logp = log_softmax_classes(&self.forward(&stack_images(&refs, &device)?)?)?;
                let loss = ((logp * target)?.sum_all()?.neg()? / total.max(1e-12))?;
                let grads = loss.backward()?;
                optimizer.step(&grads, lr, 1.0)?;
                Ok(loss.to_scalar::<f32>()?)
            })?;
            on_step(step, f64::from(loss), self)?;
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
            groups: 2,
            class_balance: 0.5,
            jitter: 0.2,
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
    fn class_weights_are_median_share_over_share_to_the_power() {
        // Labelled pixels: class 0 ×6, class 1 ×2, class 2 ×1 (void 9 ignored), class 3 none.
        let pair = SegmentationPair {
            name: "a".into(),
            height: 2,
            width: 5,
            image: vec![0.0; 30],
            mask: vec![0, 0, 0, 0, 0, 0, 1, 1, 2, 9],
        };
        let w = class_weights(std::slice::from_ref(&pair), 4, 9, 1.0);
        // Median of (6, 2, 1) is 2.
        assert_eq!(w, vec![2.0 / 6.0, 1.0, 2.0, 1.0]);
        let half = class_weights(std::slice::from_ref(&pair), 4, 9, 0.5);
        assert!((half[0] - (1.0f32 / 3.0).sqrt()).abs() < 1e-7);
        assert!((half[2] - 2f32.sqrt()).abs() < 1e-7);
        assert_eq!(class_weights(&[pair], 4, 9, 0.0), vec![1.0; 4]);
    }

    #[test]
    fn normalised_networks_name_their_norms_and_check_the_groups() {
        let config = SegmenterConfig {
            classes: 3,
            channels: 4,
            depth: 1,
            groups: 2,
            class_balance: 0.0,
            jitter: 0.0,
            seed: 1,
        };
        let names: Vec<String> = Segmenter::new(config.clone(), &Device::Cpu)
            .unwrap()
            .named_vars()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        // Five 3×3 convs, each with a norm's gain and shift, and the 1×1 output conv.
        assert_eq!(names.len(), 5 * 4 + 2, "{names:?}");
        assert!(names.contains(&"conv0_norm.weight".to_string()));
        for bad in [
            SegmenterConfig {
                groups: 3,
                ..config.clone()
            },
            SegmenterConfig {
                class_balance: f64::NAN,
                ..config.clone()
            },
            SegmenterConfig {
                jitter: 1.0,
                ..config
            },
        ] {
            assert!(Segmenter::new(bad, &Device::Cpu).is_err());
        }
    }

    #[test]
    fn jitter_scales_contrast_about_the_mean_then_brightness_and_clamps() {
        // Mean 0.5: contrast 2 maps 0.25 → 0, 0.75 → 1; brightness 0.5 halves that.
        let mut image = vec![0.25, 0.75, 0.5, 0.5];
        jitter(&mut image, 0.5, 2.0);
        assert_eq!(image, vec![0.0, 0.5, 0.25, 0.25]);
        let mut bright = vec![0.9, 0.1];
        jitter(&mut bright, 1.5, 1.0);
        assert_eq!(bright[0], 1.0);
        assert!((bright[1] - 0.15).abs() < 1e-6, "{}", bright[1]);
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
