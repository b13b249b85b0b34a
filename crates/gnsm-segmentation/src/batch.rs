//! What both training loops share: their settings, seeded batches and image stacking.

use candle_core::{Device, Tensor};
use gnsm_noise::{NoiseRng, LOG_ONE_HOT_COLD};
use rand::seq::SliceRandom;
use rand::Rng;
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
    /// Train on a seeded random `[height, width]` window of each drawn pair instead of the
    /// whole pair (`None`: whole pairs). Both networks are fully convolutional, so they
    /// predict and score whole frames after training on windows: a quarter-size window
    /// makes a step about four times cheaper and shows the network shifted views.
    #[serde(default)]
    pub crop: Option<[usize; 2]>,
}

impl LoopConfig {
    /// Check the settings against the training pairs: at least one step, pair and row per
    /// batch, a positive finite learning rate, and a crop window inside every pair whose
    /// sides are multiples of `multiple` (the network's total down-sampling).
    ///
    /// # Errors
    /// [`SegmentationError::Invalid`] naming the setting and the value.
    pub(crate) fn check(
        &self,
        pairs: &[SegmentationPair],
        multiple: usize,
    ) -> Result<(), SegmentationError> {
        if pairs.is_empty() {
            return Err(SegmentationError::Invalid("no training pairs".into()));
        }
        if self.batch_size == 0 || !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(SegmentationError::Invalid(format!(
                "batch size must be positive and the learning rate positive and finite, got {} \
                 and {}",
                self.batch_size, self.lr
            )));
        }
        if let Some([h, w]) = self.crop {
            let bad_side = |s: usize| s == 0 || s % multiple.max(1) != 0;
            if bad_side(h) || bad_side(w) {
                return Err(SegmentationError::Invalid(format!(
                    "crop {h}×{w}: both sides must be positive multiples of {multiple}"
                )));
            }
            if let Some(p) = pairs.iter().find(|p| p.height < h || p.width < w) {
                return Err(SegmentationError::Invalid(format!(
                    "crop {h}×{w} is larger than pair {} ({}×{})",
                    p.name, p.height, p.width
                )));
            }
        }
        Ok(())
    }

    /// The pair to train on: the whole pair, or a window of [`LoopConfig::crop`]'s size at a
    /// seeded random position (image and mask alike).
    pub(crate) fn window<'a>(
        &self,
        pair: &'a SegmentationPair,
        rng: &mut NoiseRng,
    ) -> std::borrow::Cow<'a, SegmentationPair> {
        match self.crop {
            Some([h, w]) if (h, w) != (pair.height, pair.width) => {
                let top = rng.random_range(0..=pair.height - h);
                let left = rng.random_range(0..=pair.width - w);
                std::borrow::Cow::Owned(crop(pair, top, left, h, w))
            }
            _ => std::borrow::Cow::Borrowed(pair),
        }
    }
}

/// The `h × w` window of a pair whose top-left pixel is `(top, left)`; the caller keeps the
/// window inside the pair.
pub(crate) fn crop(
    pair: &SegmentationPair,
    top: usize,
    left: usize,
    h: usize,
    w: usize,
) -> SegmentationPair {
    let rows = |plane: usize| {
        (top..top + h).map(move |y| {
            let at = (plane * pair.height + y) * pair.width + left;
            at..at + w
        })
    };
    let mut image = Vec::with_capacity(3 * h * w);
    for c in 0..3 {
        for r in rows(c) {
            image.extend_from_slice(&pair.image[r]);
        }
    }
    let mask = rows(0).flat_map(|r| pair.mask[r].iter().copied()).collect();
    SegmentationPair {
        name: pair.name.clone(),
        height: h,
        width: w,
        image,
        mask,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn pair(h: usize, w: usize) -> SegmentationPair {
        SegmentationPair {
            name: "p".into(),
            height: h,
            width: w,
            image: (0..3 * h * w).map(|v| v as f32).collect(),
            mask: (0..h * w).map(|v| v as u8).collect(),
        }
    }

    #[test]
    fn a_crop_is_the_window_of_every_plane() {
        // 3×4 pair, the 2×2 window at (1, 2): pixels 6, 7, 10, 11 of each 12-pixel plane.
        let c = crop(&pair(3, 4), 1, 2, 2, 2);
        assert_eq!((c.height, c.width), (2, 2));
        assert_eq!(c.mask, vec![6, 7, 10, 11]);
        assert_eq!(
            c.image,
            vec![6.0, 7.0, 10.0, 11.0, 18.0, 19.0, 22.0, 23.0, 30.0, 31.0, 34.0, 35.0]
        );
    }

    #[test]
    fn windows_stay_inside_and_whole_pairs_pass_through() {
        let p = pair(8, 12);
        let mut settings = LoopConfig {
            steps: 1,
            batch_size: 2,
            lr: 1e-3,
            seed: 0,
            crop: Some([4, 8]),
        };
        let mut rng = NoiseRng::seed_from_u64(3);
        let mut tops = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let w = settings.window(&p, &mut rng);
            assert_eq!((w.height, w.width), (4, 8));
            let first = usize::from(w.mask[0]);
            let (top, left) = (first / 12, first % 12);
            assert!(top <= 4 && left <= 4);
            assert_eq!(*w, crop(&p, top, left, 4, 8));
            tops.insert(top);
        }
        // Every vertical offset 0..=4 is drawn.
        assert_eq!(tops.len(), 5);
        assert!(settings.check(std::slice::from_ref(&p), 4).is_ok());
        assert!(
            settings.check(std::slice::from_ref(&p), 8).is_err(),
            "4 is not a multiple of 8"
        );
        settings.crop = Some([16, 8]);
        let err = settings
            .check(std::slice::from_ref(&p), 4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than pair p"), "{err}");
        settings.crop = None;
        assert!(matches!(
            settings.window(&p, &mut rng),
            std::borrow::Cow::Borrowed(_)
        ));
        settings.lr = f64::NAN;
        assert!(settings.check(&[p], 4).is_err());
    }
}
