//! The segmentation case study (paper §6.2): a conv score network learns (image, mask)
//! pairs under Gumbel noise on the mask; MSMA on its score norms then flags (image,
//! predicted mask) pairs whose prediction is implausible for the image.
//!
//! Pieces: [`Segmenter`], a small conv segmentation network whose predictions (at several
//! training stages) are the masks to score, with its mean predictive entropy as the free
//! baseline; [`MaskScorer`], the conditional UNet score model of masks given images, trained
//! with the KL objective; [`fill_void`] for ground truths with ignored pixels. The example
//! `examples/segmentation.rs` composes them with msma's metrics.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Conv2d, Conv2dConfig, Module, VarBuilder, VarMap};
use gnsm_data::segmentation::SegmentationPair;
use gnsm_losses::{GnsmLoss, GroupSoftmax, GroupStrategy, LossConfig};
use gnsm_models::{init_vars, sorted_vars, upsample2, AdamW, UNetConfig, UNetModel};
use gnsm_noise::{
    perturb_batch, FeatureLayout, NoiseRng, NoiseSchedule, Perturbation, ScheduleConfig,
    LOG_ONE_HOT_COLD,
};
use msma::Matrix;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::GnsmError;

/// Replace void pixels by the nearest labelled class (repeated 4-neighbour growth), so a
/// ground truth can be compared with predictions, which never contain void. A mask that is
/// all void becomes class 0.
///
/// ```
/// let mask = [0, 9, 9, 1];
/// assert_eq!(gnsm::segmentation::fill_void(&mask, 1, 4, 9), vec![0, 0, 1, 1]);
/// ```
pub fn fill_void(mask: &[u8], height: usize, width: usize, void: u8) -> Vec<u8> {
    let mut out = mask.to_vec();
    loop {
        let before = out.clone();
        let mut changed = false;
        let mut left = false;
        for i in 0..out.len() {
            if before[i] != void {
                continue;
            }
            let (y, x) = (i / width, i % width);
            let neighbours = [
                (y > 0).then(|| i - width),
                (y + 1 < height).then(|| i + width),
                (x > 0).then(|| i - 1),
                (x + 1 < width).then(|| i + 1),
            ];
            match neighbours
                .into_iter()
                .flatten()
                .find(|&j| before[j] != void)
            {
                Some(j) => {
                    out[i] = before[j];
                    changed = true;
                }
                None => left = true,
            }
        }
        if !left {
            return out;
        }
        if !changed {
            return out
                .into_iter()
                .map(|v| if v == void { 0 } else { v })
                .collect();
        }
    }
}

