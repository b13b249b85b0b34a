//! What both training loops share: their settings, seeded batches and image stacking.

use candle_core::{Device, Tensor};
use gnsm_noise::{NoiseRng, LOG_ONE_HOT_COLD};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::{SegmentationError, SegmentationPair};

/// Step budget, batch, learning rate and seed of a training loop ([`Segmenter::train`],
/// [`MaskScorer::train`]).
///
/// [`Segmenter::train`]: crate::Segmenter::train
/// [`MaskScorer::train`]: crate::MaskScorer::train
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopConfig {
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
pub(crate) fn next_batch(
    order: &mut Vec<usize>,
    n: usize,
    batch: usize,
    rng: &mut NoiseRng,
) -> Vec<usize> {
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

/// Stack pairs' images into one (N, 3, H, W) tensor.
pub(crate) fn stack_images(
    pairs: &[&SegmentationPair],
    device: &Device,
) -> Result<Tensor, SegmentationError> {
    let (h, w) = (pairs[0].height, pairs[0].width);
    let mut data = Vec::with_capacity(pairs.len() * 3 * h * w);
    for p in pairs {
        data.extend_from_slice(&p.image);
    }
    Ok(Tensor::from_vec(data, (pairs.len(), 3, h, w), device)?)
}

/// Log-one-hot rows (pixel-major: H·W rows of K) of a mask.
pub(crate) fn log_one_hot_rows(mask: &[u8], classes: usize, out: &mut Vec<f32>) {
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
