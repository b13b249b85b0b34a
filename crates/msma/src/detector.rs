//! The workspace's detector traits and the MSMA detector.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::select::{select_components, Selection, SelectionParams};
use crate::{GaussianMixture, GmmParams, Matrix, MsmaError, StandardScaler};

/// A fitted anomaly detector: scores records, higher = more anomalous.
pub trait Detector<R: ?Sized> {
    /// The error of scoring.
    type Error;
    /// One anomaly score per record; higher means more anomalous.
    ///
    /// # Errors
    /// Whatever makes the records unscoreable (wrong shape, bad values).
    fn score(&self, records: &R) -> Result<Vec<f64>, Self::Error>;
}

/// Settings that fit a [`Detector`] on inliers (linfa's params → fitted model split).
pub trait Fit<R: ?Sized> {
    /// The fitted detector.
    type Detector: Detector<R>;
    /// The error of fitting.
    type Error;
    /// Fit on inlier records.
    ///
    /// # Errors
    /// Whatever makes the fit impossible (too few records, bad values, bad settings).
    fn fit(&self, inliers: &R) -> Result<Self::Detector, Self::Error>;
}

/// Settings of an [`Msma`] detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MsmaParams {
    /// Mixture settings; `n_components` is used only when `selection` is `None`.
    pub gmm: GmmParams,
    /// Component-count selection (default: {3,5,7,9}, 5-fold 10th percentile of held-out
    /// log-likelihood, as the reference).
    pub selection: Option<SelectionParams>,
}

impl Default for MsmaParams {
    fn default() -> Self {
        Self {
            gmm: GmmParams::default(),
            selection: Some(SelectionParams::default()),
        }
    }
}

impl MsmaParams {
    /// These settings with the mixture size taken from `components`: a single value fixes
    /// the size (no selection, as the authors' notebooks do for cmc and probe), several are
    /// chosen among (with this selection's criterion, or the default one). The other GMM
    /// settings are kept. An empty list or a zero is refused at fit time.
    ///
    /// ```
    /// use msma::MsmaParams;
    /// let fixed = MsmaParams::default().with_components(&[5]);
    /// assert_eq!((fixed.gmm.n_components, &fixed.selection), (5, &None));
    /// let chosen = fixed.with_components(&[3, 7]);
    /// assert_eq!(chosen.selection.unwrap().candidates, vec![3, 7]);
    /// ```
    pub fn with_components(mut self, components: &[usize]) -> Self {
        if let [k] = components {
            self.gmm.n_components = *k;
            self.selection = None;
        } else {
            let mut selection = self.selection.take().unwrap_or_default();
            selection.candidates = components.to_vec();
            self.selection = Some(selection);
        }
        self
    }
}

/// Multiscale Score Matching Analysis: a standard scaler and a full-covariance Gaussian
/// mixture fitted on the score-norm embeddings of inliers; the anomaly score of a record is
/// minus its log-likelihood.
///
/// ```
/// use msma::{Detector, Fit, Matrix, MsmaParams, GmmParams};
/// // Inlier norms around (1, 2); one far-off record.
/// let rows: Vec<Vec<f64>> = (0..60).map(|i| {
///     let t = i as f64 / 60.0;
///     vec![1.0 + 0.1 * (7.0 * t).sin(), 2.0 + 0.1 * (11.0 * t).cos()]
/// }).collect();
/// let inliers = Matrix::from_rows(&rows)?;
/// let params = MsmaParams { gmm: GmmParams::new(2), selection: None };
/// let detector = params.fit(&inliers)?;
/// let test = Matrix::from_rows(&[vec![1.0, 2.0], vec![4.0, -1.0]])?;
/// let scores = detector.score(&test)?;
/// assert!(scores[1] > scores[0]);
/// # Ok::<(), msma::MsmaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Msma {
    scaler: StandardScaler,
    gmm: GaussianMixture,
    selection: Option<Selection>,
}

/// The envelope of a saved [`Msma`].
#[derive(Serialize, Deserialize)]
struct Saved {
    format: String,
    version: u32,
    model: Msma,
}

const FORMAT: &str = "msma";
const VERSION: u32 = 1;

impl Fit<Matrix> for MsmaParams {
    type Detector = Msma;
    type Error = MsmaError;

