//! The host score transform against candle's `GroupSoftmax::scores` (both strategies), a
//! hand-computed case and its invariants.

use candle_core::{Device, Tensor};
use gnsm_losses::{score_transform, GroupSoftmax, GroupStrategy, LossError};
use gnsm_noise::FeatureLayout;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

#[test]
fn hand_computed_scores() {
    // One continuous column, one group of 2 with softmax (¼, ¾) at τ = 2:
    // -2 + 2·2·¼ = -1 and -2 + 2·2·¾ = 1.
    let layout = FeatureLayout::new(1, vec![2]).unwrap();
    let output = [0.25f32, 0.0, 3f32.ln()];
    let mut scores = [0f32; 3];
    score_transform(&layout, &output, &[2.0], &mut scores).unwrap();
    assert_eq!(scores[0], 0.25);
    approx::assert_abs_diff_eq!(scores[1], -1.0, epsilon = 1e-6);
    approx::assert_abs_diff_eq!(scores[2], 1.0, epsilon = 1e-6);
}

#[test]
fn matches_candle_group_softmax_scores() {
    let layout = FeatureLayout::new(3, vec![2, 5, 17, 3, 40]).unwrap();
    let width = layout.width();
    let rows = 64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let output: Vec<f32> = (0..rows * width)
        .map(|_| rng.random_range(-6.0f32..6.0))
        .collect();
    let taus: Vec<f32> = (0..rows).map(|_| rng.random_range(0.5f32..20.0)).collect();
    let mut host = vec![0f32; output.len()];
    score_transform(&layout, &output, &taus, &mut host).unwrap();
    for strategy in [GroupStrategy::Narrow, GroupStrategy::Padded] {
        let groups = GroupSoftmax::new(&layout, strategy, &Device::Cpu).unwrap();
        let out = Tensor::from_slice(&output, (rows, width), &Device::Cpu).unwrap();
        let t = Tensor::from_slice(&taus, rows, &Device::Cpu).unwrap();
        let candle: Vec<f32> = groups
            .scores(&out, &t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (i, (&h, &c)) in host.iter().zip(&candle).enumerate() {
            // Scores lie in [-τ, τ(K−1)]: an absolute tolerance relative to τ·K.
            let tau = taus[i / width];
            assert!(
                (h - c).abs() <= 1e-5 * tau * 40.0,
                "{strategy:?} value {i}: host {h} candle {c}"
            );
        }
    }
}

#[test]
fn mismatched_shapes_are_errors() {
    let layout = FeatureLayout::new(1, vec![2]).unwrap();
    let mut scores = [0f32; 3];
    let err = score_transform(&layout, &[0.0; 3], &[1.0, 1.0], &mut scores).unwrap_err();
    assert!(matches!(err, LossError::Shape { .. }), "{err}");
    let err = score_transform(&layout, &[0.0; 3], &[1.0], &mut [0f32; 2]).unwrap_err();
    assert!(matches!(err, LossError::Shape { .. }), "{err}");
}

proptest! {
    /// Each group's scores sum to zero (Σ(−τ + τK·p) = −Kτ + τK) and lie in [−τ, τ(K−1)].
    #[test]
    fn group_scores_sum_to_zero_and_stay_in_range(
        groups in proptest::collection::vec(2usize..9, 1..6),
        tau in 0.1f32..20.0,
        seed in any::<u64>(),
    ) {
        let layout = FeatureLayout::new(0, groups).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let output: Vec<f32> = (0..layout.width()).map(|_| rng.random_range(-30.0f32..30.0)).collect();
        let mut scores = vec![0f32; output.len()];
        score_transform(&layout, &output, &[tau], &mut scores).unwrap();
        for range in layout.group_ranges() {
            let k = range.len() as f32;
            let s = &scores[range];
            let sum: f32 = s.iter().sum();
            prop_assert!(sum.abs() <= 1e-4 * tau * k, "sum {sum}");
            for &v in s {
                prop_assert!(v >= -tau * (1.0 + 1e-5) && v <= tau * (k - 1.0) * (1.0 + 1e-5) + 1e-5);
            }
        }
    }
}
