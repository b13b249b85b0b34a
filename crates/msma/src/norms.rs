use serde::{Deserialize, Serialize};

use crate::{Matrix, MsmaError};

/// How a per-level score vector becomes one number of the embedding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NormKind {
    /// The L2 norm `‖s‖₂`, as the reference code computes it.
    #[default]
    L2,
    /// The squared norm `‖s‖₂²`, as the paper writes it (eq. 7).
    Squared,
}

/// The multiscale score-norm embedding: an (N, L) matrix with, for each record, the norm of
/// its full score vector at each of the L noise levels.
///
/// ```
/// use msma::{NormKind, ScoreNorms};
/// // Two records, scores of width 2 at L = 2 levels.
/// let level0 = [3.0f32, 4.0, 0.0, 1.0];
/// let level1 = [1.0f32, 0.0, 6.0, 8.0];
/// let norms = ScoreNorms::from_level_scores(&[&level0, &level1], 2, NormKind::L2)?;
/// assert_eq!(norms.matrix().row(0), &[5.0, 1.0]);
/// assert_eq!(norms.matrix().row(1), &[1.0, 10.0]);
/// # Ok::<(), msma::MsmaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreNorms {
    norms: Matrix,
}

impl ScoreNorms {
    /// Wrap an (N, L) matrix of norms.
    pub fn new(norms: Matrix) -> Self {
        Self { norms }
    }

    /// Build the embedding from one score matrix per level: `level_scores[l]` holds N rows of
    /// `width` scores (row-major, f32 as networks produce them); the norm is taken in f64.
    ///
    /// # Errors
    /// [`MsmaError::Shape`] when the levels disagree in length or a length is not a multiple
    /// of `width`.
    pub fn from_level_scores(
        level_scores: &[&[f32]],
        width: usize,
        kind: NormKind,
    ) -> Result<Self, MsmaError> {
        let levels = level_scores.len();
        let first = level_scores.first().map_or(0, |s| s.len());
        if width == 0 || first % width != 0 {
            return Err(MsmaError::Shape {
                what: "score vector length",
                expected: format!("a multiple of width {width}"),
                got: first.to_string(),
            });
        }
        let rows = first / width;
        let mut norms = Matrix::zeros(rows, levels);
        for (l, scores) in level_scores.iter().enumerate() {
            if scores.len() != first {
                return Err(MsmaError::Shape {
                    what: "scores of a level",
                    expected: first.to_string(),
                    got: format!("{} at level {l}", scores.len()),
                });
            }
            for (i, row) in scores.chunks_exact(width).enumerate() {
                let sq: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
                norms.as_mut_slice()[i * levels + l] = match kind {
                    NormKind::L2 => sq.sqrt(),
                    NormKind::Squared => sq,
                };
            }
        }
        Ok(Self { norms })
    }

    /// The (N, L) matrix.
    pub fn matrix(&self) -> &Matrix {
        &self.norms
    }

    /// Consume into the (N, L) matrix.
    pub fn into_matrix(self) -> Matrix {
        self.norms
    }

    /// Number of records N.
    pub fn rows(&self) -> usize {
        self.norms.rows()
    }

    /// Number of levels L.
    pub fn levels(&self) -> usize {
        self.norms.cols()
    }
}
