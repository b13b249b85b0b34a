//! A full-covariance Gaussian mixture on the encoded rows, its component count chosen by
//! validation log-likelihood — the plain density baseline that GNSM has to beat.

use msma::{Detector, Fit, GaussianMixture, GmmParams, Matrix};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::{check_fit_input, check_width, BaselineError};

/// Settings of a [`GmmDetector`].
///
/// ```
/// use gnsm_baselines::GmmDetectorParams;
/// use msma::{Detector, Fit, Matrix};
/// // Two clusters of inliers; one record between them.
/// let rows: Vec<Vec<f64>> = (0..120).map(|i| {
///     let c = if i % 2 == 0 { 0.0 } else { 5.0 };
///     vec![c + 0.1 * ((i * 7 % 13) as f64 - 6.0), c + 0.1 * ((i * 5 % 11) as f64 - 5.0)]
/// }).collect();
/// let params = GmmDetectorParams { candidates: vec![1, 2, 3], ..Default::default() };
/// let detector = params.fit(&Matrix::from_rows(&rows)?)?;
/// let scores = detector.score(&Matrix::from_rows(&[vec![0.0, 0.0], vec![2.5, 2.5]])?)?;
/// assert!(scores[1] > scores[0]);
/// # Ok::<(), gnsm_baselines::BaselineError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GmmDetectorParams {
    /// Candidate component counts (default {3, 5, 7, 9}).
    pub candidates: Vec<usize>,
    /// Share of the inliers held out to choose the component count when fitting through
    /// [`Fit::fit`] (default 1/9: the paper's 80/10 train/validation proportions).
    pub validation_fraction: f64,
    /// Mixture settings (`n_components` is ignored). Default: scikit-learn's
    /// `GaussianMixture` defaults (`reg_covar` 1e-6, `tol` 1e-3, `max_iter` 100).
    pub gmm: GmmParams,
    /// Seed of the validation split and of the k-means++ starts.
    pub seed: u64,
}

impl Default for GmmDetectorParams {
    fn default() -> Self {
        Self {
            candidates: vec![3, 5, 7, 9],
            validation_fraction: 1.0 / 9.0,
            gmm: GmmParams::default().max_iter(100),
            seed: 0,
        }
    }
}

/// How one candidate component count did on the validation rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateFit {
    /// The component count.
    pub components: usize,
    /// Mean validation log-likelihood; `None` when the fit failed.
    pub validation_ll: Option<f64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Summary of the anomaly scores (minus log-likelihoods) that the chosen component count,
/// fitted on the training rows alone, gave the validation rows: how the mixture scores
/// rows it has not seen, before the final refit on train + validation takes them in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeldOutScores {
    /// Validation rows scored.
    pub rows: usize,
    /// Their mean score.
    pub mean: f64,
    /// Their standard deviation (population, `ddof = 0`).
    pub std: f64,
}

impl HeldOutScores {
    /// Mean and population standard deviation of `scores` (`None` when empty or when any
    /// is not finite).
    ///
    /// ```
    /// use gnsm_baselines::HeldOutScores;
    /// let s = HeldOutScores::of(&[1.0, 3.0]).unwrap();
    /// assert_eq!((s.rows, s.mean, s.std), (2, 2.0, 1.0));
    /// assert!(HeldOutScores::of(&[]).is_none());
    /// ```
    pub fn of(scores: &[f64]) -> Option<Self> {
        if scores.is_empty() || scores.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let n = scores.len() as f64;
        let mean = scores.iter().sum::<f64>() / n;
        let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
        Some(Self {
            rows: scores.len(),
            mean,
            std: var.sqrt(),
        })
    }
}

/// A fitted mixture: anomaly score = minus the log-likelihood of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GmmDetector {
    gmm: GaussianMixture,
    candidates: Vec<CandidateFit>,
    #[serde(default)]
    held_out: Option<HeldOutScores>,
}

