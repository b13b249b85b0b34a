//! The sparse E and M steps (`GmmKernel::Sparse`) against the dense ones and against
//! scikit-learn: same mixture to 1e-9 relative on one-hot rows with continuous columns, and
//! the scikit-learn reference EM run reproduced through the sparse steps.

use msma::{GaussianMixture, GmmKernel, GmmParams, Matrix};
use proptest::prelude::{prop_assert, proptest, ProptestConfig};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

mod support;
use support::{reference_data, reference_init};

/// `n` rows of `groups` one-hot blocks (sizes 2, 3, …) whose categories depend on one of
/// three latent clusters, then `continuous` Gaussian columns shifted by the cluster.
fn one_hot_rows(n: usize, groups: usize, continuous: usize, seed: u64) -> Matrix {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let sizes: Vec<usize> = (0..groups).map(|g| 2 + g % 6).collect();
    let width: usize = sizes.iter().sum::<usize>() + continuous;
    let mut data = Vec::with_capacity(n * width);
    for _ in 0..n {
        let cluster = rng.random_range(0..3usize);
        for &size in &sizes {
            let hot = if rng.random::<f64>() < 0.7 {
                (cluster * 7) % size
            } else {
                rng.random_range(0..size)
            };
            data.extend((0..size).map(|c| f64::from(u8::from(c == hot))));
        }
        for j in 0..continuous {
            data.push(cluster as f64 + 0.3 * j as f64 + rng.random::<f64>() - 0.5);
        }
    }
    Matrix::new(n, width, data).unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * (1.0 + a.abs().max(b.abs()))
}

fn assert_same_mixture(dense: &GaussianMixture, sparse: &GaussianMixture, x: &Matrix) {
    assert_eq!(dense.report().n_iter, sparse.report().n_iter);
    assert!(close(
        dense.report().lower_bound,
        sparse.report().lower_bound,
        1e-9
    ));
    for (a, b) in dense.weights().iter().zip(sparse.weights()) {
        assert!(close(*a, *b, 1e-9), "weights {a} vs {b}");
    }
    let (dm, sm) = (dense.means(), sparse.means());
    for (a, b) in dm.as_slice().iter().zip(sm.as_slice()) {
        assert!(close(*a, *b, 1e-9), "means {a} vs {b}");
    }
    for k in 0..dense.n_components() {
        for (a, b) in dense.covariance(k).iter().zip(sparse.covariance(k)) {
            assert!(close(*a, *b, 1e-9), "covariance {a} vs {b}");
        }
    }
    let (ld, ls) = (
        dense.score_samples(x).unwrap(),
        sparse.score_samples(x).unwrap(),
    );
    for (a, b) in ld.iter().zip(&ls) {
        assert!(close(*a, *b, 1e-9), "log-likelihood {a} vs {b}");
    }
}

#[test]
fn sparse_steps_give_the_dense_mixture_on_one_hot_rows() {
    let x = one_hot_rows(800, 12, 2, 3);
    for k in [1, 3, 5] {
        let params = GmmParams::new(k).seed(11).max_iter(40).tol(0.0);
        let dense = params.clone().kernel(GmmKernel::Dense).fit(&x).unwrap();
        let sparse = params.kernel(GmmKernel::Sparse).fit(&x).unwrap();
        assert_eq!(dense.report().n_iter, 40);
        assert_same_mixture(&dense, &sparse, &x);
    }
}

#[test]
fn sparse_steps_stop_where_the_dense_ones_stop() {
    // Default tolerance: both runs must take the same number of iterations.
    let x = one_hot_rows(1500, 20, 0, 8);
    let params = GmmParams::new(4).seed(5).max_iter(200);
    let dense = params.clone().kernel(GmmKernel::Dense).fit(&x).unwrap();
    let sparse = params.kernel(GmmKernel::Sparse).fit(&x).unwrap();
    assert!(dense.report().converged);
    assert_same_mixture(&dense, &sparse, &x);
}

#[test]
fn automatic_choice_is_one_of_the_two() {
    // 20 one-hot blocks (90 columns, 20 nonzeros a row): `Auto` takes the sparse steps.
    let x = one_hot_rows(3000, 20, 0, 1);
    let params = GmmParams::new(3).seed(2).max_iter(20).tol(0.0);
    let auto = params.clone().fit(&x).unwrap();
    let dense = params.kernel(GmmKernel::Dense).fit(&x).unwrap();
    assert_same_mixture(&dense, &auto, &x);
}

#[test]
fn sparse_steps_reproduce_the_scikit_learn_reference_run() {
    // The reference run of tests/gmm.rs (tools/msma_reference.py, scikit-learn 1.9.1): five
    // EM iterations from fixed parameters on dense 2-column data, here through the sparse
    // steps (every entry is a nonzero).
    let x = reference_data();
    let start = reference_init();
    let params = GmmParams::new(3)
        .max_iter(5)
        .tol(0.0)
        .kernel(GmmKernel::Sparse);
    let gmm = start.fit_from(&params, &x).unwrap();
    approx::assert_relative_eq!(
        gmm.report().lower_bound,
        -2.390_077_791_695_916,
        max_relative = 1e-10
    );
    for (a, b) in gmm.weights().iter().zip([
        0.493_428_948_047_482_05,
        0.252_668_818_053_903_34,
        0.253_902_233_898_614_55,
    ]) {
        approx::assert_relative_eq!(*a, b, max_relative = 1e-9);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    // Looser than the pinned cases: a one-hot block's covariance is singular up to
    // `reg_covar` (1e-6), so EM amplifies the two paths' rounding differences by up to the
    // condition number; on some random draws they reach a few 1e-9 after eight iterations.
    #[test]
    fn sparse_and_dense_scores_agree(seed in 0u64..1000, groups in 1usize..10, k in 1usize..4) {
        let x = one_hot_rows(200, groups, 1, seed);
        let params = GmmParams::new(k).seed(seed).max_iter(8).tol(0.0);
        let dense = params.clone().kernel(GmmKernel::Dense).fit(&x).unwrap();
        let sparse = params.kernel(GmmKernel::Sparse).fit(&x).unwrap();
        let (a, b) = (dense.score_samples(&x).unwrap(), sparse.score_samples(&x).unwrap());
        for (a, b) in a.iter().zip(&b) {
            prop_assert!(close(*a, *b, 1e-7), "{} vs {}", a, b);
        }
    }
}
