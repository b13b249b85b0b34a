//! Classical anomaly detectors for tabular data, on the same encoded rows GNSM sees: the bar
//! a score-matching detector has to clear.
//!
//! - [`IsolationForest`] (Liu et al. 2008): random axis-aligned splits; anomalies are isolated
//!   in few splits. scikit-learn's defaults and split rule.
//! - [`Ecod`] (Li et al. 2022): per-column empirical tail probabilities, no parameters.
//! - [`GmmDetector`]: a full-covariance Gaussian mixture (msma's EM) whose component count is
//!   chosen by validation log-likelihood. On the one-hot rows of Bank and CMC it beats the
//!   paper's GNSM (AP 73.6 against 65.6 on Bank, 28.3 against 25.9 on CMC, on the paper's
//!   splits).
//!
//! All three implement msma's [`Fit`](msma::Fit) / [`Detector`](msma::Detector) traits on an
//! f64 [`msma::Matrix`], higher score = more anomalous. Feed them gnsm-data's plain
//! one-hot encoding (`Encoding::OneHot`), so they see the data GNSM sees. No candle here.
//!
//! ```
//! use gnsm_baselines::{EcodParams, IsolationForestParams};
//! use msma::{average_precision, Detector, Fit, Matrix};
//! // One-hot rows of two 3-category columns; inliers never show category 2 in the second.
//! let one_hot = |a: usize, b: usize| {
//!     let mut r = vec![0.0; 6];
//!     r[a] = 1.0;
//!     r[3 + b] = 1.0;
//!     r
//! };
//! let inliers: Vec<Vec<f64>> = (0..90).map(|i| one_hot(i % 3, usize::from(i % 10 == 0))).collect();
//! let test = Matrix::from_rows(&[one_hot(0, 0), one_hot(1, 0), one_hot(0, 2), one_hot(2, 2)])?;
//! let labels = [false, false, true, true];
//! let x = Matrix::from_rows(&inliers)?;
//! let forest = IsolationForestParams::default().seed(1).fit(&x)?;
//! assert_eq!(average_precision(&labels, &forest.score(&test)?)?, 1.0);
//! let ecod = EcodParams::default().fit(&x)?;
//! assert_eq!(average_precision(&labels, &ecod.score(&test)?)?, 1.0);
//! # Ok::<(), gnsm_baselines::BaselineError>(())
//! ```

mod ecod;
mod error;
mod iforest;
mod mixture;

pub use ecod::{Ecod, EcodParams, EcodTails};
pub use error::BaselineError;
pub use iforest::{average_path_length, IsolationForest, IsolationForestParams};
pub use mixture::{CandidateFit, GmmDetector, GmmDetectorParams, HeldOutScores};

use msma::Matrix;

/// Fitting needs rows, columns and finite values.
fn check_fit_input(what: &'static str, x: &Matrix, min_rows: usize) -> Result<(), BaselineError> {
    if x.rows() < min_rows || x.cols() == 0 {
        return Err(BaselineError::TooFewRows {
            what,
            needed: min_rows.max(1),
            got: x.rows(),
        });
    }
    x.check_finite(what)?;
    Ok(())
}

/// Scored records must have the fitted width.
fn check_width(what: &'static str, expected: usize, x: &Matrix) -> Result<(), BaselineError> {
    if x.cols() != expected {
        return Err(BaselineError::Width {
            what,
            expected,
            got: x.cols(),
        });
    }
    Ok(())
}
