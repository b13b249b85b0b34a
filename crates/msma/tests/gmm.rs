//! Gaussian mixture: EM monotonicity, recovery of a known mixture, an independent density
//! computation, scikit-learn reference values (tools/msma_reference.py), degenerate input.

use msma::{GmmParams, Matrix, MsmaError};
use proptest::prelude::{any, prop_assert, proptest, ProptestConfig};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

mod support;
use support::{reference_data, reference_init};

#[test]
fn score_samples_match_scikit_learn_at_fixed_parameters() {
    // tools/msma_reference.py, scikit-learn 1.9.1: score_samples at the fixed parameters.
    let ll = reference_init().score_samples(&reference_data()).unwrap();
    approx::assert_relative_eq!(ll[0], -2.404_512_682_938_355_6, max_relative = 1e-12);
    approx::assert_relative_eq!(ll[7], -2.059_277_916_680_966_5, max_relative = 1e-12);
    approx::assert_relative_eq!(ll[39], -3.393_605_850_802_085, max_relative = 1e-12);
}

#[test]
fn em_matches_scikit_learn_from_fixed_initial_parameters() {
    // Five EM iterations from the same start, tol 0, reg_covar 1e-6 (tools/msma_reference.py).
    let x = reference_data();
    let params = GmmParams::new(3).max_iter(5).tol(0.0);
    let gmm = reference_init().fit_from(&params, &x).unwrap();
    assert_eq!(gmm.report().n_iter, 5);
    approx::assert_relative_eq!(
        gmm.report().lower_bound,
        -2.390_077_791_695_916,
        max_relative = 1e-10
    );
    let w = gmm.weights();
    for (a, b) in w.iter().zip([
        0.493_428_948_047_482_05,
        0.252_668_818_053_903_34,
        0.253_902_233_898_614_55,
    ]) {
        approx::assert_relative_eq!(*a, b, max_relative = 1e-9);
    }
    let means = gmm.means();
    let expected = [
        0.257_062_958_759_684_66,
        -0.517_443_236_754_083_9,
        0.631_982_360_819_826_5,
        0.716_845_430_069_018_8,
        -0.717_734_494_807_913,
        0.446_088_697_224_509_94,
    ];
    for (a, b) in means.as_slice().iter().zip(expected) {
        approx::assert_relative_eq!(*a, b, max_relative = 1e-9);
    }
    let ll = gmm.score_samples(&x).unwrap();
    approx::assert_relative_eq!(ll[0], -2.517_869_860_472_479, max_relative = 1e-9);
    approx::assert_relative_eq!(ll[7], -1.627_931_970_409_565_4, max_relative = 1e-9);
    approx::assert_relative_eq!(ll[39], -2.255_686_314_502_294, max_relative = 1e-9);
    approx::assert_relative_eq!(
        gmm.bic(&x).unwrap(),
        252.790_217_637_601_02,
        max_relative = 1e-9
    );
}

/// ln N(x | μ, Σ) for 2-D, with the explicit inverse and determinant.
fn log_normal_2d(x: &[f64], mu: &[f64], cov: &[f64]) -> f64 {
    let det = cov[0] * cov[3] - cov[1] * cov[2];
    let (a, b) = (x[0] - mu[0], x[1] - mu[1]);
    let quad = (cov[3] * a * a - (cov[1] + cov[2]) * a * b + cov[0] * b * b) / det;
    -(2.0 * std::f64::consts::PI).ln() - 0.5 * det.ln() - 0.5 * quad
}

fn sample_known_mixture(n: usize, seed: u64) -> Matrix {
    // Three 2-D components: weights .5/.3/.2, means far apart, correlated covariances
    // through Cholesky factors L (x = μ + L z).
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let comps = [
        (0.5, [0.0, 0.0], [1.0, 0.0, 0.5, 0.8]),
        (0.3, [6.0, 1.0], [0.5, 0.0, -0.2, 0.3]),
        (0.2, [-4.0, 5.0], [0.7, 0.0, 0.0, 1.2]),
    ];
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let u: f64 = rng.random();
        let c = if u < 0.5 {
            0
        } else if u < 0.8 {
            1
        } else {
            2
        };
        let (_, mu, l) = comps[c];
        let z0: f64 = rng.sample(StandardNormal);
        let z1: f64 = rng.sample(StandardNormal);
        rows.push(vec![mu[0] + l[0] * z0, mu[1] + l[2] * z0 + l[3] * z1]);
    }
    Matrix::from_rows(&rows).unwrap()
}