/// Stack pairs' images into one (N, 3, H, W) tensor.
fn stack_images(pairs: &[&SegmentationPair], device: &Device) -> Result<Tensor, GnsmError> {
    let (h, w) = (pairs[0].height, pairs[0].width);
    let mut data = Vec::with_capacity(pairs.len() * 3 * h * w);
    for p in pairs {
        data.extend_from_slice(&p.image);
    }
    Ok(Tensor::from_vec(data, (pairs.len(), 3, h, w), device)?)
}

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
    /// [`GnsmError::Invalid`] for zero classes or channels, or a candle error.
    pub fn new(config: SegmenterConfig, device: &Device) -> Result<Self, GnsmError> {
        if config.classes < 2 || config.channels == 0 {
            return Err(GnsmError::Invalid(format!(
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
    ) -> Result<(Vec<Vec<u8>>, Vec<f64>), GnsmError> {
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
    /// [`GnsmError::Invalid`] without pairs, or whatever `on_step` or candle returns.
    pub fn train(
        &self,
        pairs: &[SegmentationPair],
        void: u8,
        settings: &StepSettings,
        on_step: &mut dyn FnMut(usize, f64, &Segmenter) -> Result<(), GnsmError>,
    ) -> Result<(), GnsmError> {
        if pairs.is_empty() {
            return Err(GnsmError::Invalid("no training pairs".into()));
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

    /// Save the weights (safetensors), atomically.
    ///
    /// # Errors
    /// [`GnsmError::Io`] or a candle error.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), GnsmError> {
        let path = path.as_ref();
        let tmp = path.with_extension("tmp");
        self.varmap.save(&tmp)?;
        std::fs::rename(&tmp, path).map_err(|source| GnsmError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Load weights saved by [`Segmenter::save`] into a network built from `config`.
    ///
    /// # Errors
    /// A candle error for a missing or mis-shaped tensor.
    pub fn load(
        config: SegmenterConfig,
        path: impl AsRef<Path>,
        device: &Device,
    ) -> Result<Self, GnsmError> {
        let mut model = Self::new(config, device)?;
        model.varmap.load(path)?;
        Ok(model)
    }
}

/// Step budget, batch, learning rate and seed of a training loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSettings {
    /// Optimizer steps.
    pub steps: usize,
    /// Pairs per step.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// Seed of the batch order (and of the noise, for the score model).
    pub seed: u64,
}

/// Indices of the next batch: epochs of seeded shuffles.
fn next_batch(order: &mut Vec<usize>, n: usize, batch: usize, rng: &mut NoiseRng) -> Vec<usize> {
    let mut out = Vec::with_capacity(batch);
    while out.len() < batch.min(n) {
        if order.is_empty() {
            *order = (0..n).collect();
            order.shuffle(rng);
        }
        out.push(order.pop().expect("refilled above"));
    }
    out
}

/// Settings of a [`MaskScorer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaskScoreConfig {
    /// The conditional UNet (`classes` = mask classes, void excluded).
    pub unet: UNetConfig,
    /// Temperatures: geometric from `tau_max` (level 0) to `tau_min` (the paper: 20 → 2).
    pub noise: ScheduleConfig,
}

impl Default for MaskScoreConfig {
    fn default() -> Self {
        Self {
            unet: UNetConfig {
                channels: 16,
                channel_mults: vec![1, 2, 2],
                groups: 4,
                embedding_size: 64,
                ..UNetConfig::default()
            },
            noise: ScheduleConfig {
                levels: 10,
                ..ScheduleConfig::default()
            },
        }
    }
}

/// A score model of masks given images: noisy log-one-hot mask channels and the image in,
/// per-pixel class logits out; scores are `-τ + τ·K·softmax(logits)` per pixel.
pub struct MaskScorer {
    model: UNetModel,
    schedule: NoiseSchedule,
    layout: FeatureLayout,
    groups: GroupSoftmax,
}

impl std::fmt::Debug for MaskScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskScorer")
            .field("config", self.model.config())
            .finish()
    }
}

/// Log-one-hot rows (pixel-major: H·W rows of K) of a mask.
fn log_one_hot_rows(mask: &[u8], classes: usize, out: &mut Vec<f32>) {
    for &c in mask {
        for k in 0..classes {
            out.push(if usize::from(c) == k {
                0.0
            } else {
                LOG_ONE_HOT_COLD
            });
        }
    }
}

impl MaskScorer {
    /// A fresh model.
    ///
    /// # Errors
    /// Invalid UNet or noise settings.
    pub fn new(config: &MaskScoreConfig, device: &Device) -> Result<Self, GnsmError> {
        Self::from_model(UNetModel::new(config.unet.clone(), device)?, config)
    }

    /// Wrap a (loaded) UNet.
    ///
    /// # Errors
    /// Invalid noise settings or class count.
    pub fn from_model(model: UNetModel, config: &MaskScoreConfig) -> Result<Self, GnsmError> {
        let layout = FeatureLayout::categorical(vec![model.config().classes])?;
        let groups = GroupSoftmax::new(&layout, GroupStrategy::Narrow, model.device())?;
        Ok(Self {
            schedule: config.noise.build()?,
            layout,
            groups,
            model,
        })
    }

    /// The network.
    pub fn model(&self) -> &UNetModel {
        &self.model
    }

    /// The noise schedule.
    pub fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    /// (B, 3 + K, H, W) network input from images and log-one-hot mask rows (B·H·W × K).
    fn input(&self, images: &Tensor, mask_rows: &[f32]) -> Result<Tensor, GnsmError> {
        let (b, _, h, w) = images.dims4()?;
        let k = self.layout.width();
        let masks = Tensor::from_slice(mask_rows, (b, h, w, k), self.model.device())?
            .permute((0, 3, 1, 2))?;
        Ok(Tensor::cat(&[images, &masks], 1)?)
    }

    /// Per-pixel logits as rows (B·H·W, K).
    fn logit_rows(&self, x: &Tensor, levels: &[u32]) -> Result<Tensor, GnsmError> {
        let (b, _, h, w) = x.dims4()?;
        let levels = Tensor::from_slice(levels, b, self.model.device())?;
        let out = self.model.forward(x, &levels)?;
        Ok(out
            .permute((0, 2, 3, 1))?
            .reshape((b * h * w, self.layout.width()))?)
    }

    /// Train on ground-truth pairs (masks without void: see [`fill_void`]) with the KL
    /// objective, a level drawn per pair per step, AdamW with global-norm clipping at 1 and a
    /// cosine learning rate; `on_step(step, loss, scorer)` runs after every step. Starts at
    /// `first_step` (for resuming from saved weights).
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] without pairs or for a mask value outside the classes; a
    /// candle error; whatever `on_step` returns.
    pub fn train(
        &self,
        pairs: &[SegmentationPair],
        settings: &StepSettings,
        first_step: usize,
        on_step: &mut dyn FnMut(usize, f64, &MaskScorer) -> Result<(), GnsmError>,
    ) -> Result<(), GnsmError> {
        let k = self.layout.width();
        if pairs.is_empty() {
            return Err(GnsmError::Invalid("no training pairs".into()));
        }
        if let Some(p) = pairs
            .iter()
            .find(|p| p.mask.iter().any(|&c| usize::from(c) >= k))
        {
            return Err(GnsmError::Invalid(format!(
                "{}: mask value outside 0..{k} (fill void pixels first)",
                p.name
            )));
        }
        let device = self.model.device().clone();
        let loss_fn = GnsmLoss::new(&self.layout, LossConfig::default(), &device)?;
        let mut optimizer = AdamW::new(self.model.named_vars(), 0.9, 0.999, 1e-8, 0.0)?;
        let mut rng = NoiseRng::seed_from_u64(settings.seed.wrapping_add(first_step as u64));
        let mut order = Vec::new();
        let mut noise = Perturbation::default();
        let mut clean = Vec::new();
        for step in first_step + 1..=settings.steps {
            let batch = next_batch(&mut order, pairs.len(), settings.batch_size, &mut rng);
            let chosen: Vec<&SegmentationPair> = batch.iter().map(|&i| &pairs[i]).collect();
            let pixels = chosen[0].height * chosen[0].width;
            let mut image_levels = Vec::with_capacity(chosen.len());
            self.schedule
                .sample_levels(&mut rng, chosen.len(), &mut image_levels);
            let pixel_levels: Vec<usize> = image_levels
                .iter()
                .flat_map(|&l| std::iter::repeat_n(l, pixels))
                .collect();
            clean.clear();
            for p in &chosen {
                log_one_hot_rows(&p.mask, k, &mut clean);
            }
            perturb_batch(
                &clean,
                &self.layout,
                &self.schedule,
                &pixel_levels,
                &mut rng,
                &mut noise,
            )?;
            let images = stack_images(&chosen, &device)?;
            let x = self.input(&images, &noise.noisy)?;
            let levels: Vec<u32> = image_levels.iter().map(|&l| l as u32).collect();
            let out = self.logit_rows(&x, &levels)?;
            let targets = loss_fn.targets(&noise, DType::F32)?;
            let loss = loss_fn.forward(&out, &targets)?.total;
            let grads = loss.backward()?;
            let norm = optimizer.grad_norm(&grads)?;
            let progress = step as f64 / settings.steps.max(1) as f64;
            let lr =
                1e-5 + (settings.lr - 1e-5) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            optimizer.step(&grads, lr, if norm > 1.0 { 1.0 / norm } else { 1.0 })?;
            on_step(step, f64::from(loss.to_scalar::<f32>()?), self)?;
        }
        Ok(())
    }

    /// The (N, L) score-norm embedding of (image, mask) pairs: at every level, the L2 norm
    /// over all pixels and classes of the score of the clean mask given the image.
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] when `masks` and `pairs` differ in length or size; a candle
    /// error.
    pub fn score_norms(
        &self,
        pairs: &[&SegmentationPair],
        masks: &[&[u8]],
        batch: usize,
    ) -> Result<Matrix, GnsmError> {
        if masks.len() != pairs.len()
            || pairs
                .iter()
                .zip(masks)
                .any(|(p, m)| m.len() != p.height * p.width)
        {
            return Err(GnsmError::Invalid(
                "one mask of the image's size per pair is needed".into(),
            ));
        }
        let k = self.layout.width();
        let levels = self.schedule.levels();
        let device = self.model.device();
        let mut norms = vec![0.0f64; pairs.len() * levels];
        let mut rows = Vec::new();
        for (start, chunk) in (0..pairs.len())
            .step_by(batch.max(1))
            .map(|s| (s, &pairs[s..(s + batch.max(1)).min(pairs.len())]))
        {
            let n = chunk.len();
            let pixels = chunk[0].height * chunk[0].width;
            rows.clear();
            for m in &masks[start..start + n] {
                log_one_hot_rows(m, k, &mut rows);
            }
            let x = self.input(&stack_images(chunk, device)?, &rows)?;
            for level in 0..levels {
                let out = self.logit_rows(&x, &vec![level as u32; n])?;
                let tau = self.schedule.temperature(level)? as f32;
                let taus = Tensor::from_vec(vec![tau; n * pixels], n * pixels, device)?;
                let sq: Vec<f32> = self
                    .groups
                    .scores(&out, &taus)?
                    .sqr()?
                    .reshape((n, pixels * k))?
                    .sum(1)?
                    .to_vec1()?;
                for (i, v) in sq.into_iter().enumerate() {
                    norms[(start + i) * levels + level] = f64::from(v).sqrt();
                }
            }
        }
        Ok(Matrix::new(pairs.len(), levels, norms)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn void_fill_grows_from_labelled_neighbours() {
        // 3×3 with a void centre column: each void pixel takes its left neighbour first
        // when the pixel above is void as well.
        let mask = [1, 9, 2, 1, 9, 2, 1, 9, 2];
        let filled = fill_void(&mask, 3, 3, 9);
        assert!(filled.iter().all(|&v| v == 1 || v == 2));
        assert_eq!(fill_void(&[9, 9], 1, 2, 9), vec![0, 0]);
    }

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
}
