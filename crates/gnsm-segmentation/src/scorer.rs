//! The conditional score model of masks given images: trained under Gumbel noise on the
//! mask, its score norms at every level are the embedding MSMA models.

use candle_core::{DType, Device, Tensor};
use gnsm_losses::{GnsmLoss, GroupSoftmax, GroupStrategy, LossConfig};
use gnsm_models::{AdamW, LrSchedule, UNetConfig, UNetModel};
use gnsm_noise::{
    perturb_batch, FeatureLayout, NoiseRng, NoiseSchedule, Perturbation, ScheduleConfig,
};
use msma::Matrix;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::batch::{log_one_hot_rows, next_batch, stack_images};
use crate::{LoopConfig, SegmentationError, SegmentationPair};

/// The score model's learning-rate schedule: cosine from the base rate to 1e-5.
const COSINE: LrSchedule = LrSchedule::Cosine { min_lr: 1e-5 };

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

impl MaskScorer {
    /// A fresh model.
    ///
    /// # Errors
    /// Invalid UNet or noise settings.
    pub fn new(config: &MaskScoreConfig, device: &Device) -> Result<Self, SegmentationError> {
        Self::from_model(UNetModel::new(config.unet.clone(), device)?, config)
    }

    /// Wrap a (loaded) UNet.
    ///
    /// # Errors
    /// Invalid noise settings or class count.
    pub fn from_model(
        model: UNetModel,
        config: &MaskScoreConfig,
    ) -> Result<Self, SegmentationError> {
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
    fn input(&self, images: &Tensor, mask_rows: &[f32]) -> Result<Tensor, SegmentationError> {
        let (b, _, h, w) = images.dims4()?;
        let k = self.layout.width();
        let masks = Tensor::from_slice(mask_rows, (b, h, w, k), self.model.device())?
            .permute((0, 3, 1, 2))?;
        Ok(Tensor::cat(&[images, &masks], 1)?)
    }

    /// Per-pixel logits as rows (B·H·W, K).
    fn logit_rows(&self, x: &Tensor, levels: &[u32]) -> Result<Tensor, SegmentationError> {
        let (b, _, h, w) = x.dims4()?;
        let levels = Tensor::from_slice(levels, b, self.model.device())?;
        let out = self.model.forward(x, &levels)?;
        Ok(out
            .permute((0, 2, 3, 1))?
            .reshape((b * h * w, self.layout.width()))?)
    }

    /// Train on ground-truth pairs (masks without void: see [`fill_void`](crate::fill_void)) with the KL
    /// objective, a level drawn per pair per step, seeded windows ([`LoopConfig::crop`]), AdamW with global-norm clipping at 1 and a
    /// cosine learning rate; `on_step(step, loss, scorer)` runs after every step. Starts at
    /// `first_step` (for resuming from saved weights).
    ///
    /// # Errors
    /// [`SegmentationError::Invalid`] without pairs or for a mask value outside the classes; a
    /// candle error; whatever `on_step` returns.
    pub fn train(
        &self,
        pairs: &[SegmentationPair],
        settings: &LoopConfig,
        first_step: usize,
        on_step: &mut dyn FnMut(usize, f64, &MaskScorer) -> Result<(), SegmentationError>,
    ) -> Result<(), SegmentationError> {
        let k = self.layout.width();
        settings.check(pairs, self.model.config().size_multiple())?;
        if let Some(p) = pairs
            .iter()
            .find(|p| p.mask.iter().any(|&c| usize::from(c) >= k))
        {
            return Err(SegmentationError::Invalid(format!(
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
            let windows: Vec<std::borrow::Cow<'_, SegmentationPair>> = batch
                .iter()
                .map(|&i| settings.window(&pairs[i], &mut rng))
                .collect();
            let chosen: Vec<&SegmentationPair> = windows.iter().map(|w| w.as_ref()).collect();
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
            // The step numbers are 1-based here, so the cosine ends at its floor.
            let lr = COSINE.rate(settings.lr, 0, settings.steps, step);
            // On a worker of rayon's pool: the matmuls and host kernels inside then split by
            // work stealing instead of waking the pool from this thread for every op.
            let loss = rayon::scope(|_| -> Result<f32, SegmentationError> {
                let images = stack_images(&chosen, &device)?;
                let x = self.input(&images, &noise.noisy)?;
                let levels: Vec<u32> = image_levels.iter().map(|&l| l as u32).collect();
                let out = self.logit_rows(&x, &levels)?;
                let targets = loss_fn.targets(&noise, DType::F32)?;
                let loss = loss_fn.forward(&out, &targets)?.total;
                let grads = loss.backward()?;
                let norm = optimizer.grad_norm(&grads)?;
                optimizer.step(&grads, lr, AdamW::clip_scale(norm, Some(1.0)))?;
                Ok(loss.to_scalar::<f32>()?)
            })?;
            on_step(step, f64::from(loss), self)?;
        }
        Ok(())
    }

    /// The (N, L) score-norm embedding of (image, mask) pairs: at every level, the L2 norm
    /// over all pixels and classes of the score of the clean mask given the image.
    ///
    /// # Errors
    /// [`SegmentationError::Invalid`] when `masks` and `pairs` differ in length or size; a candle
    /// error.
    pub fn score_norms(
        &self,
        pairs: &[&SegmentationPair],
        masks: &[&[u8]],
        batch: usize,
    ) -> Result<Matrix, SegmentationError> {
        if masks.len() != pairs.len()
            || pairs
                .iter()
                .zip(masks)
                .any(|(p, m)| m.len() != p.height * p.width)
        {
            return Err(SegmentationError::Invalid(
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
