use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::kmeans::{kmeans_labels, KmeansRows};
use super::linalg::{add_gram, matmul, precision_cholesky};
use super::{GmmKernel, GmmParams};
use crate::{Matrix, MsmaError};

/// The EM iterations (E and M steps, precision updates).
mod em;
/// The E and M steps over the nonzeros of sparse rows.
mod sparse;

use super::sparse_rows::SparseRows;

/// Rows per parallel work item of the E and M steps.
const CHUNK: usize = 512;
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// What happened during a fit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Whether EM met `tol` before `max_iter` (best initialisation).
    pub converged: bool,
    /// EM iterations of the best initialisation.
    pub n_iter: usize,
    /// Final mean log-likelihood per row of the best initialisation (scikit-learn's
    /// `lower_bound_`).
    pub lower_bound: f64,
    /// Mean log-likelihood per row before each M-step, best initialisation.
    pub history: Vec<f64>,
    /// Which initialisation won.
    pub best_init: usize,
    /// Components re-seeded after losing all their mass (all initialisations).
    pub reseeded: usize,
    /// Covariances that needed more diagonal regularisation than `reg_covar` to be positive
    /// definite (all initialisations and iterations).
    pub regularised: usize,
}

/// A fitted full-covariance Gaussian mixture. Deserialising one checks it
/// ([`GaussianMixture::validate`]), so a damaged or edited file is an error, not NaN scores
/// or a panic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MixtureParts")]
pub struct GaussianMixture {
    n_features: usize,
    weights: Vec<f64>,
    /// K×D row-major.
    means: Vec<f64>,
    /// K blocks of D×D row-major (regularisation included).
    covariances: Vec<f64>,
    /// K blocks of the upper-triangular D×D precision factors.
    precisions_chol: Vec<f64>,
    /// ln det of each precision factor.
    log_det: Vec<f64>,
    report: FitReport,
}

/// The serialised fields of a [`GaussianMixture`], before they are checked.
#[derive(Deserialize)]
struct MixtureParts {
    n_features: usize,
    weights: Vec<f64>,
    means: Vec<f64>,
    covariances: Vec<f64>,
    precisions_chol: Vec<f64>,
    log_det: Vec<f64>,
    #[serde(default)]
    report: FitReport,
}

impl TryFrom<MixtureParts> for GaussianMixture {
    type Error = MsmaError;

    fn try_from(p: MixtureParts) -> Result<Self, MsmaError> {
        let gmm = Self {
            n_features: p.n_features,
            weights: p.weights,
            means: p.means,
            covariances: p.covariances,
            precisions_chol: p.precisions_chol,
            log_det: p.log_det,
            report: p.report,
        };
        gmm.validate()?;
        Ok(gmm)
    }
}

/// The rows EM and scoring run on: the dense matrix, and its nonzeros when the sparse
/// steps are to be used.
pub(super) struct EmRows<'a> {
    dense: &'a Matrix,
    sparse: Option<SparseRows>,
}

impl<'a> EmRows<'a> {
    fn new(dense: &'a Matrix, kernel: GmmKernel) -> Self {
        let sparse = match kernel {
            GmmKernel::Dense => None,
            GmmKernel::Sparse => Some(SparseRows::of(dense)),
            GmmKernel::Auto => Some(SparseRows::of(dense)).filter(SparseRows::pays),
        };
        Self { dense, sparse }
    }
}

/// Per-row results of an E-step.
struct Expectation {
    /// Mean over rows of the per-row log-likelihood.
    mean_ll: f64,
    /// Per-row log-likelihood.
    row_ll: Vec<f64>,
    /// N×K responsibilities (probabilities).
    resp: Vec<f64>,
}

fn logsumexp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

