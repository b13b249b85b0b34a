//! Conformal p-values on fresh inliers: uniform (a seeded KS test) and a false-positive rate
//! at α within sampling error of α; the calibration survives saving.

use gnsm::data::{SchemaOptions, Table};
use gnsm::models::TabResNetConfig;
use gnsm::{DecisionRule, Device, Gnsm, GnsmConfig};

/// `rows` inliers drawn from one fixed distribution (the generator's seed picks the draw):
/// `a` uniform over 4 values, `b = a` nine times in ten (else uniform), `x ~ N(a, 1)`.
fn inliers(rows: usize, seed: u64) -> Table {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut a, mut b, mut x) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rows {
        let va = (uniform() * 4.0) as usize;
        let vb = if uniform() < 0.9 {
            va
        } else {
            (uniform() * 4.0) as usize
        };
        // Box–Muller.
        let (u1, u2) = (uniform().max(1e-12), uniform());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        a.push(format!("a{va}"));
        b.push(format!("b{vb}"));
        x.push(format!("{:.4}", va as f64 + z));
    }
    Table::from_columns("inliers", [("a", a), ("b", b), ("x", x)]).unwrap()
}

#[test]
fn p_values_of_fresh_inliers_are_uniform_and_alpha_bounds_false_positives() {
    let mut config = GnsmConfig {
        network: TabResNetConfig {
            width: 32,
            depth: 1,
            embedding_size: 16,
            ..Default::default()
        },
        schema: SchemaOptions {
            continuous: vec!["x".into()],
            ..Default::default()
        },
        calibration_fraction: 0.25,
        ..Default::default()
    }
    .with_seed(3);
    config.trainer.steps = 300;
    config.trainer.batch_size = 128;
    config.trainer.eval_every = 100;
    config.min_epochs = 0.0;

    let (detector, summary) = Gnsm::fit(&config, &inliers(2000, 1), &Device::Cpu).unwrap();
    assert_eq!(summary.calibration_rows, 500);
    assert_eq!(summary.train_rows + summary.val_rows, 1500);
    let n_cal = detector.calibration().unwrap().len() as f64;

    let fresh = inliers(2000, 2);
    let mut p = detector.p_values(&fresh, None).unwrap();
    let n = p.len() as f64;
    p.sort_by(f64::total_cmp);
    // Kolmogorov–Smirnov distance to U(0, 1). A p-value is where a score falls among the
    // calibration scores, so the distance is the two-sample KS statistic of calibration
    // against fresh scores: 1% critical value 1.628·√((m + n)/(m·n)).
    let ks = |p: &[f64]| {
        p.iter()
            .enumerate()
            .map(|(i, &v)| ((i + 1) as f64 / n - v).abs().max((v - i as f64 / n).abs()))
            .fold(0.0f64, f64::max)
    };
    let critical = 1.628 * ((n_cal + n) / (n_cal * n)).sqrt() + 1.0 / (n_cal + 1.0);
    assert!(ks(&p) < critical, "KS distance {} ≥ {critical}", ks(&p));
    // The test has power: rows whose `b` ignores `a` are not like the inliers.
    let shifted = inliers(2000, 2);
    let b: Vec<String> = (0..2000).map(|i| format!("b{}", (i * 7) % 4)).collect();
    let a: Vec<&str> = (0..2000).map(|r| shifted.column(0).value(r)).collect();
    let x: Vec<&str> = (0..2000).map(|r| shifted.column(2).value(r)).collect();
    let shifted = Table::from_columns(
        "shifted",
        [
            ("a", a),
            ("b", b.iter().map(String::as_str).collect()),
            ("x", x),
        ],
    )
    .unwrap();
    let mut q = detector.p_values(&shifted, None).unwrap();
    q.sort_by(f64::total_cmp);
    assert!(ks(&q) > critical, "KS distance {} of shifted rows", ks(&q));

    for alpha in [0.01, 0.05, 0.1] {
        let flagged = detector
            .predict(&fresh, None, DecisionRule::Alpha(alpha))
            .unwrap()
            .iter()
            .filter(|&&f| f)
            .count() as f64;
        let rate = flagged / n;
        let slack =
            3.0 * (alpha * (1.0 - alpha) / n_cal).sqrt() + 3.0 * (alpha * (1.0 - alpha) / n).sqrt();
        assert!(rate <= alpha + slack, "FPR {rate} at alpha {alpha}");
        // The rule and the p-values agree row by row.
        let by_p = p.iter().filter(|&&v| v <= alpha).count() as f64;
        assert_eq!(by_p, flagged, "alpha {alpha}");
    }

    // A far-off row gets the smallest p-value there is.
    let odd = Table::from_columns("odd", [("a", ["a0"]), ("b", ["b3"]), ("x", ["40.0"])]).unwrap();
    assert_eq!(
        detector.p_values(&odd, None).unwrap()[0],
        1.0 / (n_cal + 1.0)
    );

    // Saved and loaded, the calibration scores the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gnsm");
    detector.save(&path).unwrap();
    let loaded = Gnsm::load(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.calibration(), detector.calibration());
    assert_eq!(
        loaded.threshold(DecisionRule::Contamination(0.05)).unwrap(),
        detector
            .threshold(DecisionRule::Contamination(0.05))
            .unwrap()
    );
}
