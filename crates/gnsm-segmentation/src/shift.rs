//! Image corruptions a deployed segmenter meets (dark frames, blur, sensor noise, a changed
//! field of view): seeded, so a shifted test condition is the same on every run.

use gnsm_noise::NoiseRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::image::{resize_bilinear, resize_nearest};
use crate::SegmentationPair;

/// One corruption of a pair's image (and, for a crop, of its mask alike).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shift {
    /// Every channel multiplied by this factor in (0, 1].
    Darken(f32),
    /// A box blur of this radius (a `2r + 1` square), edges clamped.
    Blur(usize),
    /// Independent Gaussian noise of this standard deviation on every channel, clamped to
    /// [0, 1] (seeded by the shift's draw).
    Noise {
        /// Standard deviation.
        sigma: f32,
        /// Seed of the noise.
        seed: u64,
    },
    /// A crop of this fraction of each side at the given top-left corner (as fractions of
    /// the sides), resized back to the full size: image bilinear, mask nearest.
    Crop {
        /// Side fraction kept, in (0, 1].
        keep: f32,
        /// Top edge, as a fraction of the height.
        top: f32,
        /// Left edge, as a fraction of the width.
        left: f32,
    },
}

impl Shift {
    /// A corruption of random kind and severity, from mild to strong: darken ×0.1–0.6, blur
    /// radius 1–4, noise σ 0.05–0.35, crop 45–85 % of each side.
    pub fn draw(rng: &mut NoiseRng) -> Shift {
        match rng.random_range(0..4) {
            0 => Shift::Darken(rng.random_range(0.1..0.6)),
            1 => Shift::Blur(rng.random_range(1..=4)),
            2 => Shift::Noise {
                sigma: rng.random_range(0.05..0.35),
                seed: rng.random(),
            },
            _ => {
                let keep = rng.random_range(0.45..0.85);
                Shift::Crop {
                    keep,
                    top: rng.random_range(0.0..1.0 - keep),
                    left: rng.random_range(0.0..1.0 - keep),
                }
            }
        }
    }

    /// The pair as the segmenter would meet it under this shift; the mask is the ground
    /// truth of the shifted image (changed only by a crop).
    pub fn apply(&self, pair: &SegmentationPair) -> SegmentationPair {
        let (h, w) = (pair.height, pair.width);
        let mut out = pair.clone();
        match *self {
            Shift::Darken(factor) => out.image.iter_mut().for_each(|v| *v *= factor),
            Shift::Blur(radius) => out.image = box_blur(&pair.image, h, w, radius),
            Shift::Noise { sigma, seed } => {
                let mut rng = NoiseRng::seed_from_u64(seed);
                for v in &mut out.image {
                    let z: f32 = StandardNormal.sample(&mut rng);
                    *v = (*v + sigma * z).clamp(0.0, 1.0);
                }
            }
            Shift::Crop { keep, top, left } => {
                let (ch, cw) = (
                    ((h as f32 * keep).round() as usize).clamp(1, h),
                    ((w as f32 * keep).round() as usize).clamp(1, w),
                );
                let y0 = ((h as f32 * top) as usize).min(h - ch);
                let x0 = ((w as f32 * left) as usize).min(w - cw);
                let mut planes = Vec::with_capacity(3 * ch * cw);
                for c in 0..3 {
                    for y in y0..y0 + ch {
                        let row = c * h * w + y * w;
                        planes.extend_from_slice(&pair.image[row + x0..row + x0 + cw]);
                    }
                }
                let mask: Vec<u8> = (y0..y0 + ch)
                    .flat_map(|y| pair.mask[y * w + x0..y * w + x0 + cw].iter().copied())
                    .collect();
                out.image = resize_bilinear(&planes, 3, ch, cw, h, w);
                out.mask = resize_nearest(&mask, ch, cw, h, w);
            }
        }
        out
    }

    /// A short description for reports (`darken 0.32`, `blur 3`, `noise 0.21`, `crop 0.60`).
    pub fn label(&self) -> String {
        match *self {
            Shift::Darken(f) => format!("darken {f:.2}"),
            Shift::Blur(r) => format!("blur {r}"),
            Shift::Noise { sigma, .. } => format!("noise {sigma:.2}"),
            Shift::Crop { keep, .. } => format!("crop {keep:.2}"),
        }
    }
}

