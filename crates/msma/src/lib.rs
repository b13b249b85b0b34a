//! Multiscale Score Matching Analysis (MSMA): from per-level score norms to anomaly scores.
//!
//! This crate will hold (see the msma issue), in f64 and without any deep-learning
//! dependency, so that anyone with score norms from any model can use it:
//! - `ScoreNorms`, the (N, L) matrix of per-level score norms;
//! - a `StandardScaler` and a full-covariance `GaussianMixture` (seeded k-means++ start, EM
//!   with log-sum-exp responsibilities, Cholesky log-densities, BIC);
//! - model selection over the number of components by the 10th percentile of held-out
//!   log-likelihood, as in the reference implementation;
//! - the `Msma` detector and the workspace's small detector trait;
//! - metrics: average precision and ROC-AUC with exact tie handling, and their curves.
