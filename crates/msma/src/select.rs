//! Choosing the number of mixture components, as the reference does: k-fold cross-validation
//! of a scaler + mixture pipeline, scored by the 10th percentile of held-out log-likelihood
//! (so the choice is judged on how well it covers the least typical inliers); or BIC.

use serde::{Deserialize, Serialize};

use crate::{GmmParams, Matrix, MsmaError, StandardScaler};

/// How candidates are compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SelectionCriterion {
    /// Mean over `folds` contiguous folds (scikit-learn's `KFold` without shuffling) of the
    /// `quantile` of held-out per-row log-likelihood; higher is better. The reference uses
    /// quantile 0.1 and 5 folds.
    HeldOutQuantile {
        /// Which quantile of held-out log-likelihoods (0.1 in the reference).
        quantile: f64,
        /// Number of folds.
        folds: usize,
    },
    /// Bayesian information criterion of a fit on all rows; lower is better.
    Bic,
}

impl Default for SelectionCriterion {
    fn default() -> Self {
        Self::HeldOutQuantile {
            quantile: 0.1,
            folds: 5,
        }
    }
}

/// Settings of the component-count selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SelectionParams {
    /// Candidate component counts (default {3, 5, 7, 9}).
    pub candidates: Vec<usize>,
    /// The criterion (default: 10th percentile of held-out log-likelihood, 5 folds).
    pub criterion: SelectionCriterion,
}

impl Default for SelectionParams {
    fn default() -> Self {
        Self {
            candidates: vec![3, 5, 7, 9],
            criterion: SelectionCriterion::default(),
        }
    }
}

/// The outcome for one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    /// The component count.
    pub components: usize,
    /// The criterion, oriented so that higher is better (for BIC: `-BIC`); `None` when the
    /// candidate was skipped.
    pub criterion: Option<f64>,
    /// Per-fold values (held-out criterion only).
    pub folds: Vec<f64>,
    /// Why the candidate was skipped, if it was.
    pub skipped: Option<String>,
}

/// The chosen component count and the evidence for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The winning component count.
    pub chosen: usize,
    /// Every candidate's score.
    pub candidates: Vec<CandidateScore>,
}

/// The `q`-quantile with linear interpolation (NumPy's default); NaN for no values.
///
/// ```
/// // np.quantile([4, 1, 3, 2, 10], 0.95) = 8.8
/// assert!((msma::quantile(&[4.0, 1.0, 3.0, 2.0, 10.0], 0.95) - 8.8).abs() < 1e-12);
/// ```
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Contiguous folds as scikit-learn's `KFold(n_splits)` without shuffling: the first
/// `n % k` folds get one extra row. Returns (start, end) of each held-out block.
fn fold_bounds(n: usize, k: usize) -> Vec<(usize, usize)> {
    let mut bounds = Vec::with_capacity(k);
    let mut start = 0;
    for f in 0..k {
        let size = n / k + usize::from(f < n % k);
        bounds.push((start, start + size));
        start += size;
    }
    bounds
}