impl GmmDetectorParams {
    /// Set the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn validate(&self) -> Result<(), BaselineError> {
        if self.candidates.is_empty() || self.candidates.contains(&0) {
            return Err(BaselineError::InvalidParameter {
                name: "candidates",
                value: format!("{:?}", self.candidates),
                reason: "need at least one candidate, all >= 1",
            });
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return Err(BaselineError::InvalidParameter {
                name: "validation_fraction",
                value: self.validation_fraction.to_string(),
                reason: "must lie strictly between 0 and 1",
            });
        }
        Ok(())
    }

    /// Choose the component count by mean log-likelihood of `validation` under a mixture
    /// fitted on `train`, then refit that count on `train` and `validation` together (the
    /// paper's protocol: every model fitted on train + val).
    ///
    /// # Errors
    /// [`BaselineError::InvalidParameter`] for bad settings, [`BaselineError::Width`] when the
    /// two matrices differ in width, [`BaselineError::TooFewRows`] when no candidate could
    /// be fitted, or the final fit's error.
    pub fn fit_split(
        &self,
        train: &Matrix,
        validation: &Matrix,
    ) -> Result<GmmDetector, BaselineError> {
        self.validate()?;
        check_fit_input("GMM training rows", train, 2)?;
        check_fit_input("GMM validation rows", validation, 1)?;
        check_width("GMM validation rows", train.cols(), validation)?;
        let mut candidates = Vec::with_capacity(self.candidates.len());
        let mut held_out = Vec::with_capacity(self.candidates.len());
        for &k in &self.candidates {
            let params = GmmParams {
                n_components: k,
                seed: self.seed,
                ..self.gmm.clone()
            };
            let outcome = params
                .fit(train)
                .and_then(|g| g.score_samples(validation))
                .map_err(|e| e.to_string());
            // The mean over rows is what GaussianMixture::score returns.
            let ll = outcome.as_ref().ok().map(|lls| mean(lls));
            held_out.push(
                outcome.as_ref().ok().and_then(|lls| {
                    HeldOutScores::of(&lls.iter().map(|ll| -ll).collect::<Vec<_>>())
                }),
            );
            candidates.push(CandidateFit {
                components: k,
                validation_ll: ll,
                error: outcome.err(),
            });
        }
        // Ties keep the smaller (earlier) candidate.
        let chosen = candidates
            .iter()
            .filter_map(|c| c.validation_ll.map(|ll| (c.components, ll)))
            .fold(None, |best: Option<(usize, f64)>, (k, ll)| match best {
                Some((_, b)) if b >= ll => best,
                _ => Some((k, ll)),
            })
            .ok_or(BaselineError::TooFewRows {
                what: "GMM component selection (every candidate failed)",
                needed: self.candidates.iter().copied().min().unwrap_or(1),
                got: train.rows(),
            })?
            .0;
        let mut all = Vec::with_capacity((train.rows() + validation.rows()) * train.cols());
        all.extend_from_slice(train.as_slice());
        all.extend_from_slice(validation.as_slice());
        let all = Matrix::new(train.rows() + validation.rows(), train.cols(), all)?;
        let gmm = GmmParams {
            n_components: chosen,
            seed: self.seed,
            ..self.gmm.clone()
        }
        .fit(&all)?;
        let held_out = self
            .candidates
            .iter()
            .position(|&k| k == chosen)
            .and_then(|i| held_out[i]);
        Ok(GmmDetector {
            gmm,
            candidates,
            held_out,
        })
    }
}

impl Fit<Matrix> for GmmDetectorParams {
    type Detector = GmmDetector;
    type Error = BaselineError;

    /// Hold out a seeded random `validation_fraction` of the inliers, then
    /// [`GmmDetectorParams::fit_split`].
    fn fit(&self, inliers: &Matrix) -> Result<GmmDetector, BaselineError> {
        self.validate()?;
        check_fit_input("GMM", inliers, 3)?;
        let n = inliers.rows();
        let held = ((n as f64 * self.validation_fraction).round() as usize).clamp(1, n - 2);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(self.seed));
        let (val, train) = order.split_at(held);
        self.fit_split(&inliers.select_rows(train), &inliers.select_rows(val))
    }
}

impl GmmDetector {
    /// The fitted mixture.
    pub fn mixture(&self) -> &GaussianMixture {
        &self.gmm
    }

    /// Every candidate's validation log-likelihood.
    pub fn candidates(&self) -> &[CandidateFit] {
        &self.candidates
    }

    /// How the chosen component count, fitted on the training rows alone, scored the
    /// validation rows (`None` for a detector read from an older file).
    pub fn held_out(&self) -> Option<HeldOutScores> {
        self.held_out
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

impl Detector<Matrix> for GmmDetector {
    type Error = BaselineError;

    fn score(&self, records: &Matrix) -> Result<Vec<f64>, BaselineError> {
        Ok(self
            .gmm
            .score_samples(records)?
            .into_iter()
            .map(|ll| -ll)
            .collect())
    }
}
