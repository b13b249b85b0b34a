//! Isolation Forest (Liu, Ting & Zhou 2008), with scikit-learn's defaults and split rule.

use msma::{Detector, Fit, Matrix};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{check_fit_input, check_width, BaselineError};

/// Euler–Mascheroni constant, in the harmonic-number approximation of `c(n)`.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Settings of an [`IsolationForest`] (scikit-learn's `IsolationForest` defaults).
///
/// ```
/// use gnsm_baselines::IsolationForestParams;
/// use msma::{Detector, Fit, Matrix};
/// // Inliers on a small grid, then one far-off record.
/// let rows: Vec<Vec<f64>> = (0..100).map(|i| vec![(i % 10) as f64, (i / 10) as f64]).collect();
/// let forest = IsolationForestParams::default().seed(3).fit(&Matrix::from_rows(&rows)?)?;
/// let scores = forest.score(&Matrix::from_rows(&[vec![4.5, 4.5], vec![40.0, -30.0]])?)?;
/// assert!(scores[1] > scores[0]);
/// # Ok::<(), gnsm_baselines::BaselineError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IsolationForestParams {
    /// Number of trees (default 100).
    pub n_estimators: usize,
    /// Rows drawn (without replacement) per tree: `min(max_samples, n)` (default 256).
    pub max_samples: usize,
    /// Seed of the subsamples and splits.
    pub seed: u64,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        Self {
            n_estimators: 100,
            max_samples: 256,
            seed: 0,
        }
    }
}

impl IsolationForestParams {
    /// Set the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn validate(&self) -> Result<(), BaselineError> {
        for (name, value) in [
            ("n_estimators", self.n_estimators),
            ("max_samples", self.max_samples),
        ] {
            if value == 0 {
                return Err(BaselineError::InvalidParameter {
                    name,
                    value: value.to_string(),
                    reason: "must be at least 1",
                });
            }
        }
        Ok(())
    }
}

/// One node of a tree, stored flat: a split sends `x[feature] <= threshold` to `left`, the
/// rest to `right`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    /// A leaf and the number of training rows that reached it.
    Leaf { size: usize },
}

/// A fitted isolation forest. The score of a record is `2^(−E[h(x)] / c(ψ))`, where `h` is
/// the path length (depth of the leaf reached plus `c(leaf size)`), `ψ` the subsample size
/// and `c` the average path length of an unsuccessful binary-search-tree lookup — in (0, 1],
/// higher = easier to isolate = more anomalous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForest {
    trees: Vec<Vec<Node>>,
    subsample: usize,
    n_features: usize,
}

/// Average path length of an unsuccessful search in a binary search tree of `n` nodes:
/// `c(n) = 2 H(n−1) − 2 (n−1)/n`, with `c(1) = 0`, `c(2) = 1` (scikit-learn's convention).
///
/// ```
/// use gnsm_baselines::average_path_length;
/// assert_eq!(average_path_length(1), 0.0);
/// assert_eq!(average_path_length(2), 1.0);
/// assert!((average_path_length(256) - 10.244_770_920_119_917).abs() < 1e-12);
/// ```
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let m = (n - 1) as f64;
            2.0 * (m.ln() + EULER_GAMMA) - 2.0 * m / n as f64
        }
    }
}

struct TreeBuilder<'a> {
    x: &'a Matrix,
    max_depth: usize,
    rng: Xoshiro256PlusPlus,
    nodes: Vec<Node>,
    features: Vec<usize>,
}

impl TreeBuilder<'_> {
    /// Grow the subtree of `rows` at `depth`; returns its node index.
    fn grow(&mut self, rows: &mut [usize], depth: usize) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node::Leaf { size: rows.len() });
        if rows.len() < 2 || depth >= self.max_depth {
            return id;
        }
        // Draw features without replacement until one is not constant on these rows (the
        // random splitter of scikit-learn's ExtraTree skips constant features the same way).
        let d = self.features.len();
        let mut chosen = None;
        for drawn in 0..d {
            let pick = self.rng.random_range(drawn..d);
            self.features.swap(drawn, pick);
            let feature = self.features[drawn];
            let (lo, hi) = rows
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |acc, &r| {
                    let v = self.x.row(r)[feature];
                    (acc.0.min(v), acc.1.max(v))
                });
            if hi > lo {
                chosen = Some((feature, lo, hi));
                break;
            }
        }
        let Some((feature, lo, hi)) = chosen else {
            return id;
        };
        let mut threshold = lo + self.rng.random::<f64>() * (hi - lo);
        if threshold >= hi {
            threshold = lo;
        }
        // Partition in place: rows going left first.
        let mut split = 0;
        for i in 0..rows.len() {
            if self.x.row(rows[i])[feature] <= threshold {
                rows.swap(i, split);
                split += 1;
            }
        }
        let (left_rows, right_rows) = rows.split_at_mut(split);
        let left = self.grow(left_rows, depth + 1);
        let right = self.grow(right_rows, depth + 1);
        self.nodes[id] = Node::Split {
            feature,
            threshold,
            left,
            right,
        };
        id
    }
}

