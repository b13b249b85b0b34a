//! Noise-conditioned score networks for Gumbel Noise Score Matching, in candle.
//!
//! This crate will hold (see the gnsm-models issue):
//! - the noise-level embedding (fixed Gaussian Fourier features, then two SiLU layers);
//! - the tab-ResNet of the reference implementation (pre-LayerNorm residual blocks with FiLM
//!   conditioning), whose per-group logits become scores through a
//!   [`gnsm_noise::FeatureLayout`];
//! - a compact conv UNet for (image, segmentation mask) pairs;
//! - the trainer: AdamW, learning-rate schedules, gradient clipping, EMA weights, validation,
//!   early stopping, atomic checkpoints and exact resume.
//!
//! Nothing is exported yet; the crate builds so that the workspace and its features are in
//! place.
