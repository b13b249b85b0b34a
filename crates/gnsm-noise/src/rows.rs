//! Encoded rows as the trainer and the scorer read them: the dense log-one-hot matrix, or a
//! compact form — the continuous block and one category index per group — expanded a batch
//! at a time, so that a large table costs 4 bytes per column in memory instead of 4 bytes
//! per category.

use crate::{FeatureLayout, NoiseError, LOG_ONE_HOT_COLD};

/// The category index of a group with no category hot (every entry cold: an unseen value
/// under the schema's `Ignore` policy).
pub const NO_CATEGORY: u32 = u32::MAX;

/// Rows in compact form: per row the continuous block (standardised, f32) and, per
/// categorical group, the index of its hot category (or [`NO_CATEGORY`]).
///
/// ```
/// use gnsm_noise::{CompactRows, FeatureLayout, LOG_ONE_HOT_COLD as C};
/// let layout = FeatureLayout::new(1, vec![2, 3])?;
/// let rows = CompactRows::new(layout, vec![0.5, -1.0], vec![1, 0, 0, 2])?;
/// let mut dense = vec![0.0; 2 * 6];
/// rows.expand(0, 2, &mut dense)?;
/// assert_eq!(dense, [0.5, C, 0.0, 0.0, C, C, -1.0, 0.0, C, C, C, 0.0]);
/// assert_eq!(rows.bytes_per_row(), 12); // dense: 24
/// # Ok::<(), gnsm_noise::NoiseError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CompactRows {
    layout: FeatureLayout,
    continuous: Vec<f32>,
    hot: Vec<u32>,
    rows: usize,
}

impl CompactRows {
    /// Rows from their continuous blocks (rows × continuous, row-major) and hot indices
    /// (rows × groups, row-major).
    ///
    /// # Errors
    /// [`NoiseError::LengthMismatch`] for buffers that do not hold the same number of rows,
    /// [`NoiseError::InvalidParameter`] for an index past its group (other than
    /// [`NO_CATEGORY`]).
    pub fn new(
        layout: FeatureLayout,
        continuous: Vec<f32>,
        hot: Vec<u32>,
    ) -> Result<Self, NoiseError> {
        let groups = layout.n_groups();
        let rows = hot
            .len()
            .checked_div(groups)
            .unwrap_or(continuous.len() / layout.continuous().max(1));
        if hot.len() != rows * groups {
            return Err(NoiseError::LengthMismatch {
                what: "hot indices (rows × groups)",
                expected: rows * groups,
                got: hot.len(),
            });
        }
        if continuous.len() != rows * layout.continuous() {
            return Err(NoiseError::LengthMismatch {
                what: "continuous block (rows × continuous features)",
                expected: rows * layout.continuous(),
                got: continuous.len(),
            });
        }
        if groups > 0 {
            for row in hot.chunks_exact(groups) {
                for (&k, &size) in row.iter().zip(layout.groups()) {
                    if k != NO_CATEGORY && k as usize >= size {
                        return Err(NoiseError::InvalidParameter {
                            name: "category index",
                            value: f64::from(k),
                            reason: "past the end of its group",
                        });
                    }
                }
            }
        }
        Ok(Self {
            layout,
            continuous,
            hot,
            rows,
        })
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The layout the rows expand to.
    pub fn layout(&self) -> &FeatureLayout {
        &self.layout
    }

    /// Bytes each row takes here (4 per continuous feature and per group); the dense form
    /// takes 4 per layout entry ([`FeatureLayout::width`]).
    pub fn bytes_per_row(&self) -> usize {
        4 * (self.layout.continuous() + self.layout.n_groups())
    }

    /// Hot index of every group of `row` ([`NO_CATEGORY`] for none).
    pub fn hot(&self, row: usize) -> &[u32] {
        let g = self.layout.n_groups();
        &self.hot[row * g..(row + 1) * g]
    }

    /// Write rows `start..start + n` into `out` (n × width) as `hot` / `cold` values (0 and
    /// [`LOG_ONE_HOT_COLD`] for log-one-hot, 1 and 0 for one-hot).
    ///
    /// # Errors
    /// [`NoiseError::LengthMismatch`] for rows past the end or an `out` of the wrong size.
    pub fn expand_as(
        &self,
        start: usize,
        n: usize,
        hot: f32,
        cold: f32,
        out: &mut [f32],
    ) -> Result<(), NoiseError> {
        let width = self.layout.width();
        if start + n > self.rows {
            return Err(NoiseError::LengthMismatch {
                what: "rows to expand",
                expected: self.rows,
                got: start + n,
            });
        }
        if out.len() != n * width {
            return Err(NoiseError::LengthMismatch {
                what: "expanded rows (rows × layout width)",
                expected: n * width,
                got: out.len(),
            });
        }
        let n_cont = self.layout.continuous();
        for (r, dst) in out.chunks_exact_mut(width).enumerate() {
            let row = start + r;
            dst[..n_cont].copy_from_slice(&self.continuous[row * n_cont..(row + 1) * n_cont]);
            dst[n_cont..].fill(cold);
            for (range, &k) in self.layout.group_ranges().zip(self.hot(row)) {
                if k != NO_CATEGORY {
                    dst[range.start + k as usize] = hot;
                }
            }
        }
        Ok(())
    }

    /// Write rows `start..start + n` into `out` (n × width) as log-one-hot.
    ///
    /// # Errors
    /// As [`CompactRows::expand_as`].
    pub fn expand(&self, start: usize, n: usize, out: &mut [f32]) -> Result<(), NoiseError> {
        self.expand_as(start, n, 0.0, LOG_ONE_HOT_COLD, out)
    }
}

/// Encoded rows for training or scoring: a dense row-major log-one-hot matrix (the layout's
/// width per row), or [`CompactRows`], expanded a batch at a time.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// Row-major, the layout's width per row.
    Dense(&'a [f32]),
    /// One index per group.
    Compact(&'a CompactRows),
}

impl<'a> From<&'a [f32]> for Rows<'a> {
    fn from(data: &'a [f32]) -> Self {
        Self::Dense(data)
    }
}

impl<'a> From<&'a Vec<f32>> for Rows<'a> {
    fn from(data: &'a Vec<f32>) -> Self {
        Self::Dense(data)
    }
}

