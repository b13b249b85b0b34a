use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use super::sparse_rows::{sq_dist_sparse, sq_dist_to_center, SparseRows};
use crate::Matrix;

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The rows k-means reads: dense, or also as their nonzeros (then distances skip the zeros).
#[derive(Clone, Copy)]
pub(crate) struct KmeansRows<'a> {
    pub(crate) dense: &'a Matrix,
    pub(crate) sparse: Option<&'a SparseRows>,
}

impl KmeansRows<'_> {
    /// `‖x_i − x_j‖²`, bit for bit the same on both representations.
    fn row_dist(&self, i: usize, j: usize) -> f64 {
        match self.sparse {
            Some(s) => sq_dist_sparse(s.row(i), s.row(j)),
            None => sq_dist(self.dense.row(i), self.dense.row(j)),
        }
    }

    /// Index and squared distance of the center nearest row `i` (`center_sq`: the centers'
    /// squared norms, used by the sparse distance).
    fn nearest(&self, i: usize, centers: &[f64], center_sq: &[f64]) -> (usize, f64) {
        let d = self.dense.cols();
        let mut best = (0, f64::INFINITY);
        for (c, center) in centers.chunks_exact(d).enumerate() {
            let dist = match self.sparse {
                Some(s) => sq_dist_to_center(s.row(i), center, center_sq[c]),
                None => sq_dist(self.dense.row(i), center),
            };
            if dist < best.1 {
                best = (c, dist);
            }
        }
        best
    }
}

fn squared_norms(centers: &[f64], d: usize) -> Vec<f64> {
    centers
        .chunks_exact(d)
        .map(|c| c.iter().map(|v| v * v).sum())
        .collect()
}

/// Greedy k-means++ seeding (scikit-learn's: 2 + ⌊ln k⌋ candidates per step, the one that
/// lowers the potential most wins).
fn kmeans_plus_plus(rows: KmeansRows<'_>, k: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
    let x = rows.dense;
    let (n, d) = (x.rows(), x.cols());
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centers = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centers.extend_from_slice(x.row(first));
    let mut closest: Vec<f64> = (0..n).map(|i| rows.row_dist(i, first)).collect();
    for _ in 1..k {
        let potential: f64 = closest.iter().sum();
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            // Sample ∝ D²; uniformly when every point coincides with a center.
            let candidate = if potential > 0.0 {
                let target = rng.random::<f64>() * potential;
                let mut acc = 0.0;
                let mut pick = n - 1;
                for (i, &c) in closest.iter().enumerate() {
                    acc += c;
                    if acc > target {
                        pick = i;
                        break;
                    }
                }
                pick
            } else {
                rng.random_range(0..n)
            };
            let updated: Vec<f64> = closest
                .par_iter()
                .enumerate()
                .map(|(i, &c)| c.min(rows.row_dist(i, candidate)))
                .collect();
            let pot: f64 = updated.iter().sum();
            if best.as_ref().is_none_or(|b| pot < b.0) {
                best = Some((pot, candidate, updated));
            }
        }
        let (_, candidate, updated) = best.expect("at least two trials");
        centers.extend_from_slice(x.row(candidate));
        closest = updated;
    }
    centers
}

