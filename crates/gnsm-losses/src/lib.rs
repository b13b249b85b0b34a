//! Score-matching objectives for Gumbel Noise Score Matching, in candle.
//!
//! A GNSM network outputs, for an encoded row laid out by a [`gnsm_noise::FeatureLayout`], the
//! continuous scores directly and per-group logits `ε_θ` for the categorical features. This
//! crate turns those outputs and the targets from [`gnsm_noise::perturb_batch`] into
//! differentiable losses:
//!
//! - [`CategoricalObjective::Kl`] (the reference's default): per group
//!   `KL(softmax(ε) ‖ softmax(ε_θ))`, summed over groups, batch mean;
//! - [`CategoricalObjective::Mse`] (paper eq. 5/6): `0.5·τ²K²‖softmax(ε_θ) - softmax(ε)‖²`;
//! - the continuous DSM objective `0.5·Σ(s - (-n/σ))²`, batch mean;
//!
//! all combined by [`GnsmLoss`] over a mixed layout, plus [`GroupSoftmax`], the segment
//! softmax over groups that they share with score computation ([`GroupSoftmax::scores`]).
//!
//! candle 0.11's `scatter_add` and `softmax_last_dim` have no correct backward, so the group
//! softmax never uses them: it narrows each group ([`GroupStrategy::Narrow`], the default,
//! 3.7× faster on a census batch in this crate's `benches/losses.rs`) or gathers the groups into a padded
//! (B, groups, K_max) block with a large negative mask ([`GroupStrategy::Padded`]).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use gnsm_losses::{GnsmLoss, LossConfig};
//! use gnsm_noise::{perturb_batch, FeatureLayout, NoiseRng, NoiseSchedule, Perturbation};
//! use rand::SeedableRng;
//!
//! let layout = FeatureLayout::new(1, vec![2, 3])?;
//! let c = gnsm_noise::LOG_ONE_HOT_COLD;
//! let clean = [0.3, 0.0, c, c, 0.0, c];
//! let mut noise = Perturbation::default();
//! let mut rng = NoiseRng::seed_from_u64(0);
//! perturb_batch(&clean, &layout, &NoiseSchedule::default(), &[5], &mut rng, &mut noise)?;
//!
//! let loss = GnsmLoss::new(&layout, LossConfig::default(), &Device::Cpu)?;
//! let targets = loss.targets(&noise, DType::F32)?;
//! // A network that outputs exactly the targets has zero loss.
//! let eps = Tensor::from_slice(&noise.logit_noise, (1, 5), &Device::Cpu)?;
//! let cont = Tensor::from_slice(&noise.continuous_target, (1, 1), &Device::Cpu)?;
//! let perfect = Tensor::cat(&[&cont, &eps], 1)?;
//! let parts = loss.forward(&perfect, &targets)?;
//! assert!(parts.total.to_scalar::<f32>()?.abs() < 1e-5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod group;
mod host;
mod objective;

pub use error::LossError;
pub use group::{GroupSoftmax, GroupStrategy, PAD_LOGIT};
pub use host::{loss_and_grad, score_transform};
pub use objective::{CategoricalObjective, GnsmLoss, LossConfig, LossParts, LossTargets};
