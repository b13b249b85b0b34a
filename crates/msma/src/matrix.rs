use serde::{Deserialize, Serialize};

use crate::MsmaError;

/// A dense row-major f64 matrix: N rows (records) × D columns (features).
///
/// ```
/// use msma::Matrix;
/// let m = Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0, 4.0]])?;
/// assert_eq!(m.row(1), &[3.0, 4.0]);
/// assert_eq!((m.rows(), m.cols()), (2, 2));
/// # Ok::<(), msma::MsmaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A matrix from row-major `data`.
    ///
    /// # Errors
    /// [`MsmaError::Shape`] when `data.len() != rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self, MsmaError> {
        if data.len() != rows * cols {
            return Err(MsmaError::Shape {
                what: "matrix data",
                expected: format!("{rows} × {cols} = {}", rows * cols),
                got: data.len().to_string(),
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// A matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// A matrix from equally long rows.
    ///
    /// # Errors
    /// [`MsmaError::Shape`] for ragged rows.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self, MsmaError> {
        let cols = rows.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(rows.len() * cols);
        for (i, r) in rows.iter().enumerate() {
            if r.len() != cols {
                return Err(MsmaError::Shape {
                    what: "row length",
                    expected: cols.to_string(),
                    got: format!("{} at row {i}", r.len()),
                });
            }
            data.extend_from_slice(r);
        }
        Ok(Self {
            rows: rows.len(),
            cols,
            data,
        })
    }

    /// Number of rows N.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns D.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Iterator over the rows.
    pub fn iter_rows(&self) -> impl ExactSizeIterator<Item = &[f64]> + '_ {
        // chunks_exact(0) would panic; a matrix with no columns has empty rows.
        (0..self.rows).map(move |i| self.row(i))
    }

    /// The row-major data.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The row-major data, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        &mut self.data
    }

    /// Consume into the row-major data.
    pub fn into_vec(self) -> Vec<f64> {
        self.data
    }

    /// A new matrix with the given rows, in order.
    pub fn select_rows(&self, indices: &[usize]) -> Self {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Self {
            rows: indices.len(),
            cols: self.cols,
            data,
        }
    }

    /// Check that every value is finite.
    ///
    /// # Errors
    /// [`MsmaError::NonFinite`] naming the first bad value's row and column.
    pub fn check_finite(&self, what: &'static str) -> Result<(), MsmaError> {
        match self.data.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(at) => Err(MsmaError::NonFinite {
                what,
                row: at / self.cols.max(1),
                column: at % self.cols.max(1),
                value: self.data[at],
            }),
        }
    }
}
