//! Full-covariance Gaussian mixture, fitted by EM from a seeded k-means start.
//!
//! The algorithm follows scikit-learn's `GaussianMixture(covariance_type="full",
//! init_params="kmeans")` step for step (so that results can be pinned against it), with two
//! additions for degenerate data such as score norms that collapse onto a few points:
//! a covariance whose Cholesky factorisation fails is regularised further (×10 steps) instead
//! of failing, and a component that loses all its mass is re-seeded at the worst-explained
//! row. Both are counted in the [`FitReport`].

mod algorithm;
mod hyperparams;
mod kmeans;
mod linalg;
mod sparse_rows;

pub use algorithm::{FitReport, GaussianMixture};
pub use hyperparams::{GmmKernel, GmmParams};