/// Cluster labels of a seeded k-means (k-means++ start, then Lloyd iterations until the
/// squared center shift falls below `1e-4 ×` the mean column variance, or labels stop
/// changing, or `max_iter`), as scikit-learn's `KMeans(n_init=1)` computes the starting
/// responsibilities of a Gaussian mixture. An emptied cluster is moved to the row farthest
/// from its center.
///
/// Requires `1 <= k <= x.rows()`.
pub(crate) fn kmeans_labels(
    rows: KmeansRows<'_>,
    k: usize,
    max_iter: usize,
    seed: u64,
) -> Vec<usize> {
    let x = rows.dense;
    let (n, d) = (x.rows(), x.cols());
    assert!(k >= 1 && k <= n, "kmeans_labels needs 1 <= k <= rows");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut centers = kmeans_plus_plus(rows, k, &mut rng);

    let mut mean = vec![0.0; d];
    for row in x.iter_rows() {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, v)| *m += v / n as f64);
    }
    let mean_var = if d == 0 {
        0.0
    } else {
        x.iter_rows().map(|r| sq_dist(r, &mean)).sum::<f64>() / (n * d) as f64
    };
    let tol = 1e-4 * mean_var;

    let mut labels = vec![usize::MAX; n];
    for _ in 0..max_iter.max(1) {
        let center_sq = squared_norms(&centers, d);
        let assigned: Vec<(usize, f64)> = (0..n)
            .into_par_iter()
            .map(|i| rows.nearest(i, &centers, &center_sq))
            .collect();
        let changed = assigned.iter().zip(&labels).any(|(a, &l)| a.0 != l);
        labels.iter_mut().zip(&assigned).for_each(|(l, a)| *l = a.0);
        if !changed {
            break;
        }
        let mut sums = vec![0.0; k * d];
        let mut counts = vec![0usize; k];
        for (i, &l) in labels.iter().enumerate() {
            counts[l] += 1;
            let sum = &mut sums[l * d..(l + 1) * d];
            match rows.sparse {
                // Adding only the nonzeros gives the same sums bit for bit.
                Some(s) => {
                    let (idx, val) = s.row(i);
                    idx.iter().zip(val).for_each(|(&j, v)| sum[j as usize] += v);
                }
                None => sum.iter_mut().zip(x.row(i)).for_each(|(s, v)| *s += v),
            }
        }
        // Relocate empty clusters to the farthest rows.
        let mut far: Vec<usize> = (0..n).collect();
        far.sort_by(|&a, &b| assigned[b].1.total_cmp(&assigned[a].1));
        let mut far_iter = far.into_iter();
        let mut shift = 0.0;
        for c in 0..k {
            let new: Vec<f64> = if counts[c] == 0 {
                let i = far_iter.next().unwrap_or(0);
                x.row(i).to_vec()
            } else {
                sums[c * d..(c + 1) * d]
                    .iter()
                    .map(|s| s / counts[c] as f64)
                    .collect()
            };
            shift += sq_dist(&new, &centers[c * d..(c + 1) * d]);
            centers[c * d..(c + 1) * d].copy_from_slice(&new);
        }
        if shift <= tol {
            // One last assignment to the final centers.
            let center_sq = squared_norms(&centers, d);
            labels = (0..n)
                .into_par_iter()
                .map(|i| rows.nearest(i, &centers, &center_sq).0)
                .collect();
            break;
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_obvious_clusters() {
        let mut rows = Vec::new();
        for i in 0..30 {
            let j = f64::from(i % 5) * 0.01;
            rows.push(vec![j, -j]);
            rows.push(vec![10.0 + j, 10.0]);
            rows.push(vec![-10.0, 5.0 + j]);
        }
        let x = Matrix::from_rows(&rows).unwrap();
        let labels = kmeans_labels(
            KmeansRows {
                dense: &x,
                sparse: None,
            },
            3,
            300,
            1,
        );
        for t in 0..3 {
            let first = labels[t];
            assert!((0..30).all(|i| labels[3 * i + t] == first));
        }
        assert_ne!(labels[0], labels[1]);
        assert_ne!(labels[1], labels[2]);
        assert_ne!(labels[0], labels[2]);
    }

    #[test]
    fn duplicates_do_not_break_it() {
        let x = Matrix::from_rows(&vec![vec![1.0, 1.0]; 10]).unwrap();
        let labels = kmeans_labels(
            KmeansRows {
                dense: &x,
                sparse: None,
            },
            3,
            300,
            0,
        );
        assert_eq!(labels.len(), 10);
        assert!(labels.iter().all(|&l| l < 3));
    }
}
