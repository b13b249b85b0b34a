//! Noise-conditioned score networks for Gumbel Noise Score Matching, in candle.
//!
//! - [`TabResNet`]: the reference's tab-ResNet — a fixed Gaussian Fourier embedding of the
//!   noise level (then Linear → SiLU → Linear → SiLU), an input projection, pre-LayerNorm
//!   residual blocks with FiLM conditioning, and a LayerNorm → LeakyReLU → Linear head. It
//!   outputs continuous scores and per-group logits; [`gnsm_losses::GroupSoftmax::scores`]
//!   turns the logits into scores `-τ + τ·K·softmax(logits)`.
//! - [`UNet`] / [`UNetModel`]: a compact noise-conditioned conv UNet for (image, mask)
//!   pairs — GroupNorm residual blocks with level conditioning, stride-2 down-sampling,
//!   broadcast nearest up-sampling, skips, optional attention at the lowest resolution.
//! - [`TabResNetModel`]: a network with its variables, layout and seeded host-side
//!   initialisation (Xavier-uniform weights, zero biases), saved as safetensors.
//! - [`Trainer`]: AdamW with serialisable moments, cosine learning rate with warm-up, global
//!   grad-norm clipping, EMA weights, fixed-noise validation over all levels, best-weights
//!   keeping, early stopping, a time budget, atomic checkpoints with exact resume, an event
//!   hook ([`TrainEvent`]: progress displays are the caller's) and a CSV loss log.
//!
//! candle traps avoided: LayerNorm is written from tensor ops (the fused
//! one has no backward), softmaxes never use `softmax_last_dim`, and every random draw comes
//! from a seeded host RNG.

mod config;
mod cpu;
mod error;
mod io;
pub mod layers;
mod model;
mod tab_resnet;
mod trainer;
mod unet;

pub use config::{Activation, TabResNetConfig};
pub use error::ModelError;
pub use io::{load_envelope, save_envelope, Envelope};
pub use model::{init_vars, sorted_vars, TabResNetModel, WeightsHeader, FOURIER_KEY};
pub use tab_resnet::{LevelEmbedding, TabResBlock, TabResNet};
pub use trainer::{
    AdamW, CurvePoint, LrSchedule, NonFinitePolicy, RunOptions, StopReason, TrainEvent,
    TrainSummary, Trainer, TrainerConfig,
};
pub use unet::{upsample2, UNet, UNetConfig, UNetModel};

/// The tab-ResNet model's name in 0.1 (it sat beside [`UNetModel`] under a name that did not
/// say which network it is).
#[deprecated(since = "0.2.0", note = "renamed `TabResNetModel`")]
pub type ScoreModel = TabResNetModel;
