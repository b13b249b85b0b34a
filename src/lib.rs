//! # gnsm — anomaly detection in categorical and mixed tabular data
//!
//! Gumbel Noise Score Matching (GNSM, Mahmood, Oliva & Styner) learns the scores of
//! continuously relaxed categorical features under ExpConcrete noise at many temperatures.
//! By default a record's anomaly score is the denoising loss the trained network leaves on
//! it (with a per-column frequency term); the paper's MSMA — a Gaussian mixture on the
//! multiscale score norms of inliers — is [`ScoreMethod::Msma`].
//!
//! This root crate composes the workspace into the product: [`Gnsm`] fits on a table of
//! inliers, scores any table in bounded memory, explains which columns made a record
//! anomalous, and saves to one file; [`eval`] runs the paper's protocol; the `gnsm` binary
//! wraps both for the command line. The building blocks are re-exported:
//!
//! | crate | re-exported as | what it is for |
//! |---|---|---|
//! | `gnsm-noise` | [`noise`] | ExpConcrete/Gumbel noise, schedules, closed-form scores |
//! | `gnsm-losses` | [`losses`] | KL / MSE / DSM objectives over a feature layout (candle) |
//! | `gnsm-models` | [`models`] | noise-conditioned networks and their trainer (candle) |
//! | `gnsm-data` | [`data`] | schema-aware CSV reading and encoding |
//! | `msma` | [`msma`] | score-norm embeddings, Gaussian mixtures, metrics |
//! | `gnsm-baselines` | [`baselines`] | IsolationForest, ECOD and a one-hot GMM, for comparison |

mod artifact;
mod config;
mod density;
mod detector;
mod error;
pub mod eval;
mod explain;
mod onehot;
mod scorer;

pub use config::{GnsmConfig, TrainOverrides};
pub use density::{DenoisingParams, ScoreMethod};
pub use detector::{FitSummary, Gnsm};
pub use error::GnsmError;
pub use explain::{Contribution, Explanation};
pub use msma::{Calibration, DecisionRule};
pub use onehot::{OneHotDensityParams, OneHotReport};

/// The candle device type the API takes (`Device::Cpu`, or CUDA / Metal with the
/// features), re-exported so that a user need not match candle's version by hand.
pub use candle_core::Device;

pub use gnsm_baselines as baselines;
pub use gnsm_data as data;
pub use gnsm_losses as losses;
pub use gnsm_models as models;
pub use gnsm_noise as noise;
pub use msma;