impl GaussianMixture {
    /// A mixture from explicit parameters: `weights` (K, summing to 1), `means` (K × D) and
    /// `covariances` (K blocks of D × D, row-major). Useful to score with known parameters or
    /// to start EM from them ([`GaussianMixture::fit_from`]).
    ///
    /// # Errors
    /// [`MsmaError::Shape`] for inconsistent sizes, [`MsmaError::InvalidParameter`] for
    /// weights that are negative or do not sum to 1, [`MsmaError::SingularCovariance`] for a
    /// covariance that is not positive definite.
    pub fn from_parameters(
        weights: Vec<f64>,
        means: &Matrix,
        covariances: Vec<f64>,
    ) -> Result<Self, MsmaError> {
        let k = weights.len();
        let d = means.cols();
        if means.rows() != k || covariances.len() != k * d * d {
            return Err(MsmaError::Shape {
                what: "mixture parameters",
                expected: format!("{k} means and {k} covariances of {d}×{d}"),
                got: format!(
                    "{} means, {} covariance values",
                    means.rows(),
                    covariances.len()
                ),
            });
        }
        let total: f64 = weights.iter().sum();
        if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) || (total - 1.0).abs() > 1e-6 {
            return Err(MsmaError::InvalidParameter {
                name: "weights",
                value: format!("{weights:?}"),
                reason: "must be non-negative and sum to 1",
            });
        }
        let mut gmm = Self {
            n_features: d,
            weights,
            means: means.as_slice().to_vec(),
            covariances,
            precisions_chol: Vec::new(),
            log_det: Vec::new(),
            report: FitReport::default(),
        };
        gmm.update_precisions(0.0, false)?;
        Ok(gmm)
    }

    /// Fit with `params` (seeded k-means start, EM). See [`GmmParams::fit`].
    ///
    /// # Errors
    /// As [`GmmParams::fit`].
    pub fn fit(params: &GmmParams, x: &Matrix) -> Result<Self, MsmaError> {
        Self::check_fit_input(params, x)?;
        let k = params.n_components;
        let rows = EmRows::new(x, params.kernel);
        let mut best: Option<Self> = None;
        let mut reseeded = 0;
        let mut regularised = 0;
        for init in 0..params.n_init {
            let labels = kmeans_labels(
                KmeansRows {
                    dense: x,
                    sparse: rows.sparse.as_ref(),
                },
                k,
                params.kmeans_max_iter,
                params.seed.wrapping_add(init as u64),
            );
            let mut resp = vec![0.0; x.rows() * k];
            for (i, &l) in labels.iter().enumerate() {
                resp[i * k + l] = 1.0;
            }
            let mut gmm = Self::empty(k, x.cols());
            gmm.m_step(&rows, &resp, params.reg_covar, None)?;
            gmm.run_em(params, &rows)?;
            gmm.report.best_init = init;
            reseeded += gmm.report.reseeded;
            regularised += gmm.report.regularised;
            if best
                .as_ref()
                .is_none_or(|b| gmm.report.lower_bound > b.report.lower_bound)
            {
                best = Some(gmm);
            }
        }
        let mut best = best.expect("n_init >= 1 was checked");
        best.report.reseeded = reseeded;
        best.report.regularised = regularised;
        Ok(best)
    }

    /// Run EM from this mixture's current parameters (instead of a k-means start), with the
    /// stopping rules of `params` (its `n_components` must match).
    ///
    /// # Errors
    /// As [`GmmParams::fit`], and [`MsmaError::Shape`] when the sizes do not match.
    pub fn fit_from(mut self, params: &GmmParams, x: &Matrix) -> Result<Self, MsmaError> {
        Self::check_fit_input(params, x)?;
        if params.n_components != self.n_components() || x.cols() != self.n_features {
            return Err(MsmaError::Shape {
                what: "initial mixture",
                expected: format!(
                    "{} components over {} features",
                    params.n_components,
                    x.cols()
                ),
                got: format!(
                    "{} components over {} features",
                    self.n_components(),
                    self.n_features
                ),
            });
        }
        self.report = FitReport::default();
        self.run_em(params, &EmRows::new(x, params.kernel))?;
        Ok(self)
    }

    fn check_fit_input(params: &GmmParams, x: &Matrix) -> Result<(), MsmaError> {
        params.validate()?;
        if x.rows() < params.n_components.max(2) {
            return Err(MsmaError::TooFewRows {
                what: "GaussianMixture::fit (rows >= components)",
                needed: params.n_components.max(2),
                got: x.rows(),
            });
        }
        if x.cols() == 0 {
            return Err(MsmaError::Shape {
                what: "features",
                expected: "at least 1 column".into(),
                got: "0".into(),
            });
        }
        x.check_finite("mixture input")
    }

    fn empty(k: usize, d: usize) -> Self {
        Self {
            n_features: d,
            weights: vec![1.0 / k as f64; k],
            means: vec![0.0; k * d],
            covariances: vec![0.0; k * d * d],
            precisions_chol: vec![0.0; k * d * d],
            log_det: vec![0.0; k],
            report: FitReport::default(),
        }
    }

    /// Check the parameters: consistent sizes, finite values, weights that are non-negative
    /// and sum to 1, and log-determinants that match the precision factors' diagonals.
    ///
    /// # Errors
    /// [`MsmaError::Shape`] or [`MsmaError::InvalidParameter`] naming what is wrong.
    pub fn validate(&self) -> Result<(), MsmaError> {
        let (k, d) = (self.weights.len(), self.n_features);
        let sizes = [
            ("means", self.means.len(), k * d),
            ("covariances", self.covariances.len(), k * d * d),
            ("precision factors", self.precisions_chol.len(), k * d * d),
            ("log-determinants", self.log_det.len(), k),
        ];
        if k == 0 || d == 0 {
            return Err(MsmaError::Shape {
                what: "mixture",
                expected: "at least one component and one feature".into(),
                got: format!("{k} components, {d} features"),
            });
        }
        for (what, got, expected) in sizes {
            if got != expected {
                return Err(MsmaError::Shape {
                    what: "mixture parameters",
                    expected: format!(
                        "{expected} {what} values for {k} components of {d} features"
                    ),
                    got: got.to_string(),
                });
            }
        }
        let invalid = |name, value: String, reason| MsmaError::InvalidParameter {
            name,
            value,
            reason,
        };
        let total: f64 = self.weights.iter().sum();
        if self.weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) || (total - 1.0).abs() > 1e-6
        {
            return Err(invalid(
                "weights",
                format!("{:?}", self.weights),
                "must be non-negative and sum to 1",
            ));
        }
        for (name, values) in [
            ("means", &self.means),
            ("covariances", &self.covariances),
            ("precision factors", &self.precisions_chol),
        ] {
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(invalid(name, v.to_string(), "must be finite"));
            }
        }
        for (c, &log_det) in self.log_det.iter().enumerate() {
            let p = &self.precisions_chol[c * d * d..(c + 1) * d * d];
            let from_diagonal: f64 = (0..d).map(|i| p[i * d + i].ln()).sum();
            if !(from_diagonal.is_finite()
                && (from_diagonal - log_det).abs() <= 1e-9 * (1.0 + log_det.abs()))
            {
                return Err(invalid(
                    "log-determinants",
                    format!("{log_det} for component {c}"),
                    "must match the precision factor (a positive diagonal)",
                ));
            }
        }
        Ok(())
    }

    /// Number of components K.
    pub fn n_components(&self) -> usize {
        self.weights.len()
    }

    /// Number of features D.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Mixture weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Component means, K × D.
    pub fn means(&self) -> Matrix {
        Matrix::new(self.n_components(), self.n_features, self.means.clone())
            .expect("consistent sizes")
    }

    /// Covariance of component `k`, D × D row-major (regularisation included).
    pub fn covariance(&self, k: usize) -> &[f64] {
        let dd = self.n_features * self.n_features;
        &self.covariances[k * dd..(k + 1) * dd]
    }

    /// What happened during the fit.
    pub fn report(&self) -> &FitReport {
        &self.report
    }

    /// Free parameters of a full-covariance mixture: K·D(D+1)/2 + K·D + K - 1.
    pub fn n_parameters(&self) -> usize {
        let (k, d) = (self.n_components(), self.n_features);
        k * d * (d + 1) / 2 + k * d + k - 1
    }

    fn check_input(&self, x: &Matrix) -> Result<(), MsmaError> {
        if x.cols() != self.n_features {
            return Err(MsmaError::Shape {
                what: "features to score",
                expected: self.n_features.to_string(),
                got: x.cols().to_string(),
            });
        }
        x.check_finite("rows to score")
    }

    /// Per-row log-likelihood `ln p(x)` under the mixture (scikit-learn's `score_samples`).
    ///
    /// # Errors
    /// [`MsmaError::Shape`] for a different number of features, [`MsmaError::NonFinite`] for
    /// NaN or infinite values.
    pub fn score_samples(&self, x: &Matrix) -> Result<Vec<f64>, MsmaError> {
        self.check_input(x)?;
        let k = self.n_components();
        Ok(self
            .weighted_log_prob(&EmRows::new(x, GmmKernel::Auto))
            .par_chunks(k)
            .map(logsumexp)
            .collect())
    }

    /// Mean log-likelihood per row (scikit-learn's `score`).
    ///
    /// # Errors
    /// As [`GaussianMixture::score_samples`].
    pub fn score(&self, x: &Matrix) -> Result<f64, MsmaError> {
        let ll = self.score_samples(x)?;
        Ok(ll.iter().sum::<f64>() / ll.len().max(1) as f64)
    }

    /// Posterior probability of each component for each row, N × K.
    ///
    /// # Errors
    /// As [`GaussianMixture::score_samples`].
    pub fn predict_proba(&self, x: &Matrix) -> Result<Matrix, MsmaError> {
        self.check_input(x)?;
        let e = self.e_step(&EmRows::new(x, GmmKernel::Auto));
        Matrix::new(x.rows(), self.n_components(), e.resp)
    }

    /// Bayesian information criterion on `x`: `-2·Σ ln p(x_i) + n_parameters·ln N`
    /// (lower is better).
    ///
    /// # Errors
    /// As [`GaussianMixture::score_samples`].
    pub fn bic(&self, x: &Matrix) -> Result<f64, MsmaError> {
        let ll: f64 = self.score_samples(x)?.iter().sum();
        Ok(-2.0 * ll + self.n_parameters() as f64 * (x.rows() as f64).ln())
    }
}

fn column_variance(x: &Matrix) -> Vec<f64> {
    let (n, d) = (x.rows() as f64, x.cols());
    let mut mean = vec![0.0; d];
    for row in x.iter_rows() {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v / n);
    }
    let mut var = vec![0.0; d];
    for row in x.iter_rows() {
        var.iter_mut()
            .zip(row)
            .zip(&mean)
            .for_each(|((s, v), m)| *s += (v - m) * (v - m) / n);
    }
    var
}
