//! The workspace's detector traits and the MSMA detector.

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
    /// Check the settings: the mixture's, and a selection with at least one candidate, none
    /// zero.
    ///
    /// ```
    /// use msma::MsmaParams;
    /// assert!(MsmaParams::default().validate().is_ok());
    /// assert!(MsmaParams::default().with_components(&[0]).validate().is_err());
    /// assert!(MsmaParams::default().with_components(&[]).validate().is_err());
    /// ```
    ///
    /// # Errors
    /// [`MsmaError::InvalidParameter`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), MsmaError> {
        self.gmm.validate()?;
        if let Some(selection) = &self.selection {
            if selection.candidates.is_empty() || selection.candidates.contains(&0) {
                return Err(MsmaError::InvalidParameter {
                    name: "candidates",
                    value: format!("{:?}", selection.candidates),
                    reason: "must list at least one mixture size, none of them 0",
                });
            }
        }
        Ok(())
    }

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
#[serde(try_from = "MsmaParts")]
pub struct Msma {
    scaler: StandardScaler,
    gmm: GaussianMixture,
    selection: Option<Selection>,
}

/// The serialised fields of an [`Msma`]; the scaler and mixture check themselves, the pair
/// must agree on the embedding's size.
#[derive(Deserialize)]
struct MsmaParts {
    scaler: StandardScaler,
    gmm: GaussianMixture,
    selection: Option<Selection>,
}

impl TryFrom<MsmaParts> for Msma {
    type Error = MsmaError;

    fn try_from(p: MsmaParts) -> Result<Self, MsmaError> {
        if p.scaler.mean().len() != p.gmm.n_features() {
            return Err(MsmaError::Shape {
                what: "MSMA scaler and mixture",
                expected: format!("{} features in both", p.gmm.n_features()),
                got: format!("{} in the scaler", p.scaler.mean().len()),
            });
        }
        Ok(Self {
            scaler: p.scaler,
            gmm: p.gmm,
            selection: p.selection,
        })
    }
}

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
        let ll = self.gmm.score_samples(&self.scaler.transform(records)?)?;
        // A finite embedding always has a finite likelihood under a valid mixture, but one
        // so far out that it underflows must not become an infinite score.
        if let Some(row) = ll.iter().position(|v| !v.is_finite()) {
            return Err(MsmaError::NonFinite {
                what: "log-likelihood (the record is too far from every component)",
                row,
                column: 0,
                value: ll[row],
            });
        }
        Ok(ll)
    }

    /// The embeddings as the mixture sees them: standardised with the inliers' mean and
    /// standard deviation per level (what explanations weigh levels by).
    ///
    /// # Errors
    /// As [`Msma::log_likelihood`].
    pub fn standardize(&self, records: &Matrix) -> Result<Matrix, MsmaError> {
        self.scaler.transform(records)
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
