//! ECOD: Empirical-Cumulative-distribution-based Outlier Detection (Li et al. 2022).
//!
//! Per column, the left and right tail probabilities of a value under the empirical CDF;
//! per record, the sum over columns of the largest of `−ln left`, `−ln right` and the tail
//! the column's skewness points to.

use msma::{Detector, Fit, Matrix};
use serde::{Deserialize, Serialize};

use crate::{check_fit_input, check_width, BaselineError};

/// Which rows the empirical CDFs of a scoring call are built from.
///
/// pyod's `ECOD.decision_function` concatenates the fitted rows with the batch being scored
/// and rebuilds every ECDF (and skewness) on the union, so a record's score depends on the
/// other records in its batch. That is right for reproducing published numbers, wrong for a
/// detector that scores a stream. [`EcodTails::PerRecord`] keeps pyod's rule but applies it
/// to each record alone — fitted rows plus that record — which makes scores independent of
/// batching and equal to pyod's for a batch of one (up to the skewness, which stays the fitted
/// rows').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EcodTails {
    /// ECDF of the fitted rows plus the scored record: `F(v) = (#{fit ≤ v} + 1) / (n + 1)`;
    /// skewness of the fitted rows. Scores do not depend on batching. The default.
    #[default]
    PerRecord,
    /// pyod's rule: ECDFs and skewness of the fitted rows plus the whole scored batch.
    Pooled,
}

/// Settings of an [`Ecod`] detector (it has no hyperparameters besides the tail rule).
///
/// ```
/// use gnsm_baselines::EcodParams;
/// use msma::{Detector, Fit, Matrix};
/// let rows: Vec<Vec<f64>> = (0..50).map(|i| vec![(i % 5) as f64, (i % 7) as f64]).collect();
/// let ecod = EcodParams::default().fit(&Matrix::from_rows(&rows)?)?;
/// let scores = ecod.score(&Matrix::from_rows(&[vec![2.0, 3.0], vec![9.0, -4.0]])?)?;
/// assert!(scores[1] > scores[0]);
/// # Ok::<(), gnsm_baselines::BaselineError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EcodParams {
    /// Which rows the tail probabilities of a scoring call come from.
    pub tails: EcodTails,
}

/// The empirical distribution of one column: sorted distinct values and how many fitted rows
/// are at or below each (compact for one-hot columns, which have two values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ColumnEcdf {
    values: Vec<f64>,
    at_or_below: Vec<usize>,
}

impl ColumnEcdf {
    fn new(mut column: Vec<f64>) -> Self {
        column.sort_by(f64::total_cmp);
        let mut values = Vec::new();
        let mut at_or_below = Vec::new();
        for (i, &v) in column.iter().enumerate() {
            if values.last() == Some(&v) {
                *at_or_below.last_mut().expect("pushed with the value") = i + 1;
            } else {
                values.push(v);
                at_or_below.push(i + 1);
            }
        }
        Self {
            values,
            at_or_below,
        }
    }

    fn n(&self) -> usize {
        self.at_or_below.last().copied().unwrap_or(0)
    }

    /// Rows `<= v`.
    fn le(&self, v: f64) -> usize {
        let idx = self.values.partition_point(|&u| u <= v);
        if idx == 0 {
            0
        } else {
            self.at_or_below[idx - 1]
        }
    }

    /// Rows `>= v`.
    fn ge(&self, v: f64) -> usize {
        let idx = self.values.partition_point(|&u| u < v);
        self.n()
            - if idx == 0 {
                0
            } else {
                self.at_or_below[idx - 1]
            }
    }

    /// Sum of `(v − mean)^p` over the fitted rows, for p = 2, 3.
    fn central_sums(&self, mean: f64) -> (f64, f64) {
        let mut prev = 0;
        let (mut m2, mut m3) = (0.0, 0.0);
        for (&v, &cum) in self.values.iter().zip(&self.at_or_below) {
            let c = (cum - prev) as f64;
            prev = cum;
            let d = v - mean;
            m2 += c * d * d;
            m3 += c * d * d * d;
        }
        (m2, m3)
    }

    fn sum(&self) -> f64 {
        let mut prev = 0;
        self.values
            .iter()
            .zip(&self.at_or_below)
            .map(|(&v, &cum)| {
                let c = (cum - prev) as f64;
                prev = cum;
                c * v
            })
            .sum()
    }
}

/// The sign of the (biased) sample skewness from its sums, with SciPy's convention that a
/// (numerically) constant column has skewness NaN, which pyod turns into 0.
fn skew_sign(n: f64, mean: f64, m2: f64, m3: f64) -> f64 {
    let m2 = m2 / n;
    let m3 = m3 / n;
    // SciPy: `m2 <= (finfo(float64).resolution * mean)**2` counts as constant.
    if m2 <= (1e-15 * mean).powi(2) {
        return 0.0;
    }
    let skew = m3 / m2.powf(1.5);
    if skew > 0.0 {
        1.0
    } else if skew < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// A column's contribution from its tail probabilities: the largest of the left tail, the
/// right tail and the skewness-chosen tail (both tails summed when the skewness is 0, as
/// pyod's formula gives).
fn column_outlyingness(left: f64, right: f64, skew: f64) -> f64 {
    let u_l = -left.ln();
    let u_r = -right.ln();
    let u_skew = if skew > 0.0 {
        u_r
    } else if skew < 0.0 {
        u_l
    } else {
        u_l + u_r
    };
    u_l.max(u_r).max(u_skew)
}

/// A fitted ECOD detector: per-column empirical CDFs of the fitted rows. Scores are sums of
/// negative log tail probabilities, higher = more anomalous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ecod {
    columns: Vec<ColumnEcdf>,
    skew: Vec<f64>,
    tails: EcodTails,
}

