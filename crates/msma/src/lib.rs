//! Multiscale Score Matching Analysis (MSMA): from per-level score norms to anomaly scores.
//!
//! A score network trained at L noise levels gives every record an L-dimensional embedding:
//! the norms of its score vectors. Inliers concentrate in that space; MSMA
//! fits a density on the inliers' embeddings — a [`StandardScaler`] then a full-covariance
//! [`GaussianMixture`] whose number of components is chosen by [`select_components`] — and
//! scores a record by minus its log-likelihood ([`Msma`]).
//!
//! Everything is f64 and free of deep-learning dependencies, so the crate serves anyone with
//! score norms from any model. It also holds the workspace's detector traits ([`Fit`],
//! [`Detector`]), conformal decisions for any detector ([`Calibration`], [`Calibrated`],
//! [`CalibratedParams`], [`conformal_decisions`]) and the paper's metrics
//! ([`average_precision`], [`roc_auc`]). The mixture's EM runs over the nonzeros of sparse
//! rows (one-hot encodings) when that is cheaper ([`GmmKernel`]).
//!
//! ```
//! use msma::{average_precision, Detector, Fit, Matrix, MsmaParams, SelectionParams};
//! // 200 inlier embeddings on a curve, then score 3 inliers and 2 outliers.
//! let inliers: Vec<Vec<f64>> = (0..200)
//!     .map(|i| { let t = i as f64 / 200.0; vec![t, t * t + 0.01 * (50.0 * t).sin()] })
//!     .collect();
//! let params = MsmaParams {
//!     selection: Some(SelectionParams { candidates: vec![2, 3], ..Default::default() }),
//!     ..Default::default()
//! };
//! let detector = params.fit(&Matrix::from_rows(&inliers)?)?;
//! let test = Matrix::from_rows(&[
//!     vec![0.2, 0.04], vec![0.5, 0.25], vec![0.8, 0.64], vec![0.5, 0.9], vec![1.5, 0.0],
//! ])?;
//! let scores = detector.score(&test)?;
//! let ap = average_precision(&[false, false, false, true, true], &scores)?;
//! assert_eq!(ap, 1.0);
//! # Ok::<(), msma::MsmaError>(())
//! ```

mod calibration;
mod detector;
mod error;
mod gmm;
mod matrix;
mod metrics;
mod scaler;
mod select;

pub use calibration::{Calibrated, CalibratedParams, Calibration, DecisionRule};
pub use detector::{Detector, Fit, Msma, MsmaParams};
pub use error::MsmaError;
pub use gmm::{FitReport, GaussianMixture, GmmKernel, GmmParams};
pub use matrix::Matrix;
pub use metrics::{
    average_precision, conformal_decisions, precision_recall_curve, roc_auc, roc_curve,
    DecisionMetrics,
};
pub use scaler::StandardScaler;
pub use select::{
    quantile, select_components, CandidateScore, Selection, SelectionCriterion, SelectionParams,
};
