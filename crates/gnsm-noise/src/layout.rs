use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::NoiseError;

/// The column layout of an encoded row: a block of continuous features first, then one block
/// per categorical feature (group) of `K_d` log-one-hot entries, as in the reference code.
///
/// The layout is validated on construction (and on deserialisation): it is never empty and
/// every group has at least two outcomes.
///
/// ```
/// use gnsm_noise::FeatureLayout;
/// let layout = FeatureLayout::new(4, vec![2, 5, 17])?;
/// assert_eq!(layout.width(), 4 + 24);
/// assert_eq!(layout.group_range(1), 6..11);
/// assert_eq!(layout.max_group_size(), 17);
/// assert!(FeatureLayout::new(0, vec![3, 1]).is_err());
/// # Ok::<(), gnsm_noise::NoiseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawLayout", into = "RawLayout")]
pub struct FeatureLayout {
    continuous: usize,
    groups: Vec<usize>,
    /// `offsets[g]` is the absolute column of group g's first entry; one extra entry at the end
    /// holds the total width.
    offsets: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
struct RawLayout {
    continuous: usize,
    groups: Vec<usize>,
}

impl TryFrom<RawLayout> for FeatureLayout {
    type Error = NoiseError;
    fn try_from(raw: RawLayout) -> Result<Self, Self::Error> {
        Self::new(raw.continuous, raw.groups)
    }
}

impl From<FeatureLayout> for RawLayout {
    fn from(layout: FeatureLayout) -> Self {
        Self {
            continuous: layout.continuous,
            groups: layout.groups,
        }
    }
}

impl FeatureLayout {
    /// A layout with `continuous` continuous features followed by categorical groups of the
    /// given sizes.
    ///
    /// # Errors
    /// [`NoiseError::EmptyLayout`] when there is nothing at all, and
    /// [`NoiseError::GroupTooSmall`] for a group with fewer than two outcomes.
    pub fn new(continuous: usize, groups: Vec<usize>) -> Result<Self, NoiseError> {
        if continuous == 0 && groups.is_empty() {
            return Err(NoiseError::EmptyLayout);
        }
        if let Some((group, &size)) = groups.iter().enumerate().find(|(_, &k)| k < 2) {
            return Err(NoiseError::GroupTooSmall { group, size });
        }
        let mut offsets = Vec::with_capacity(groups.len() + 1);
        let mut offset = continuous;
        for &k in &groups {
            offsets.push(offset);
            offset += k;
        }
        offsets.push(offset);
        Ok(Self {
            continuous,
            groups,
            offsets,
        })
    }

    /// A purely categorical layout.
    ///
    /// # Errors
    /// As [`FeatureLayout::new`].
    pub fn categorical(groups: Vec<usize>) -> Result<Self, NoiseError> {
        Self::new(0, groups)
    }

    /// Number of continuous features (the first columns of a row).
    pub fn continuous(&self) -> usize {
        self.continuous
    }

    /// The sizes `K_d` of the categorical groups, in column order.
    pub fn groups(&self) -> &[usize] {
        &self.groups
    }

    /// Number of categorical groups `D`.
    pub fn n_groups(&self) -> usize {
        self.groups.len()
    }

    /// Size `K_d` of group `group`. Panics when `group >= n_groups()`, like slice indexing.
    pub fn group_size(&self, group: usize) -> usize {
        self.groups[group]
    }

    /// Absolute column of the first entry of group `group`.
    pub fn group_offset(&self, group: usize) -> usize {
        self.offsets[group]
    }

    /// Absolute columns of group `group`.
    pub fn group_range(&self, group: usize) -> Range<usize> {
        self.offsets[group]..self.offsets[group + 1]
    }

    /// Iterator over the column ranges of all groups.
    pub fn group_ranges(&self) -> impl ExactSizeIterator<Item = Range<usize>> + '_ {
        self.offsets.windows(2).map(|w| w[0]..w[1])
    }

    /// Columns of the continuous block.
    pub fn continuous_range(&self) -> Range<usize> {
        0..self.continuous
    }

    /// Columns of the categorical block.
    pub fn categorical_range(&self) -> Range<usize> {
        self.continuous..self.width()
    }

    /// Total one-hot width `Σ K_d` of the categorical block.
    pub fn categorical_width(&self) -> usize {
        self.width() - self.continuous
    }

    /// Total width of an encoded row.
    pub fn width(&self) -> usize {
        *self
            .offsets
            .last()
            .expect("offsets always has a final entry")
    }

    /// The largest group size (0 for a purely continuous layout).
    pub fn max_group_size(&self) -> usize {
        self.groups.iter().copied().max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_ranges() {
        let layout = FeatureLayout::new(4, vec![2, 5, 17]).unwrap();
        assert_eq!(layout.width(), 28);
        assert_eq!(layout.categorical_width(), 24);
        assert_eq!(layout.n_groups(), 3);
        assert_eq!(layout.group_offset(0), 4);
        assert_eq!(layout.group_offset(2), 11);
        let ranges: Vec<_> = layout.group_ranges().collect();
        assert_eq!(ranges, vec![4..6, 6..11, 11..28]);
        assert_eq!(layout.continuous_range(), 0..4);
        assert_eq!(layout.categorical_range(), 4..28);
    }

    #[test]
    fn invalid_layouts_are_errors() {
        assert!(matches!(
            FeatureLayout::new(0, vec![]),
            Err(NoiseError::EmptyLayout)
        ));
        assert!(matches!(
            FeatureLayout::categorical(vec![3, 1, 4]),
            Err(NoiseError::GroupTooSmall { group: 1, size: 1 })
        ));
        assert!(matches!(
            FeatureLayout::categorical(vec![0]),
            Err(NoiseError::GroupTooSmall { group: 0, size: 0 })
        ));
        // Continuous only is fine.
        let cont = FeatureLayout::new(3, vec![]).unwrap();
        assert_eq!(cont.width(), 3);
        assert_eq!(cont.max_group_size(), 0);
    }

    #[test]
    fn serde_round_trip_validates() {
        let layout = FeatureLayout::new(5, vec![9, 17, 3]).unwrap();
        let json = serde_json::to_string(&layout).unwrap();
        assert_eq!(json, r#"{"continuous":5,"groups":[9,17,3]}"#);
        let back: FeatureLayout = serde_json::from_str(&json).unwrap();
        assert_eq!(back, layout);
        let bad = serde_json::from_str::<FeatureLayout>(r#"{"continuous":0,"groups":[1]}"#);
        assert!(bad.is_err());
    }
}
