//! ExpConcrete / Gumbel noise for score matching on categorical data.
//!
//! This crate is the noise half of Gumbel Noise Score Matching (GNSM, Mahmood, Oliva &
//! Styner): it perturbs log-one-hot encoded categorical features with ExpConcrete noise (and
//! continuous features with Gaussian noise), and gives the closed-form scores that a network
//! learns to match. It works on plain slices and needs no deep-learning framework.
//!
//! | piece | what it is |
//! |---|---|
//! | [`FeatureLayout`] | the categorical group sizes K_d and the continuous block, with offsets |
//! | [`NoiseSchedule`] | geometric temperatures τ (20 → 2) and σ (1 → 0.1) over L levels |
//! | [`ExpConcrete`] | one ExpConcrete(α, τ) distribution: sampling, log-density, score |
//! | [`perturb_batch`] | noisy input + targets for a batch, from a seeded host RNG |
//! | [`NoiseBank`] | one fixed set of draws applied to every row (common random numbers for scoring) |
//! | [`concrete_score`] | `-τ + τ·K·softmax(logits)`: the score from logits (eq. 4 / 15) |
//! | [`denoise_step`] | the reference scorer's one unit score step before the score norms |
//!
//! ```
//! use gnsm_noise::{perturb_batch, FeatureLayout, NoiseRng, NoiseSchedule, Perturbation};
//! use rand::SeedableRng;
//!
//! // One continuous feature, then two categorical groups with 2 and 3 outcomes.
//! let layout = FeatureLayout::new(1, vec![2, 3])?;
//! let schedule = NoiseSchedule::default(); // L = 20, τ 20 → 2, σ 1 → 0.1
//! let cold = gnsm_noise::LOG_ONE_HOT_COLD;
//! // A clean row: continuous 0.5, group 0 = outcome 1, group 1 = outcome 0.
//! let clean = [0.5, cold, 0.0, 0.0, cold, cold];
//! let mut rng = NoiseRng::seed_from_u64(7);
//! let mut out = Perturbation::default();
//! perturb_batch(&clean, &layout, &schedule, &[3], &mut rng, &mut out)?;
//! // Each noisy categorical group is a log-probability vector.
//! let group = &out.noisy[1..3];
//! let total: f32 = group.iter().map(|v| v.exp()).sum();
//! assert!((total - 1.0).abs() < 1e-5);
//! # Ok::<(), gnsm_noise::NoiseError>(())
//! ```

mod bank;
mod concrete;
mod denoise;
mod error;
mod exp;
mod layout;
mod perturb;
mod rows;
mod schedule;

pub use bank::NoiseBank;
pub use concrete::{
    concrete_score, gumbel, log_softmax_in_place, logsumexp, ExpConcrete, GUMBEL_EPS,
};
pub use denoise::denoise_step;
pub use error::NoiseError;
pub use exp::exp_f32;
pub use layout::FeatureLayout;
pub use perturb::{perturb_batch, Perturbation};
pub use rows::{CompactRows, Rows, NO_CATEGORY};
pub use schedule::{geometric, NoiseSchedule, ScheduleConfig};

/// The host random number generator used for all noise: xoshiro256++, fast, small and
/// portable, so a seed gives the same bytes on every platform. Serialisable with serde, which
/// lets a trainer checkpoint its exact RNG state.
pub type NoiseRng = rand_xoshiro::Xoshiro256PlusPlus;

/// The value of a cold entry in the reference encoding `log(clip(one_hot, 1e-5, 1))`:
/// `ln(1e-5) = -11.512925`.
pub const LOG_ONE_HOT_COLD: f32 = -11.512_925;

/// The clip floor of the reference encoding `log(clip(one_hot, ONE_HOT_FLOOR, 1))`.
pub const ONE_HOT_FLOOR: f64 = 1e-5;
