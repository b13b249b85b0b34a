//! Random one-hot rows for the benchmarks, shared by `#[path]`.

use gnsm::noise::{FeatureLayout, LOG_ONE_HOT_COLD};
use rand::Rng;

/// `n` random one-hot rows of `layout` (categorical only), log-encoded.
pub fn one_hot_rows<R: Rng>(layout: &FeatureLayout, n: usize, rng: &mut R) -> Vec<f32> {
    let mut data = Vec::with_capacity(n * layout.width());
    for _ in 0..n {
        for &k in layout.groups() {
            let hot = rng.random_range(0..k);
            data.extend((0..k).map(|j| if j == hot { 0.0 } else { LOG_ONE_HOT_COLD }));
        }
    }
    data
}
