//! Shared benchmark shapes.

use gnsm_noise::{FeatureLayout, LOG_ONE_HOT_COLD};
use rand::Rng;

/// Category counts of the 28 census columns GNSM treats as categorical (label-0 rows of
/// `shared/data/census.csv.gz`, `?` counted as a value): 396 one-hot columns.
pub const CENSUS_GROUPS: [usize; 28] = [
    9, 17, 3, 7, 24, 15, 5, 10, 2, 3, 6, 8, 6, 6, 51, 38, 8, 10, 9, 10, 3, 4, 5, 43, 43, 43, 5, 3,
];

/// The census layout of the paper: 5 continuous columns, then 28 groups (396 + 5 = 401).
pub fn census_layout() -> FeatureLayout {
    FeatureLayout::new(5, CENSUS_GROUPS.to_vec()).expect("valid layout")
}

/// `rows` random clean rows of `layout` (standard-normal-ish continuous, one hot per group).
pub fn random_rows<R: Rng>(layout: &FeatureLayout, rows: usize, rng: &mut R) -> Vec<f32> {
    let mut clean = Vec::with_capacity(rows * layout.width());
    for _ in 0..rows {
        for _ in 0..layout.continuous() {
            clean.push(rng.random_range(-2.0f32..2.0));
        }
        for &k in layout.groups() {
            let hot = rng.random_range(0..k);
            clean.extend((0..k).map(|j| if j == hot { 0.0 } else { LOG_ONE_HOT_COLD }));
        }
    }
    clean
}