/// Every pair under its own seeded [`Shift::draw`]: the same shifts for the same seed and
/// order of pairs.
///
/// ```
/// use gnsm_segmentation::{shift_all, SegmentationPair};
/// let pair = SegmentationPair {
///     name: "a".into(), height: 4, width: 4, image: vec![0.5; 48], mask: vec![0; 16],
/// };
/// let once = shift_all(std::slice::from_ref(&pair), 7);
/// assert_eq!(once, shift_all(std::slice::from_ref(&pair), 7));
/// assert_eq!(once[0].1.mask.len(), 16);
/// ```
pub fn shift_all(pairs: &[SegmentationPair], seed: u64) -> Vec<(Shift, SegmentationPair)> {
    let mut rng = NoiseRng::seed_from_u64(seed);
    pairs
        .iter()
        .map(|p| {
            let shift = Shift::draw(&mut rng);
            (shift, shift.apply(p))
        })
        .collect()
}

/// Mean over the `(2r + 1)²` square around each pixel, per channel, coordinates clamped at
/// the edges.
fn box_blur(planes: &[f32], h: usize, w: usize, radius: usize) -> Vec<f32> {
    let r = radius as isize;
    let n = ((2 * r + 1) * (2 * r + 1)) as f32;
    let clamp = |v: isize, size: usize| v.clamp(0, size as isize - 1) as usize;
    let mut out = vec![0.0f32; planes.len()];
    for (plane, dst) in planes.chunks(h * w).zip(out.chunks_mut(h * w)) {
        for y in 0..h {
            for x in 0..w {
                let mut sum = 0.0f32;
                for dy in -r..=r {
                    let row = clamp(y as isize + dy, h) * w;
                    for dx in -r..=r {
                        sum += plane[row + clamp(x as isize + dx, w)];
                    }
                }
                dst[y * w + x] = sum / n;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(h: usize, w: usize) -> SegmentationPair {
        SegmentationPair {
            name: "p".into(),
            height: h,
            width: w,
            image: (0..3 * h * w).map(|v| (v % 7) as f32 / 7.0).collect(),
            mask: (0..h * w).map(|v| (v % w) as u8).collect(),
        }
    }

    #[test]
    fn darken_scales_and_blur_averages_by_hand() {
        let p = pair(3, 3);
        let dark = Shift::Darken(0.5).apply(&p);
        assert!(dark.image.iter().zip(&p.image).all(|(a, b)| *a == 0.5 * b));
        assert_eq!(dark.mask, p.mask);
        // Radius 1 at the centre of a 3×3 plane: the mean of all nine values.
        let blur = Shift::Blur(1).apply(&p);
        let centre: f32 = p.image[..9].iter().sum::<f32>() / 9.0;
        assert!((blur.image[4] - centre).abs() < 1e-6);
        // At a corner the clamped square counts the corner 4 times, edges twice, itself once.
        let v = &p.image[..9];
        let corner = (4.0 * v[0] + 2.0 * v[1] + 2.0 * v[3] + v[4]) / 9.0;
        assert!((blur.image[0] - corner).abs() < 1e-6);
        assert_eq!(Shift::Blur(0).apply(&p), p);
    }

    #[test]
    fn a_crop_moves_image_and_mask_together() {
        // Column index as the mask and as every image channel: a crop keeping the right half
        // shows, resized back, only the right half's columns in both.
        let (h, w) = (4, 8);
        let mut p = pair(h, w);
        p.image = (0..3 * h * w).map(|v| (v % w) as f32).collect();
        let crop = Shift::Crop {
            keep: 0.5,
            top: 0.5,
            left: 0.5,
        }
        .apply(&p);
        assert_eq!(crop.mask.len(), h * w);
        assert!(
            crop.mask.iter().all(|&c| (4..8).contains(&c)),
            "{:?}",
            crop.mask
        );
        assert!(crop.image.iter().all(|&v| (4.0..=7.0).contains(&v)));
        assert_eq!(crop.mask[0], 4);
        assert_eq!(crop.mask[w - 1], 7);
    }

    #[test]
    fn noise_stays_in_range_and_draws_are_seeded() {
        let p = pair(6, 6);
        let noisy = Shift::Noise {
            sigma: 0.3,
            seed: 1,
        }
        .apply(&p);
        assert!(noisy.image.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_ne!(noisy.image, p.image);
        let pairs = vec![p.clone(); 40];
        let a = shift_all(&pairs, 3);
        assert_eq!(a, shift_all(&pairs, 3));
        assert_ne!(a, shift_all(&pairs, 4));
        // All four kinds turn up in 40 draws.
        let kinds: std::collections::BTreeSet<String> = a
            .iter()
            .map(|(s, _)| s.label().split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
    }
}
