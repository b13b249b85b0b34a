use serde::{Deserialize, Serialize};

use super::GaussianMixture;
use crate::{Matrix, MsmaError};

/// Settings of a [`GaussianMixture`] fit. Defaults follow the reference (scikit-learn
/// defaults, with `max_iter = 1000` as the GNSM code sets it).
///
/// ```
/// use msma::{GmmParams, Matrix};
/// let x = Matrix::from_rows(&[vec![0.0, 0.1], vec![0.2, 0.0], vec![5.0, 5.1], vec![5.2, 4.9]])?;
/// let gmm = GmmParams::new(2).seed(7).fit(&x)?;
/// let ll = gmm.score_samples(&x)?;
/// assert_eq!(ll.len(), 4);
/// # Ok::<(), msma::MsmaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GmmParams {
    /// Number of mixture components.
    pub n_components: usize,
    /// Added to every covariance diagonal (default 1e-6).
    pub reg_covar: f64,
    /// EM stops when the mean log-likelihood changes by less than this (default 1e-3).
    pub tol: f64,
    /// Maximum EM iterations per initialisation (default 1000).
    pub max_iter: usize,
    /// Number of initialisations; the best lower bound wins (default 1).
    pub n_init: usize,
    /// Maximum Lloyd iterations of the k-means start (default 300).
    pub kmeans_max_iter: usize,
    /// Seed of the k-means++ start.
    pub seed: u64,
    /// How the k-means start and the E and M steps read the rows (default
    /// [`GmmKernel::Auto`]). Every choice gives the same mixture to rounding; only the time
    /// differs.
    pub kernel: GmmKernel,
}

/// How the k-means start and the E and M steps of a [`GaussianMixture`] fit read the rows.
///
/// A one-hot encoding is mostly zeros: with `m` nonzeros in a row of `D` columns, the
/// sparse steps do `m²` work per row and component where the dense ones do `D²` (census's
/// one-hot rows: 33 nonzeros of 401 columns), and k-means distances skip the zeros. Scoring
/// always chooses as `Auto` does.
///
/// ```
/// use msma::{GmmKernel, GmmParams, Matrix};
/// // Four one-hot rows of two binary groups.
/// let x = Matrix::from_rows(&[
///     vec![1.0, 0.0, 1.0, 0.0], vec![1.0, 0.0, 0.0, 1.0],
///     vec![0.0, 1.0, 1.0, 0.0], vec![0.0, 1.0, 0.0, 1.0],
/// ])?;
/// let params = GmmParams::new(2).seed(3).max_iter(10).tol(0.0);
/// let dense = params.clone().kernel(GmmKernel::Dense).fit(&x)?;
/// let sparse = params.kernel(GmmKernel::Sparse).fit(&x)?;
/// let (a, b) = (dense.score_samples(&x)?, sparse.score_samples(&x)?);
/// assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-9 * a.abs().max(1.0)));
/// # Ok::<(), msma::MsmaError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GmmKernel {
    /// Sparse steps when the rows' nonzeros make them cheaper than the dense ones
    /// (`16·Σ m² + D³ < N·D²`), dense otherwise.
    #[default]
    Auto,
    /// Always the dense steps (blocked matrix products over every entry).
    Dense,
    /// Always the sparse steps (quadratic forms and scatters over the nonzeros).
    Sparse,
}

impl Default for GmmParams {
    fn default() -> Self {
        Self {
            n_components: 1,
            reg_covar: 1e-6,
            tol: 1e-3,
            max_iter: 1000,
            n_init: 1,
            kmeans_max_iter: 300,
            seed: 0,
            kernel: GmmKernel::Auto,
        }
    }
}

impl GmmParams {
    /// Defaults with `n_components` components.
    pub fn new(n_components: usize) -> Self {
        Self {
            n_components,
            ..Self::default()
        }
    }

    /// Set the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Set `reg_covar`.
    pub fn reg_covar(mut self, reg_covar: f64) -> Self {
        self.reg_covar = reg_covar;
        self
    }

    /// Set `max_iter`.
    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Set `tol`.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Set `kernel`.
    pub fn kernel(mut self, kernel: GmmKernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// Set `n_init`.
    pub fn n_init(mut self, n_init: usize) -> Self {
        self.n_init = n_init;
        self
    }

    /// Check the settings.
    ///
    /// # Errors
    /// [`MsmaError::InvalidParameter`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), MsmaError> {
        let bad = |name, value: String, reason| {
            Err(MsmaError::InvalidParameter {
                name,
                value,
                reason,
            })
        };
        if self.n_components == 0 {
            return bad("n_components", "0".into(), "must be at least 1");
        }
        if !(self.reg_covar.is_finite() && self.reg_covar >= 0.0) {
            return bad(
                "reg_covar",
                self.reg_covar.to_string(),
                "must be finite and >= 0",
            );
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return bad("tol", self.tol.to_string(), "must be finite and >= 0");
        }
        if self.max_iter == 0 {
            return bad("max_iter", "0".into(), "must be at least 1");
        }
        if self.n_init == 0 {
            return bad("n_init", "0".into(), "must be at least 1");
        }
        Ok(())
    }

    /// Fit a mixture on the rows of `x`.
    ///
    /// # Errors
    /// [`MsmaError::InvalidParameter`] for bad settings, [`MsmaError::TooFewRows`] when `x`
    /// has fewer rows than components, [`MsmaError::NonFinite`] for NaN or infinite input.
    pub fn fit(&self, x: &Matrix) -> Result<GaussianMixture, MsmaError> {
        GaussianMixture::fit(self, x)
    }
}
