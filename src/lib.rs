//! # gnsm — anomaly detection in categorical and mixed tabular data
//!
//! Gumbel Noise Score Matching (GNSM, Mahmood, Oliva & Styner) learns the scores of
//! continuously relaxed categorical features under ExpConcrete noise at many temperatures,
//! then flags records whose multiscale score norms are unlikely under a Gaussian mixture fitted
//! on inliers (MSMA).
//!
//! This root crate is the facade: it re-exports the workspace crates, and will hold the
//! end-to-end pipeline and the `gnsm` command-line tool.
//!
//! | crate | re-exported as | what it is for |
//! |---|---|---|
//! | `gnsm-noise` | [`noise`] | ExpConcrete/Gumbel noise, schedules, closed-form scores |
//! | `gnsm-losses` | [`losses`] | KL / MSE / DSM objectives over a feature layout (candle) |
//! | `gnsm-models` | [`models`] | noise-conditioned networks and their trainer (candle) |
//! | `gnsm-data` | [`data`] | schema-aware CSV reading and encoding |
//! | `msma` | [`msma`] | score-norm embeddings, Gaussian mixtures, metrics |

pub use gnsm_data as data;
pub use gnsm_losses as losses;
pub use gnsm_models as models;
pub use gnsm_noise as noise;
pub use msma;
