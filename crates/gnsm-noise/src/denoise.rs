//! The reference's single denoising step before score-norm embedding.

use crate::{log_softmax_in_place, FeatureLayout, NoiseError};

/// One normalised score step on a batch of clean rows, in place: the reference scorer's
/// `denoise_step` (`msma.denoise = True`, on for every tabular dataset of the paper), applied
/// before the score norms are taken at every level.
///
/// `scores` holds the model's scores at the lowest noise level for the same rows. Each block
/// of the score (the continuous features together, then every categorical group on its own)
/// is scaled to unit L2 norm and added to the row; every categorical group is then
/// log-normalised again (`x ← x − logsumexp(x)`), so it stays a log-probability vector. A
/// block whose score is all zero is left as it is (the reference would divide by zero).
///
/// Why it helps: a clean log-one-hot row is a corner of the simplex that the noisy training
/// inputs never reach exactly; one short step along the score moves it towards where the
/// model has seen data, and the move is larger in the directions the model disagrees with.
///
/// ```
/// use gnsm_noise::{denoise_step, FeatureLayout, LOG_ONE_HOT_COLD};
///
/// let layout = FeatureLayout::new(1, vec![2])?;
/// let mut row = [0.5, 0.0, LOG_ONE_HOT_COLD];
/// // Continuous score 2 → unit step +1; the group's score (3, -3) → (0.707, -0.707).
/// denoise_step(&layout, &mut row, &[2.0, 3.0, -3.0])?;
/// assert!((row[0] - 1.5).abs() < 1e-6);
/// let total: f32 = row[1..].iter().map(|v| v.exp()).sum();
/// assert!((total - 1.0).abs() < 1e-6);
/// # Ok::<(), gnsm_noise::NoiseError>(())
/// ```
///
/// # Errors
/// [`NoiseError::LengthMismatch`] when `x` is not whole rows of the layout or `scores` has a
/// different length.
pub fn denoise_step(
    layout: &FeatureLayout,
    x: &mut [f32],
    scores: &[f32],
) -> Result<(), NoiseError> {
    let width = layout.width();
    if x.len() % width != 0 {
        return Err(NoiseError::LengthMismatch {
            what: "rows to denoise (a multiple of the layout width)",
            expected: x.len().div_ceil(width) * width,
            got: x.len(),
        });
    }
    if scores.len() != x.len() {
        return Err(NoiseError::LengthMismatch {
            what: "scores to denoise with",
            expected: x.len(),
            got: scores.len(),
        });
    }
    for (row, score) in x.chunks_exact_mut(width).zip(scores.chunks_exact(width)) {
        let continuous = layout.continuous_range();
        add_unit(&mut row[continuous.clone()], &score[continuous]);
        for range in layout.group_ranges() {
            add_unit(&mut row[range.clone()], &score[range.clone()]);
            log_softmax_in_place(&mut row[range]);
        }
    }
    Ok(())
}

/// `x += s / ‖s‖` (nothing when `s` is all zero or empty).
fn add_unit(x: &mut [f32], s: &[f32]) {
    let norm = s
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 && norm.is_finite() {
        for (xi, &si) in x.iter_mut().zip(s) {
            *xi += (f64::from(si) / norm) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LOG_ONE_HOT_COLD;
    use proptest::prelude::*;

    #[test]
    fn matches_hand_computation() {
        // Two rows, layout: 2 continuous, groups of 3 and 2.
        let layout = FeatureLayout::new(2, vec![3, 2]).unwrap();
        let c = LOG_ONE_HOT_COLD;
        let mut x = vec![
            1.0, -1.0, 0.0, c, c, c, 0.0, //
            0.0, 0.0, c, 0.0, c, 0.0, c,
        ];
        let s = vec![
            3.0, 4.0, 1.0, 2.0, -3.0, 0.0, 0.0, //
            0.0, 0.0, -2.0, 4.0, -2.0, -1.0, 1.0,
        ];
        denoise_step(&layout, &mut x, &s).unwrap();
        // Row 0: continuous (3, 4) / 5; group 0 (1, 2, -3) / sqrt(14), then log-normalised;
        // group 1 score all zero: only log-normalised.
        let close = |a: f32, b: f64| (f64::from(a) - b).abs() < 1e-5;
        assert!(close(x[0], 1.6) && close(x[1], -0.2));
        let r14 = 14f64.sqrt();
        let g0 = [
            1.0 / r14,
            f64::from(c) + 2.0 / r14,
            f64::from(c) - 3.0 / r14,
        ];
        let lse = g0.iter().map(|v| v.exp()).sum::<f64>().ln();
        for (j, v) in g0.iter().enumerate() {
            assert!(close(x[2 + j], v - lse), "{} vs {}", x[2 + j], v - lse);
        }
        let lse1 = (f64::from(c).exp() + 1.0).ln();
        assert!(close(x[5], f64::from(c) - lse1) && close(x[6], -lse1));
        // Row 1: continuous score zero: unchanged; group 1 (-1, 1)/sqrt(2).
        assert!(close(x[7], 0.0) && close(x[8], 0.0));
        let r2 = 2f64.sqrt();
        let g1 = [-1.0 / r2, f64::from(c) + 1.0 / r2];
        let lse = g1.iter().map(|v| v.exp()).sum::<f64>().ln();
        assert!(close(x[12], g1[0] - lse) && close(x[13], g1[1] - lse));
    }

    #[test]
    fn rejects_bad_lengths() {
        let layout = FeatureLayout::new(0, vec![2]).unwrap();
        let mut x = vec![0.0; 3];
        assert!(denoise_step(&layout, &mut x, &[0.0; 3]).is_err());
        let mut x = vec![0.0; 4];
        assert!(denoise_step(&layout, &mut x, &[0.0; 2]).is_err());
    }

    proptest! {
        /// Groups come out as log-probability vectors, and the step moves each block by
        /// at most its unit length (before log-normalisation) whatever the score's scale.
        #[test]
        fn groups_stay_normalised(
            hot in prop::collection::vec(0usize..4, 3),
            s in prop::collection::vec(-50.0f32..50.0, 1 + 4 * 3),
            cont in -3.0f32..3.0,
        ) {
            let layout = FeatureLayout::new(1, vec![4, 4, 4]).unwrap();
            let mut x = vec![cont];
            for &h in &hot {
                x.extend((0..4).map(|j| if j == h { 0.0 } else { LOG_ONE_HOT_COLD }));
            }
            denoise_step(&layout, &mut x, &s).unwrap();
            prop_assert!((x[0] - cont).abs() <= 1.0 + 1e-5);
            for range in layout.group_ranges() {
                let total: f64 = x[range].iter().map(|&v| f64::from(v).exp()).sum();
                prop_assert!((total - 1.0).abs() < 1e-5);
            }
        }
    }
}