    fn fit(&self, inliers: &Matrix) -> Result<Msma, MsmaError> {
        let selection = match &self.selection {
            Some(params) => Some(select_components(inliers, &self.gmm, params)?),
            None => None,
        };
        let gmm_params = GmmParams {
            n_components: selection
                .as_ref()
                .map_or(self.gmm.n_components, |s| s.chosen),
            ..self.gmm.clone()
        };
        let scaler = StandardScaler::fit(inliers)?;
        let gmm = gmm_params.fit(&scaler.transform(inliers)?)?;
        Ok(Msma {
            scaler,
            gmm,
            selection,
        })
    }
}

impl Detector<Matrix> for Msma {
    type Error = MsmaError;

    fn score(&self, records: &Matrix) -> Result<Vec<f64>, MsmaError> {
        Ok(self
            .log_likelihood(records)?
            .into_iter()
            .map(|ll| -ll)
            .collect())
    }
}

impl Msma {
    /// Per-record log-likelihood of the (scaled) embeddings under the mixture.
    ///
    /// # Errors
    /// [`MsmaError::Shape`] for the wrong number of levels, [`MsmaError::NonFinite`] for NaN
    /// or infinite norms.
    pub fn log_likelihood(&self, records: &Matrix) -> Result<Vec<f64>, MsmaError> {
        self.gmm.score_samples(&self.scaler.transform(records)?)
    }

    /// The scaler.
    pub fn scaler(&self) -> &StandardScaler {
        &self.scaler
    }

    /// The mixture.
    pub fn gmm(&self) -> &GaussianMixture {
        &self.gmm
    }

    /// The component selection, when one was run.
    pub fn selection(&self) -> Option<&Selection> {
        self.selection.as_ref()
    }

    /// Save as versioned JSON, atomically (a temporary file, then a rename), so a crash never
    /// leaves a half-written model behind.
    ///
    /// # Errors
    /// [`MsmaError::Io`] naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), MsmaError> {
        let saved = Saved {
            format: FORMAT.into(),
            version: VERSION,
            model: self.clone(),
        };
        let bytes = serde_json::to_vec(&saved).map_err(|e| MsmaError::Format {
            path: path.as_ref().display().to_string(),
            reason: e.to_string(),
        })?;
        crate::io::write_atomic(path.as_ref(), &bytes)
    }

    /// Load a model written by [`Msma::save`].
    ///
    /// # Errors
    /// [`MsmaError::Io`] when the file cannot be read, [`MsmaError::Format`] when it is not
    /// a saved MSMA model or comes from a newer format version.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, MsmaError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| MsmaError::Io {
            path: shown.clone(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| MsmaError::Format {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(MsmaError::Format {
                path: shown,
                reason: "no \"format\": \"msma\" field".into(),
            });
        }
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v <= u64::from(VERSION) => {}
            other => {
                return Err(MsmaError::Format {
                    path: shown,
                    reason: format!(
                    "format version {other:?} is not supported (this build reads up to {VERSION})"
                ),
                })
            }
        }
        let saved: Saved = serde_json::from_value(value).map_err(|e| MsmaError::Format {
            path: shown,
            reason: e.to_string(),
        })?;
        Ok(saved.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SelectionCriterion;

    #[test]
    fn with_components_keeps_the_other_settings() {
        let mut params = MsmaParams::default();
        params.gmm.reg_covar = 1e-4;
        params.selection = Some(SelectionParams {
            candidates: vec![2],
            criterion: SelectionCriterion::Bic,
        });

        let chosen = params.clone().with_components(&[4, 6]);
        assert_eq!(chosen.gmm.reg_covar, 1e-4);
        assert_eq!(
            chosen.selection,
            Some(SelectionParams {
                candidates: vec![4, 6],
                criterion: SelectionCriterion::Bic,
            })
        );

        let fixed = chosen.with_components(&[7]);
        assert_eq!(fixed.gmm.n_components, 7);
        assert_eq!(fixed.gmm.reg_covar, 1e-4);
        assert_eq!(fixed.selection, None);

        // From a fixed size back to a choice: the default criterion.
        let again = fixed.with_components(&[3, 5]);
        assert_eq!(
            again.selection.map(|s| s.criterion),
            Some(SelectionCriterion::default())
        );
    }
}
