use serde::{Deserialize, Serialize};

use crate::{Matrix, MsmaError};

/// Standardise each column to mean 0 and standard deviation 1 (population std, as
/// scikit-learn's `StandardScaler`). A column with zero variance keeps scale 1, so it becomes
/// all zeros instead of NaN.
///
/// ```
/// use msma::{Matrix, StandardScaler};
/// let x = Matrix::from_rows(&[vec![1.0, 5.0], vec![3.0, 5.0]])?;
/// let scaler = StandardScaler::fit(&x)?;
/// let z = scaler.transform(&x)?;
/// assert_eq!(z.row(0), &[-1.0, 0.0]);
/// assert_eq!(z.row(1), &[1.0, 0.0]);
/// # Ok::<(), msma::MsmaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ScalerParts")]
pub struct StandardScaler {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

/// The serialised fields of a [`StandardScaler`], before they are checked.
#[derive(Deserialize)]
struct ScalerParts {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl TryFrom<ScalerParts> for StandardScaler {
    type Error = MsmaError;

    fn try_from(p: ScalerParts) -> Result<Self, MsmaError> {
        let scaler = Self {
            mean: p.mean,
            scale: p.scale,
        };
        scaler.validate()?;
        Ok(scaler)
    }
}

impl StandardScaler {
    /// Fit on the rows of `x`.
    ///
    /// # Errors
    /// [`MsmaError::TooFewRows`] for an empty matrix and [`MsmaError::NonFinite`] for NaN or
    /// infinite values.
    pub fn fit(x: &Matrix) -> Result<Self, MsmaError> {
        if x.rows() == 0 {
            return Err(MsmaError::TooFewRows {
                what: "StandardScaler::fit",
                needed: 1,
                got: 0,
            });
        }
        x.check_finite("scaler input")?;
        let d = x.cols();
        let n = x.rows() as f64;
        let mut mean = vec![0.0; d];
        for row in x.iter_rows() {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; d];
        for row in x.iter_rows() {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        }
        let scale = var
            .into_iter()
            .map(|s| {
                let std = (s / n).sqrt();
                // scikit-learn's rule: (near-)constant columns are left unscaled.
                if std < 10.0 * f64::EPSILON * 1.0f64.max(std) || std == 0.0 {
                    1.0
                } else {
                    std
                }
            })
            .collect();
        Ok(Self { mean, scale })
    }

    /// Check a scaler (one deserialised from a file, say): as many means as scales, every
    /// mean finite, every scale finite and positive.
    ///
    /// # Errors
    /// [`MsmaError::Shape`] or [`MsmaError::InvalidParameter`].
    pub fn validate(&self) -> Result<(), MsmaError> {
        if self.mean.len() != self.scale.len() || self.mean.is_empty() {
            return Err(MsmaError::Shape {
                what: "scaler",
                expected: format!(
                    "as many scales as means ({}), at least one",
                    self.mean.len()
                ),
                got: self.scale.len().to_string(),
            });
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(MsmaError::InvalidParameter {
                name: "scaler mean",
                value: m.to_string(),
                reason: "must be finite",
            });
        }
        if let Some(s) = self.scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(MsmaError::InvalidParameter {
                name: "scaler scale",
                value: s.to_string(),
                reason: "must be finite and > 0",
            });
        }
        Ok(())
    }

    /// Column means.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Column scales (standard deviations, 1 for constant columns).
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// `(x - mean) / scale`, column-wise.
    ///
    /// # Errors
    /// [`MsmaError::Shape`] for a different number of columns and [`MsmaError::NonFinite`]
    /// for NaN or infinite values.
    pub fn transform(&self, x: &Matrix) -> Result<Matrix, MsmaError> {
        if x.cols() != self.mean.len() {
            return Err(MsmaError::Shape {
                what: "columns to scale",
                expected: self.mean.len().to_string(),
                got: x.cols().to_string(),
            });
        }
        x.check_finite("scaler input")?;
        let mut out = x.clone();
        let d = x.cols();
        if d > 0 {
            for row in out.as_mut_slice().chunks_exact_mut(d) {
                for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                    *v = (*v - m) / s;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_variance_column_has_no_nan() {
        let x = Matrix::from_rows(&[vec![2.0, 1.0], vec![2.0, 3.0], vec![2.0, 5.0]]).unwrap();
        let s = StandardScaler::fit(&x).unwrap();
        let z = s.transform(&x).unwrap();
        assert!(z.as_slice().iter().all(|v| v.is_finite()));
        assert_eq!(z.row(0)[0], 0.0);
        // Column 1: mean 3, population std sqrt(8/3).
        approx::assert_relative_eq!(z.row(2)[1], 2.0 / (8.0f64 / 3.0).sqrt(), epsilon = 1e-12);
    }

    #[test]
    fn bad_input() {
        assert!(StandardScaler::fit(&Matrix::zeros(0, 3)).is_err());
        let nan = Matrix::from_rows(&[vec![1.0, f64::NAN]]).unwrap();
        assert!(matches!(
            StandardScaler::fit(&nan),
            Err(MsmaError::NonFinite {
                row: 0,
                column: 1,
                ..
            })
        ));
        let s = StandardScaler::fit(&Matrix::zeros(2, 2)).unwrap();
        assert!(s.transform(&Matrix::zeros(2, 3)).is_err());
    }
}