impl<'a> From<&'a CompactRows> for Rows<'a> {
    fn from(rows: &'a CompactRows) -> Self {
        Self::Compact(rows)
    }
}

impl Rows<'_> {
    /// The number of rows for `layout`, checked: `what` names them in the error.
    ///
    /// # Errors
    /// [`NoiseError::LengthMismatch`] for dense data that are not a whole number of rows, or
    /// compact rows of another layout.
    pub fn count(&self, layout: &FeatureLayout, what: &'static str) -> Result<usize, NoiseError> {
        let width = layout.width();
        match self {
            Self::Dense(data) if width > 0 && data.len() % width == 0 => Ok(data.len() / width),
            Self::Dense(data) => Err(NoiseError::LengthMismatch {
                what,
                expected: width,
                got: data.len(),
            }),
            Self::Compact(rows) if rows.layout() == layout => Ok(rows.rows()),
            Self::Compact(rows) => Err(NoiseError::LengthMismatch {
                what,
                expected: width,
                got: rows.layout().width(),
            }),
        }
    }

    /// Write rows `start..start + n` into `out` (n × width) as log-one-hot.
    ///
    /// # Errors
    /// [`NoiseError::LengthMismatch`] for rows past the end or an `out` of the wrong size.
    pub fn copy_rows(&self, start: usize, n: usize, out: &mut [f32]) -> Result<(), NoiseError> {
        match self {
            Self::Dense(data) => {
                let width = out.len() / n.max(1);
                let source = data.get(start * width..(start + n) * width).ok_or(
                    NoiseError::LengthMismatch {
                        what: "rows to copy",
                        expected: data.len(),
                        got: (start + n) * width,
                    },
                )?;
                out.copy_from_slice(source);
                Ok(())
            }
            Self::Compact(rows) => rows.expand(start, n, out),
        }
    }

    /// The hot slot of every group of dense or compact row `row` into `out` (cleared first;
    /// `None` for an all-cold group; for dense rows, the first entry equal to 0).
    pub fn hot_slots(&self, layout: &FeatureLayout, row: usize, out: &mut Vec<Option<usize>>) {
        out.clear();
        match self {
            Self::Dense(data) => {
                let width = layout.width();
                let r = &data[row * width..(row + 1) * width];
                out.extend(
                    layout
                        .group_ranges()
                        .map(|range| r[range].iter().position(|&v| v == 0.0)),
                );
            }
            Self::Compact(rows) => out.extend(
                rows.hot(row)
                    .iter()
                    .map(|&k| (k != NO_CATEGORY).then_some(k as usize)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_rows_expand_to_the_dense_rows() {
        let layout = FeatureLayout::new(2, vec![3, 2]).unwrap();
        let rows = CompactRows::new(
            layout.clone(),
            vec![1.0, 2.0, 3.0, 4.0],
            vec![2, NO_CATEGORY, 0, 1],
        )
        .unwrap();
        let c = LOG_ONE_HOT_COLD;
        let dense = [
            1.0, 2.0, c, c, 0.0, c, c, //
            3.0, 4.0, 0.0, c, c, c, 0.0,
        ];
        let mut out = vec![9.0; 7];
        Rows::from(&rows).copy_rows(1, 1, &mut out).unwrap();
        assert_eq!(out, dense[7..]);
        let mut all = vec![9.0; 14];
        rows.expand(0, 2, &mut all).unwrap();
        assert_eq!(all, dense);
        let mut from_dense = vec![0.0; 7];
        Rows::from(&dense[..])
            .copy_rows(1, 1, &mut from_dense)
            .unwrap();
        assert_eq!(from_dense, dense[7..]);
        assert_eq!(Rows::from(&rows).count(&layout, "rows").unwrap(), 2);
        assert_eq!(Rows::from(&dense[..]).count(&layout, "rows").unwrap(), 2);
        let (mut compact_slots, mut dense_slots) = (Vec::new(), Vec::new());
        Rows::from(&rows).hot_slots(&layout, 0, &mut compact_slots);
        Rows::from(&dense[..]).hot_slots(&layout, 0, &mut dense_slots);
        assert_eq!(compact_slots, dense_slots);
        assert_eq!(rows.bytes_per_row(), 16);
    }

    #[test]
    fn bad_compact_rows_are_refused() {
        let layout = FeatureLayout::new(1, vec![2]).unwrap();
        assert!(CompactRows::new(layout.clone(), vec![0.0], vec![2]).is_err());
        assert!(CompactRows::new(layout.clone(), vec![0.0, 1.0], vec![1]).is_err());
        let rows = CompactRows::new(layout.clone(), vec![0.0], vec![1]).unwrap();
        assert!(rows.expand(1, 1, &mut [0.0; 3]).is_err());
        assert!(rows.expand(0, 1, &mut [0.0; 2]).is_err());
        let other = FeatureLayout::new(1, vec![3]).unwrap();
        assert!(Rows::from(&rows).count(&other, "rows").is_err());
        assert!(Rows::from(&[0.0f32; 4][..]).count(&layout, "rows").is_err());
    }
}