impl Fit<Matrix> for IsolationForestParams {
    type Detector = IsolationForest;
    type Error = BaselineError;

    fn fit(&self, inliers: &Matrix) -> Result<IsolationForest, BaselineError> {
        self.validate()?;
        check_fit_input("IsolationForest", inliers, 1)?;
        let n = inliers.rows();
        let subsample = self.max_samples.min(n);
        let max_depth = (subsample.max(2) as f64).log2().ceil() as usize;
        // One generator per tree, derived from the seed, so the forest does not depend on
        // how rayon schedules the trees.
        let trees = (0..self.n_estimators)
            .into_par_iter()
            .map(|t| {
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed);
                for _ in 0..t {
                    rng.jump();
                }
                let mut rows = sample(&mut rng, n, subsample).into_vec();
                let mut builder = TreeBuilder {
                    x: inliers,
                    max_depth,
                    rng,
                    nodes: Vec::new(),
                    features: (0..inliers.cols()).collect(),
                };
                builder.grow(&mut rows, 0);
                builder.nodes
            })
            .collect();
        Ok(IsolationForest {
            trees,
            subsample,
            n_features: inliers.cols(),
        })
    }
}

impl IsolationForest {
    /// Number of trees.
    pub fn n_estimators(&self) -> usize {
        self.trees.len()
    }

    /// Rows per tree (ψ).
    pub fn subsample(&self) -> usize {
        self.subsample
    }

    fn path_length(tree: &[Node], row: &[f64]) -> f64 {
        let mut node = 0;
        let mut depth = 0.0;
        loop {
            match tree[node] {
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    node = if row[feature] <= threshold {
                        left
                    } else {
                        right
                    };
                    depth += 1.0;
                }
                Node::Leaf { size } => return depth + average_path_length(size),
            }
        }
    }
}

impl Detector<Matrix> for IsolationForest {
    type Error = BaselineError;

    fn score(&self, records: &Matrix) -> Result<Vec<f64>, BaselineError> {
        check_width("IsolationForest", self.n_features, records)?;
        records.check_finite("IsolationForest records")?;
        let norm = average_path_length(self.subsample).max(f64::MIN_POSITIVE);
        Ok((0..records.rows())
            .into_par_iter()
            .with_min_len(256)
            .map(|i| {
                let row = records.row(i);
                let mean_depth = self
                    .trees
                    .iter()
                    .map(|t| Self::path_length(t, row))
                    .sum::<f64>()
                    / self.trees.len() as f64;
                (-mean_depth / norm).exp2()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_length_constant_matches_hand_values() {
        // c(3) = 2 (ln 2 + γ) − 4/3; c(256) as scikit-learn's _average_path_length([256]).
        let c3 = 2.0 * (2f64.ln() + EULER_GAMMA) - 4.0 / 3.0;
        assert!((average_path_length(3) - c3).abs() < 1e-15);
        assert!((average_path_length(256) - 10.244_770_920_119_917).abs() < 1e-12);
    }

    #[test]
    fn trees_are_bounded_by_the_depth_limit() {
        let rows: Vec<Vec<f64>> = (0..300)
            .map(|i| vec![i as f64, (i * 7 % 13) as f64])
            .collect();
        let x = Matrix::from_rows(&rows).unwrap();
        let forest = IsolationForestParams::default().fit(&x).unwrap();
        assert_eq!(forest.subsample(), 256);
        for tree in &forest.trees {
            let leaves: usize = tree
                .iter()
                .map(|n| match n {
                    Node::Leaf { size } => *size,
                    Node::Split { .. } => 0,
                })
                .sum();
            assert_eq!(leaves, 256, "every subsampled row ends in one leaf");
            for i in 0..x.rows() {
                let mut node = 0;
                let mut depth = 0;
                while let Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } = tree[node]
                {
                    node = if x.row(i)[feature] <= threshold {
                        left
                    } else {
                        right
                    };
                    depth += 1;
                }
                assert!(depth <= 8);
            }
        }
    }

    #[test]
    fn constant_data_gives_single_leaves() {
        let x = Matrix::from_rows(&vec![vec![1.0, 2.0]; 50]).unwrap();
        let forest = IsolationForestParams::default().fit(&x).unwrap();
        assert!(forest.trees.iter().all(|t| t.len() == 1));
        // Every record: h = c(50), score = 2^-1.
        let s = forest.score(&x).unwrap();
        assert!(s.iter().all(|&v| (v - 0.5).abs() < 1e-12));
    }
}
