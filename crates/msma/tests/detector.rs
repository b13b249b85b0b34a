//! The MSMA detector end to end: selection, scoring, save/load.

use msma::{
    select_components, Detector, Fit, GmmParams, Matrix, Msma, MsmaError, MsmaParams, NormKind,
    ScoreNorms, SelectionCriterion, SelectionParams,
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

    let dir = std::env::temp_dir().join(format!("msma-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.json");
    detector.save(&path).unwrap();
    let back = Msma::load(&path).unwrap();
    assert_eq!(back.score(&test).unwrap(), scores);

    // A corrupt file, a foreign file and a newer format are clear errors.
    std::fs::write(&path, b"{\"format\": \"msma\", \"version\": 1, \"model\": ").unwrap();
    assert!(matches!(Msma::load(&path), Err(MsmaError::Format { .. })));
    std::fs::write(&path, b"{\"hello\": 1}").unwrap();
    assert!(matches!(Msma::load(&path), Err(MsmaError::Format { .. })));
    std::fs::write(
        &path,
        b"{\"format\": \"msma\", \"version\": 99, \"model\": {}}",
    )
    .unwrap();
    let err = Msma::load(&path).unwrap_err().to_string();
    assert!(err.contains("version"), "{err}");
    assert!(matches!(
        Msma::load(dir.join("missing.json")),
        Err(MsmaError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn score_norms_from_level_scores() {
    let l0 = [3.0f32, 4.0, 1.0, 0.0];
    let l1 = [0.0f32, 2.0, 2.0, 2.0];
    let sq = ScoreNorms::from_level_scores(&[&l0, &l1], 2, NormKind::Squared).unwrap();
    assert_eq!(sq.matrix().row(0), &[25.0, 4.0]);
    assert_eq!(sq.matrix().row(1), &[1.0, 8.0]);
    assert_eq!((sq.rows(), sq.levels()), (2, 2));
    assert!(ScoreNorms::from_level_scores(&[&l0, &l1[..3]], 2, NormKind::L2).is_err());
    assert!(ScoreNorms::from_level_scores(&[&l0[..3]], 2, NormKind::L2).is_err());
}
