//! AP and ROC-AUC against hand-computed cases (with ties) and scikit-learn values
//! (tools/msma_reference.py), plus their invariances; conformal decisions against a
//! hand-computed case and their false-positive bound.

use msma::{
    average_precision, conformal_decisions, precision_recall_curve, roc_auc, roc_curve, MsmaError,
};
use proptest::prelude::{prop_assert, proptest, ProptestConfig};

#[test]
fn hand_computed_without_ties() {
    // Ranked: + - + - : AP = ½·1 + ½·⅔; AUROC: pairs (+,-) ordered right 3 of 4.
    let labels = [true, false, true, false];
    let scores = [0.9, 0.8, 0.7, 0.1];
    approx::assert_relative_eq!(
        average_precision(&labels, &scores).unwrap(),
        5.0 / 6.0,
        epsilon = 1e-15
    );
    approx::assert_relative_eq!(roc_auc(&labels, &scores).unwrap(), 0.75, epsilon = 1e-15);
}

#[test]
fn hand_computed_with_ties() {
    // Scores 0.9 (+), 0.5 (+), 0.5 (-), 0.5 (-), 0.1 (+), 0.1 (-).
    // Thresholds: 0.9 → tp 1 fp 0 (P 1, R ⅓); 0.5 → tp 2 fp 2 (P ½, R ⅔); 0.1 → tp 3 fp 3 (P ½, R 1).
    // AP = ⅓·1 + ⅓·½ + ⅓·½ = ⅔.
    // AUROC: 9 (+,-) pairs; 0.9 beats all 3 negatives (3); 0.5 beats the 0.1 negative (1) and
    // ties two (1); 0.1 ties one (½) → 5.5 / 9.
    let labels = [true, true, false, false, true, false];
    let scores = [0.9, 0.5, 0.5, 0.5, 0.1, 0.1];
    approx::assert_relative_eq!(
        average_precision(&labels, &scores).unwrap(),
        2.0 / 3.0,
        epsilon = 1e-15
    );
    approx::assert_relative_eq!(
        roc_auc(&labels, &scores).unwrap(),
        5.5 / 9.0,
        epsilon = 1e-15
    );
    let pr = precision_recall_curve(&labels, &scores).unwrap();
    assert_eq!(pr.len(), 3);
    let roc = roc_curve(&labels, &scores).unwrap();
    assert_eq!(roc.first().map(|p| (p.0, p.1)), Some((0.0, 0.0)));
    assert_eq!(roc.last().map(|p| (p.0, p.1)), Some((1.0, 1.0)));
    // All tied: AP = prevalence, AUROC = ½.
    let flat = [0.3; 6];
    approx::assert_relative_eq!(
        average_precision(&labels, &flat).unwrap(),
        0.5,
        epsilon = 1e-15
    );
    approx::assert_relative_eq!(roc_auc(&labels, &flat).unwrap(), 0.5, epsilon = 1e-15);
}

fn fixed_case() -> (Vec<bool>, Vec<f64>) {
    // score_i = round(((37 i) mod 101) / 101, 1), label_i = (i mod 7 == 0) or (i mod 11 == 3)
    (0..60u32)
        .map(|i| {
            let s = (f64::from((37 * i) % 101) / 101.0 * 10.0).round() / 10.0;
            (i % 7 == 0 || i % 11 == 3, s)
        })
        .unzip()
}

#[test]
fn matches_scikit_learn() {
    // tools/msma_reference.py: average_precision_score and roc_auc_score, scikit-learn 1.9.1.
    let (labels, scores) = fixed_case();
    approx::assert_relative_eq!(
        average_precision(&labels, &scores).unwrap(),
        0.199_981_658_553_087_1,
        max_relative = 1e-12
    );
    approx::assert_relative_eq!(
        roc_auc(&labels, &scores).unwrap(),
        0.352_484_472_049_689_47,
        max_relative = 1e-12
    );
}