/// Score every candidate component count on `x` (raw rows: each fold fits its own scaler,
/// as the reference's scikit-learn pipeline does) and pick the best.
///
/// # Errors
/// [`MsmaError::InvalidParameter`] for an empty candidate list or bad criterion settings,
/// [`MsmaError::TooFewRows`] when no candidate can be fitted, or any fit error.
pub fn select_components(
    x: &Matrix,
    gmm: &GmmParams,
    params: &SelectionParams,
) -> Result<Selection, MsmaError> {
    if params.candidates.is_empty() || params.candidates.contains(&0) {
        return Err(MsmaError::InvalidParameter {
            name: "candidates",
            value: format!("{:?}", params.candidates),
            reason: "need at least one candidate, all >= 1",
        });
    }
    let mut scores = Vec::with_capacity(params.candidates.len());
    for &k in &params.candidates {
        let fit_params = GmmParams {
            n_components: k,
            ..gmm.clone()
        };
        let score = match &params.criterion {
            SelectionCriterion::Bic => {
                if x.rows() < k.max(2) {
                    skipped(k, format!("{} rows < {k} components", x.rows()))
                } else {
                    let scaler = StandardScaler::fit(x)?;
                    let z = scaler.transform(x)?;
                    let fitted = fit_params.fit(&z)?;
                    CandidateScore {
                        components: k,
                        criterion: Some(-fitted.bic(&z)?),
                        folds: Vec::new(),
                        skipped: None,
                    }
                }
            }
            SelectionCriterion::HeldOutQuantile { quantile: q, folds } => {
                if *folds < 2 || !(0.0..=1.0).contains(q) {
                    return Err(MsmaError::InvalidParameter {
                        name: "criterion",
                        value: format!("quantile {q}, folds {folds}"),
                        reason: "need folds >= 2 and 0 <= quantile <= 1",
                    });
                }
                let bounds = fold_bounds(x.rows(), *folds);
                let smallest_train = x.rows() - bounds.iter().map(|b| b.1 - b.0).max().unwrap_or(0);
                if bounds.iter().any(|b| b.1 == b.0) || smallest_train < k.max(2) {
                    skipped(
                        k,
                        format!(
                            "{} rows are too few for {folds} folds of a {k}-component fit",
                            x.rows()
                        ),
                    )
                } else {
                    let mut per_fold = Vec::with_capacity(*folds);
                    for &(start, end) in &bounds {
                        let train: Vec<usize> = (0..start).chain(end..x.rows()).collect();
                        let held: Vec<usize> = (start..end).collect();
                        let train_x = x.select_rows(&train);
                        let scaler = StandardScaler::fit(&train_x)?;
                        let fitted = fit_params.fit(&scaler.transform(&train_x)?)?;
                        let ll = fitted.score_samples(&scaler.transform(&x.select_rows(&held))?)?;
                        per_fold.push(quantile(&ll, *q));
                    }
                    CandidateScore {
                        components: k,
                        criterion: Some(per_fold.iter().sum::<f64>() / per_fold.len() as f64),
                        folds: per_fold,
                        skipped: None,
                    }
                }
            }
        };
        scores.push(score);
    }
    let chosen = scores
        .iter()
        .filter_map(|s| s.criterion.map(|c| (s.components, c)))
        // Ties keep the smaller (earlier) candidate, as GridSearchCV does.
        .fold(None, |best: Option<(usize, f64)>, (k, c)| match best {
            Some((_, bc)) if bc >= c => best,
            _ => Some((k, c)),
        })
        .ok_or(MsmaError::TooFewRows {
            what: "component selection (every candidate was skipped)",
            needed: params.candidates.iter().copied().min().unwrap_or(1) * 2,
            got: x.rows(),
        })?
        .0;
    Ok(Selection {
        chosen,
        candidates: scores,
    })
}

fn skipped(components: usize, why: String) -> CandidateScore {
    CandidateScore {
        components,
        criterion: None,
        folds: Vec::new(),
        skipped: Some(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_numpy() {
        // np.quantile([4, 1, 3, 2, 10], 0.1) = 1.4 ; 0.5 → 3 ; 0.95 → 8.8
        let v = [4.0, 1.0, 3.0, 2.0, 10.0];
        approx::assert_relative_eq!(quantile(&v, 0.1), 1.4, epsilon = 1e-12);
        approx::assert_relative_eq!(quantile(&v, 0.5), 3.0, epsilon = 1e-12);
        approx::assert_relative_eq!(quantile(&v, 0.95), 8.8, epsilon = 1e-12);
    }

    #[test]
    fn folds_match_kfold() {
        // KFold(5) on 12 rows: sizes 3, 3, 2, 2, 2.
        assert_eq!(
            fold_bounds(12, 5),
            vec![(0, 3), (3, 6), (6, 8), (8, 10), (10, 12)]
        );
    }
}
