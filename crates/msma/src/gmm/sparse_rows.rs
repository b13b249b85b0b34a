//! The nonzero entries of each row, for the sparse E, M and k-means steps of a mixture fit.

use crate::Matrix;

/// The nonzero entries of each row of a matrix (compressed sparse rows, indices ascending).
pub(crate) struct SparseRows {
    offsets: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f64>,
    cols: usize,
}

impl SparseRows {
    /// The nonzeros of `x`.
    pub(crate) fn of(x: &Matrix) -> Self {
        let mut offsets = Vec::with_capacity(x.rows() + 1);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        offsets.push(0);
        for row in x.iter_rows() {
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    indices.push(j as u32);
                    values.push(v);
                }
            }
            offsets.push(indices.len());
        }
        Self {
            offsets,
            indices,
            values,
            cols: x.cols(),
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    pub(crate) fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.offsets[i], self.offsets[i + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    /// Whether the sparse steps are expected to beat the dense ones on these rows: their
    /// `Σ m²` scattered terms (plus `D³` for the precision) against the dense path's `N·D²`
    /// multiply-adds, which run about 16 times faster per term in a blocked matrix product.
    pub(crate) fn pays(&self) -> bool {
        let d = self.cols as f64;
        let pairs: f64 = (0..self.rows())
            .map(|i| {
                let m = (self.offsets[i + 1] - self.offsets[i]) as f64;
                m * m
            })
            .sum();
        16.0 * pairs + d * d * d < self.rows() as f64 * d * d
    }
}

/// `‖a − b‖²` of two sparse rows, summed in ascending column order: bit for bit the dense
/// sum over every column (the columns where both are zero add exact zeros).
pub(crate) fn sq_dist_sparse(a: (&[u32], &[f64]), b: (&[u32], &[f64])) -> f64 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.0.len() || j < b.0.len() {
        let ca = a.0.get(i).copied().unwrap_or(u32::MAX);
        let cb = b.0.get(j).copied().unwrap_or(u32::MAX);
        let diff = if ca == cb {
            i += 1;
            j += 1;
            a.1[i - 1] - b.1[j - 1]
        } else if ca < cb {
            i += 1;
            a.1[i - 1]
        } else {
            j += 1;
            -b.1[j - 1]
        };
        sum += diff * diff;
    }
    sum
}

/// `‖x − c‖²` of a sparse row and a dense center whose squared norm is `center_sq`:
/// `‖c‖² + Σ_{x_j ≠ 0} x_j (x_j − 2 c_j)`, clamped at 0 against rounding.
pub(crate) fn sq_dist_to_center(x: (&[u32], &[f64]), center: &[f64], center_sq: f64) -> f64 {
    let mut sum = center_sq;
    for (&j, &v) in x.0.iter().zip(x.1) {
        sum += v * (v - 2.0 * center[j as usize]);
    }
    sum.max(0.0)
}