#[test]
fn conformal_decisions_by_hand() {
    // 20 inliers scoring 1..=20, anomalies at 25, 20 and 3. At α = 0.1 an inlier is flagged
    // when #{inliers ≥ s} / 20 ≤ 0.1 (s ∈ {19, 20}); an anomaly when (1 + #{inliers ≥ s}) / 21
    // ≤ 0.1, i.e. #{inliers ≥ s} ≤ 1 (25 and 20, not 3).
    let mut labels = vec![false; 20];
    let mut scores: Vec<f64> = (1..=20).map(f64::from).collect();
    labels.extend([true, true, true]);
    scores.extend([25.0, 20.0, 3.0]);
    let m = conformal_decisions(&labels, &scores, 0.1).unwrap();
    assert_eq!(m.flagged, 4);
    approx::assert_relative_eq!(m.precision, 0.5);
    approx::assert_relative_eq!(m.recall, 2.0 / 3.0);
    approx::assert_relative_eq!(m.f1, 2.0 * 0.5 * (2.0 / 3.0) / (0.5 + 2.0 / 3.0));
    approx::assert_relative_eq!(m.false_positive_rate, 0.1);
    // Too small a level for 20 inliers: nothing is flagged, precision and F1 are 0.
    let none = conformal_decisions(&labels, &scores, 0.01).unwrap();
    assert_eq!((none.flagged, none.precision, none.f1), (0, 0.0, 0.0));
    assert!(conformal_decisions(&labels, &scores, 0.0).is_err());
    assert!(conformal_decisions(&labels[..3], &scores, 0.1).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn conformal_decisions_flag_at_most_alpha_of_the_inliers(
        scores in proptest::collection::vec(0u8..40, 4..200),
        alpha in 0.01f64..0.5,
    ) {
        // Every fourth record an anomaly; integer scores make ties common.
        let labels: Vec<bool> = (0..scores.len()).map(|i| i % 4 == 3).collect();
        let scores: Vec<f64> = scores.into_iter().map(f64::from).collect();
        let m = conformal_decisions(&labels, &scores, alpha).unwrap();
        prop_assert!(m.false_positive_rate <= alpha + 1e-12);
        let wider = conformal_decisions(&labels, &scores, (alpha * 1.5).min(0.99)).unwrap();
        prop_assert!(wider.recall >= m.recall && wider.flagged >= m.flagged);
    }

    #[test]
    fn invariant_under_increasing_transforms_and_reversal(
        raw in proptest::collection::vec((proptest::bool::ANY, 0u8..20), 2..80),
    ) {
        let labels: Vec<bool> = raw.iter().map(|r| r.0).collect();
        let positives = labels.iter().filter(|&&l| l).count();
        if positives == 0 || positives == labels.len() {
            return Ok(());
        }
        let scores: Vec<f64> = raw.iter().map(|r| f64::from(r.1)).collect();
        let transformed: Vec<f64> = scores.iter().map(|s| (0.3 * s).exp() * 5.0 - 2.0).collect();
        let ap = average_precision(&labels, &scores).unwrap();
        let auc = roc_auc(&labels, &scores).unwrap();
        prop_assert!((ap - average_precision(&labels, &transformed).unwrap()).abs() < 1e-12);
        prop_assert!((auc - roc_auc(&labels, &transformed).unwrap()).abs() < 1e-12);
        let reversed: Vec<f64> = scores.iter().map(|s| -s).collect();
        prop_assert!((roc_auc(&labels, &reversed).unwrap() - (1.0 - auc)).abs() < 1e-12);
        prop_assert!((0.0..=1.0).contains(&ap) && (0.0..=1.0).contains(&auc));
    }
}

#[test]
fn bad_input_is_an_error() {
    assert!(matches!(
        average_precision(&[true, true], &[0.1, 0.2]),
        Err(MsmaError::OneClass { .. })
    ));
    assert!(matches!(
        roc_auc(&[false, false], &[0.1, 0.2]),
        Err(MsmaError::OneClass { .. })
    ));
    assert!(matches!(
        roc_auc(&[true, false], &[0.1]),
        Err(MsmaError::Shape { .. })
    ));
    assert!(matches!(
        average_precision(&[true, false], &[f64::NAN, 0.1]),
        Err(MsmaError::NonFinite { row: 0, .. })
    ));
}
