//! Synthetic score-norm-like data from a known Gaussian mixture, shared by the GMM benchmark
//! and the timing example.

use msma::Matrix;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

/// `n` rows of dimension `d` from a `k`-component mixture with random means (spread 0.6, so components overlap and EM needs many iterations) and
/// random correlated covariances (x = μ + A z, A lower-triangular with entries up to 0.5
/// and a diagonal in [0.5, 1.5]).
pub fn known_mixture(n: usize, d: usize, k: usize, seed: u64) -> Matrix {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let means: Vec<Vec<f64>> = (0..k)
        .map(|_| {
            (0..d)
                .map(|_| 0.6 * rng.sample::<f64, _>(StandardNormal))
                .collect()
        })
        .collect();
    let factors: Vec<Vec<f64>> = (0..k)
        .map(|_| {
            let mut a = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..i {
                    a[i * d + j] = rng.random_range(-0.5..0.5) / (d as f64).sqrt();
                }
                a[i * d + i] = rng.random_range(0.5..1.5);
            }
            a
        })
        .collect();
    let mut data = Vec::with_capacity(n * d);
    let mut z = vec![0.0; d];
    for _ in 0..n {
        let c = rng.random_range(0..k);
        z.iter_mut().for_each(|v| *v = rng.sample(StandardNormal));
        for i in 0..d {
            let a = &factors[c][i * d..i * d + i + 1];
            data.push(means[c][i] + a.iter().zip(&z).map(|(x, y)| x * y).sum::<f64>());
        }
    }
    Matrix::new(n, d, data).expect("sizes agree")
}
