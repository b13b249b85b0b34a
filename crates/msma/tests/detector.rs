//! The MSMA detector end to end: selection, scoring, serialisation.

use msma::{
    select_components, Detector, Fit, GmmParams, Matrix, Msma, MsmaParams, SelectionCriterion,
    SelectionParams,
};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

fn clusters(n: usize, centers: &[[f64; 2]], seed: u64) -> Matrix {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let c = centers[i % centers.len()];
            vec![
                c[0] + 0.3 * rng.sample::<f64, _>(StandardNormal),
                c[1] + 0.3 * rng.sample::<f64, _>(StandardNormal),
            ]
        })
        .collect();
    Matrix::from_rows(&rows).unwrap()
}

#[test]
fn selection_prefers_the_true_count_and_reports_every_candidate() {
    let centers = [[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0], [8.0, 8.0]];
    let x = clusters(1000, &centers, 5);
    let params = SelectionParams {
        candidates: vec![1, 2, 5],
        ..Default::default()
    };
    let sel = select_components(&x, &GmmParams::default().seed(1), &params).unwrap();
    assert_eq!(sel.chosen, 5);
    assert_eq!(sel.candidates.len(), 3);
    assert!(sel
        .candidates
        .iter()
        .all(|c| c.folds.len() == 5 && c.criterion.is_some()));
    let bic = SelectionParams {
        candidates: vec![1, 2, 5],
        criterion: SelectionCriterion::Bic,
    };
    assert_eq!(
        select_components(&x, &GmmParams::default().seed(1), &bic)
            .unwrap()
            .chosen,
        5
    );
    // Candidates too large for the data are skipped, not fatal.
    // 10 rows in 5 folds train on 8: the 9-component candidate cannot be fitted.
    let small = clusters(10, &centers, 1);
    let sel =
        select_components(&small, &GmmParams::default(), &SelectionParams::default()).unwrap();
    assert_ne!(sel.chosen, 9);
    assert!(sel.candidates[3].skipped.is_some() && sel.candidates[3].criterion.is_none());
    assert!(select_components(
        &clusters(4, &centers, 1),
        &GmmParams::default(),
        &SelectionParams::default()
    )
    .is_err());
}

#[test]
fn detector_scores_outliers_higher_and_survives_save_load() {
    let inliers = clusters(600, &[[1.0, 1.0], [3.0, 2.0]], 9);
    let detector = MsmaParams::default().fit(&inliers).unwrap();
    let test = Matrix::from_rows(&[
        vec![1.0, 1.0],
        vec![3.0, 2.0],
        vec![10.0, -5.0],
        vec![2.0, 8.0],
    ])
    .unwrap();
    let scores = detector.score(&test).unwrap();
    assert!(scores[2] > scores[0] && scores[2] > scores[1]);
    assert!(scores[3] > scores[0] && scores[3] > scores[1]);
    assert!(detector.selection().is_some());

    // Serialised and read back it scores the same; damaged parameters are refused when
    // read, never scored into NaN or a panic.
    let json = serde_json::to_value(&detector).unwrap();
    let back: Msma = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back.score(&test).unwrap(), scores);
    let damage = |path: &[&str], value: serde_json::Value| {
        let mut bad = json.clone();
        let mut at = &mut bad;
        for key in &path[..path.len() - 1] {
            at = at.get_mut(*key).unwrap();
        }
        at[path[path.len() - 1]] = value;
        serde_json::from_value::<Msma>(bad).unwrap_err().to_string()
    };
    let k = detector.gmm().n_components();
    let mut negative = vec![1.0 / (k as f64 - 1.0); k];
    negative[0] = -0.5;
    negative[1] += 0.5;
    assert!(damage(&["gmm", "weights"], serde_json::json!(negative)).contains("weights"));
    assert!(damage(&["gmm", "weights"], serde_json::json!([1.0])).contains("mixture parameters"));
    assert!(damage(&["scaler", "mean"], serde_json::json!([1e300])).contains("scaler"));
    assert!(damage(&["scaler", "scale"], serde_json::json!([0.0, 1.0])).contains("scale"));
    let mut log_det = json["gmm"]["log_det"].clone();
    log_det[0] = serde_json::json!(log_det[0].as_f64().unwrap() + 1.0);
    assert!(damage(&["gmm", "log_det"], log_det).contains("log-determinants"));
}
