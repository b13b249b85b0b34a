//! Decisions for the baselines through msma's traits (`CalibratedParams`): on fresh inliers
//! the conformal p-values are uniform (a seeded KS test) and the false-positive rate at α is
//! within sampling error of α; shifted rows are flagged; the rule agrees with the p-values.

use gnsm_baselines::{EcodParams, EcodTails, GmmDetectorParams, IsolationForestParams};
use msma::{CalibratedParams, DecisionRule, Detector, Fit, Matrix};

/// `rows` records of a fixed distribution: a one-hot group of 4 (`c` uniform) and two
/// continuous columns `N(c, 1)` and `N(−c, 0.5)`; `shift` moves the second column's mean.
fn records(rows: usize, seed: u64, shift: f64) -> Matrix {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut data = Vec::with_capacity(rows * 6);
    for _ in 0..rows {
        let c = (uniform() * 4.0) as usize;
        data.extend((0..4).map(|j| f64::from(u8::from(j == c))));
        let mut normal = || {
            let (u1, u2) = (uniform().max(1e-12), uniform());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let (z1, z2) = (normal(), normal());
        data.push(c as f64 + z1);
        data.push(-(c as f64) + 0.5 * z2 + shift);
    }
    Matrix::new(rows, 6, data).unwrap()
}

/// KS distance of sorted p-values to U(0, 1).
fn ks(p: &[f64]) -> f64 {
    let n = p.len() as f64;
    p.iter()
        .enumerate()
        .map(|(i, &v)| ((i + 1) as f64 / n - v).abs().max((v - i as f64 / n).abs()))
        .fold(0.0f64, f64::max)
}

fn check_calibrated<P>(params: P, name: &str)
where
    P: Fit<Matrix, Error = gnsm_baselines::BaselineError> + Clone,
    P::Detector: Detector<Matrix, Error = gnsm_baselines::BaselineError>,
{
    let calibrated = CalibratedParams {
        params,
        fraction: 0.25,
        seed: 9,
    };
    let detector = calibrated.fit(&records(2400, 1, 0.0)).unwrap();
    let n_cal = detector.calibration().len() as f64;
    assert_eq!(n_cal, 600.0, "{name}");

    let fresh = records(2000, 2, 0.0);
    let mut p = detector.p_values(&fresh).unwrap();
    let n = p.len() as f64;
    p.sort_by(f64::total_cmp);
    // Two-sample KS at 1% (calibration against fresh scores) plus the p-values' grid step.
    let critical = 1.628 * ((n_cal + n) / (n_cal * n)).sqrt() + 1.0 / (n_cal + 1.0);
    assert!(ks(&p) < critical, "{name}: KS {} ≥ {critical}", ks(&p));

    let mut q = detector.p_values(&records(2000, 2, 3.0)).unwrap();
    q.sort_by(f64::total_cmp);
    assert!(ks(&q) > critical, "{name}: shifted rows look like inliers");

    for alpha in [0.01, 0.05, 0.1] {
        let flags = detector
            .predict(&fresh, DecisionRule::Alpha(alpha))
            .unwrap();
        let flagged = flags.iter().filter(|&&f| f).count() as f64;
        let slack =
            3.0 * (alpha * (1.0 - alpha) / n_cal).sqrt() + 3.0 * (alpha * (1.0 - alpha) / n).sqrt();
        assert!(
            flagged / n <= alpha + slack,
            "{name}: FPR {} at {alpha}",
            flagged / n
        );
        let by_p = p.iter().filter(|&&v| v <= alpha).count() as f64;
        assert_eq!(by_p, flagged, "{name}: rule and p-values at {alpha}");
    }
}

#[test]
fn calibrated_isolation_forest() {
    check_calibrated(IsolationForestParams::default().seed(4), "IForest");
}

#[test]
fn calibrated_ecod() {
    check_calibrated(
        EcodParams {
            tails: EcodTails::Pooled,
        },
        "ECOD",
    );
}

#[test]
fn calibrated_gmm() {
    check_calibrated(
        GmmDetectorParams {
            candidates: vec![2, 4],
            ..Default::default()
        }
        .seed(5),
        "GMM",
    );
}

#[test]
fn bad_fractions_are_refused() {
    let x = records(50, 3, 0.0);
    for fraction in [0.0, 1.0, f64::NAN] {
        let params = CalibratedParams {
            params: EcodParams::default(),
            fraction,
            seed: 0,
        };
        assert!(params.fit(&x).is_err(), "fraction {fraction}");
    }
}