impl Fit<Matrix> for EcodParams {
    type Detector = Ecod;
    type Error = BaselineError;

    fn fit(&self, inliers: &Matrix) -> Result<Ecod, BaselineError> {
        check_fit_input("ECOD", inliers, 1)?;
        let n = inliers.rows() as f64;
        let columns: Vec<ColumnEcdf> = (0..inliers.cols())
            .map(|j| ColumnEcdf::new(inliers.iter_rows().map(|r| r[j]).collect()))
            .collect();
        let skew = columns
            .iter()
            .map(|c| {
                let mean = c.sum() / n;
                let (m2, m3) = c.central_sums(mean);
                skew_sign(n, mean, m2, m3)
            })
            .collect();
        Ok(Ecod {
            columns,
            skew,
            tails: self.tails,
        })
    }
}

impl Ecod {
    /// The tail rule this detector scores with.
    pub fn tails(&self) -> EcodTails {
        self.tails
    }

    /// The same detector scoring with another tail rule.
    pub fn with_tails(mut self, tails: EcodTails) -> Self {
        self.tails = tails;
        self
    }

    fn score_per_record(&self, records: &Matrix) -> Vec<f64> {
        let mut scores = vec![0.0; records.rows()];
        for (j, column) in self.columns.iter().enumerate() {
            let total = (column.n() + 1) as f64;
            for (score, row) in scores.iter_mut().zip(records.iter_rows()) {
                let v = row[j];
                let left = (column.le(v) + 1) as f64 / total;
                let right = (column.ge(v) + 1) as f64 / total;
                *score += column_outlyingness(left, right, self.skew[j]);
            }
        }
        scores
    }

    fn score_pooled(&self, records: &Matrix) -> Vec<f64> {
        let m = records.rows();
        let mut scores = vec![0.0; m];
        for (j, column) in self.columns.iter().enumerate() {
            let batch: Vec<f64> = records.iter_rows().map(|r| r[j]).collect();
            let batch_ecdf = ColumnEcdf::new(batch.clone());
            let n = (column.n() + m) as f64;
            let mean = (column.sum() + batch_ecdf.sum()) / n;
            let (a2, a3) = column.central_sums(mean);
            let (b2, b3) = batch_ecdf.central_sums(mean);
            let skew = skew_sign(n, mean, a2 + b2, a3 + b3);
            for (score, &v) in scores.iter_mut().zip(&batch) {
                let left = (column.le(v) + batch_ecdf.le(v)) as f64 / n;
                let right = (column.ge(v) + batch_ecdf.ge(v)) as f64 / n;
                *score += column_outlyingness(left, right, skew);
            }
        }
        scores
    }
}

impl Detector<Matrix> for Ecod {
    type Error = BaselineError;

    fn score(&self, records: &Matrix) -> Result<Vec<f64>, BaselineError> {
        check_width("ECOD", self.columns.len(), records)?;
        records.check_finite("ECOD records")?;
        Ok(match self.tails {
            EcodTails::PerRecord => self.score_per_record(records),
            EcodTails::Pooled => self.score_pooled(records),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdf_counts_ties_as_pyod_does() {
        // The example of pyod's column_ecdf docstring: values 0 (×3), 1 (×2), 2 (×1), 6 (×4).
        let c = ColumnEcdf::new(vec![6., 0., 1., 6., 2., 0., 6., 1., 0., 6.]);
        assert_eq!(c.values, vec![0., 1., 2., 6.]);
        assert_eq!(c.at_or_below, vec![3, 5, 6, 10]);
        assert_eq!((c.le(-1.0), c.le(0.0), c.le(5.0), c.le(6.0)), (0, 3, 6, 10));
        assert_eq!((c.ge(0.0), c.ge(1.5), c.ge(6.0), c.ge(7.0)), (10, 5, 4, 0));
    }

    #[test]
    fn skewness_sign_and_constant_columns() {
        let sign = |v: &[f64]| {
            let c = ColumnEcdf::new(v.to_vec());
            let mean = c.sum() / v.len() as f64;
            let (m2, m3) = c.central_sums(mean);
            skew_sign(v.len() as f64, mean, m2, m3)
        };
        assert_eq!(sign(&[0., 0., 0., 1.]), 1.0);
        assert_eq!(sign(&[0., 1., 1., 1.]), -1.0);
        assert_eq!(sign(&[3., 3., 3.]), 0.0);
        assert_eq!(sign(&[0., 1., 0., 1.]), 0.0);
    }

    #[test]
    fn per_record_equals_pooled_for_a_batch_of_one_when_skew_is_kept() {
        let rows: Vec<Vec<f64>> = (0..40)
            .map(|i| vec![(i % 4) as f64, ((i * 7) % 11) as f64 * 0.5])
            .collect();
        let x = Matrix::from_rows(&rows).unwrap();
        let ecod = EcodParams::default().fit(&x).unwrap();
        let pooled = ecod.clone().with_tails(EcodTails::Pooled);
        // A record whose values leave every column's skewness sign unchanged.
        let one = Matrix::from_rows(&[vec![1.5, 2.5]]).unwrap();
        let a = ecod.score(&one).unwrap()[0];
        let b = pooled.score(&one).unwrap()[0];
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}