#[test]
fn recovers_a_known_mixture() {
    let x = sample_known_mixture(6000, 1);
    let gmm = GmmParams::new(3).seed(3).fit(&x).unwrap();
    assert!(gmm.report().converged);
    let means = gmm.means();
    let mut order: Vec<usize> = (0..3).collect();
    order.sort_by(|&a, &b| means.row(a)[0].total_cmp(&means.row(b)[0]));
    // Sorted by x: component 2 (-4, 5), component 0 (0, 0), component 1 (6, 1).
    let expected = [
        (0.2, [-4.0, 5.0], [0.49, 0.0, 0.0, 1.44]),
        (0.5, [0.0, 0.0], [1.0, 0.5, 0.5, 0.89]),
        (0.3, [6.0, 1.0], [0.25, -0.1, -0.1, 0.13]),
    ];
    for (&k, (w, mu, cov)) in order.iter().zip(expected) {
        assert!(
            (gmm.weights()[k] - w).abs() < 0.02,
            "weight {} vs {w}",
            gmm.weights()[k]
        );
        for j in 0..2 {
            assert!(
                (means.row(k)[j] - mu[j]).abs() < 0.08,
                "mean {:?} vs {mu:?}",
                means.row(k)
            );
        }
        for (a, b) in gmm.covariance(k).iter().zip(cov) {
            assert!(
                (a - b).abs() < 0.1 * (1.0 + b.abs()),
                "cov {:?} vs {cov:?}",
                gmm.covariance(k)
            );
        }
    }
    // score_samples against an independent density computation from the fitted parameters.
    let ll = gmm.score_samples(&x).unwrap();
    for i in [0, 17, 999, 5999] {
        let p: f64 = (0..3)
            .map(|k| {
                gmm.weights()[k] * log_normal_2d(x.row(i), means.row(k), gmm.covariance(k)).exp()
            })
            .sum();
        approx::assert_relative_eq!(ll[i], p.ln(), max_relative = 1e-10);
    }
    // Posteriors sum to one.
    let proba = gmm.predict_proba(&x).unwrap();
    for row in proba.iter_rows().take(50) {
        approx::assert_relative_eq!(row.iter().sum::<f64>(), 1.0, epsilon = 1e-12);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn em_log_likelihood_never_decreases(seed in any::<u64>(), k in 1usize..5, d in 1usize..4) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let rows: Vec<Vec<f64>> = (0..150)
            .map(|_| (0..d).map(|j| rng.sample::<f64, _>(StandardNormal) * (1.0 + j as f64) + if rng.random::<bool>() { 3.0 } else { 0.0 }).collect())
            .collect();
        let x = Matrix::from_rows(&rows).unwrap();
        let gmm = GmmParams::new(k).seed(seed).tol(1e-10).max_iter(200).fit(&x).unwrap();
        let report = gmm.report();
        if report.reseeded == 0 && report.regularised == 0 {
            for w in report.history.windows(2) {
                prop_assert!(w[1] >= w[0] - 1e-9 * w[0].abs().max(1.0), "history {:?}", report.history);
            }
        }
        prop_assert!(gmm.score_samples(&x).unwrap().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn degenerate_input_is_handled() {
    // Fewer rows than components.
    let few = Matrix::from_rows(&[vec![0.0], vec![1.0]]).unwrap();
    assert!(matches!(
        GmmParams::new(3).fit(&few),
        Err(MsmaError::TooFewRows { .. })
    ));
    // NaN and infinity.
    let nan = Matrix::from_rows(&[vec![0.0, 1.0], vec![f64::NAN, 1.0], vec![2.0, 2.0]]).unwrap();
    assert!(matches!(
        GmmParams::new(1).fit(&nan),
        Err(MsmaError::NonFinite {
            row: 1,
            column: 0,
            ..
        })
    ));
    // Bad parameters.
    assert!(GmmParams::new(0).fit(&few).is_err());
    assert!(GmmParams::new(1).reg_covar(-1.0).fit(&few).is_err());

    // Duplicate rows and a constant column: like u2r's score norms, which collapse onto a
    // handful of points. Every score must stay finite.
    let mut rows = Vec::new();
    for i in 0..2000 {
        let p = f64::from(i % 5);
        rows.push(vec![p, 2.0 * p + 1.0, 7.0]);
    }
    let x = Matrix::from_rows(&rows).unwrap();
    for k in [3, 5, 9] {
        let gmm = GmmParams::new(k).seed(1).fit(&x).unwrap();
        let ll = gmm.score_samples(&x).unwrap();
        assert!(ll.iter().all(|v| v.is_finite()), "k = {k}");
        let off = Matrix::from_rows(&[vec![2.5, 0.0, 7.0]]).unwrap();
        let far = gmm.score_samples(&off).unwrap()[0];
        assert!(
            far.is_finite() && far < ll[0],
            "k = {k}: {far} vs {}",
            ll[0]
        );
    }
    // Scoring with the wrong width is an error.
    let gmm = GmmParams::new(2).fit(&x).unwrap();
    assert!(gmm.score_samples(&few).is_err());
}
