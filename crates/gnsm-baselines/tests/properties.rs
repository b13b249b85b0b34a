//! Invariants and bad input.

use gnsm_baselines::{
    BaselineError, EcodParams, EcodTails, GmmDetectorParams, IsolationForestParams,
};
use msma::{Detector, Fit, Matrix};
use proptest::prelude::*;

fn matrix(rows: usize, cols: usize) -> impl Strategy<Value = Matrix> {
    prop::collection::vec(
        prop::sample::select(vec![0.0, 1.0, 2.0, 0.5, -3.0]),
        rows * cols,
    )
    .prop_map(move |data| Matrix::new(rows, cols, data).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn ecod_per_record_scores_do_not_depend_on_batching(
        fit in matrix(25, 3),
        batch in matrix(7, 3),
    ) {
        let ecod = EcodParams::default().fit(&fit).unwrap();
        let together = ecod.score(&batch).unwrap();
        for (i, &score) in together.iter().enumerate() {
            let alone = ecod.score(&batch.select_rows(&[i])).unwrap();
            prop_assert_eq!(alone[0], score);
        }
    }

    #[test]
    fn ecod_does_not_depend_on_row_order(fit in matrix(20, 2), batch in matrix(5, 2)) {
        let reversed: Vec<usize> = (0..fit.rows()).rev().collect();
        for tails in [EcodTails::PerRecord, EcodTails::Pooled] {
            let a = EcodParams { tails }.fit(&fit).unwrap().score(&batch).unwrap();
            let b = EcodParams { tails }
                .fit(&fit.select_rows(&reversed))
                .unwrap()
                .score(&batch)
                .unwrap();
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn isolation_scores_lie_in_unit_interval_and_repeat_with_the_seed(
        fit in matrix(40, 3),
        batch in matrix(6, 3),
        seed in 0u64..1000,
    ) {
        let params = IsolationForestParams { n_estimators: 20, ..Default::default() }.seed(seed);
        let a = params.fit(&fit).unwrap().score(&batch).unwrap();
        let b = params.fit(&fit).unwrap().score(&batch).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert!(a.iter().all(|&s| s > 0.0 && s <= 1.0));
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let fit = Matrix::from_rows(&[
        vec![0.0, 1.0],
        vec![1.0, 0.0],
        vec![1.0, 1.0],
        vec![0.0, 0.0],
    ])
    .unwrap();
    let wide = Matrix::from_rows(&[vec![0.0, 1.0, 2.0]]).unwrap();
    let nan = Matrix::from_rows(&[vec![f64::NAN, 1.0]]).unwrap();
    let empty = Matrix::zeros(0, 2);

    let forest = IsolationForestParams::default().fit(&fit).unwrap();
    assert!(matches!(
        forest.score(&wide),
        Err(BaselineError::Width {
            expected: 2,
            got: 3,
            ..
        })
    ));
    assert!(matches!(forest.score(&nan), Err(BaselineError::Msma(_))));
    assert!(matches!(
        IsolationForestParams::default().fit(&empty),
        Err(BaselineError::TooFewRows { .. })
    ));
    assert!(matches!(
        IsolationForestParams {
            n_estimators: 0,
            ..Default::default()
        }
        .fit(&fit),
        Err(BaselineError::InvalidParameter {
            name: "n_estimators",
            ..
        })
    ));

    let ecod = EcodParams::default().fit(&fit).unwrap();
    assert!(matches!(
        ecod.score(&wide),
        Err(BaselineError::Width { .. })
    ));
    assert!(matches!(ecod.score(&nan), Err(BaselineError::Msma(_))));
    assert!(matches!(
        EcodParams::default().fit(&nan),
        Err(BaselineError::Msma(_))
    ));

    assert!(matches!(
        GmmDetectorParams {
            candidates: vec![],
            ..Default::default()
        }
        .fit(&fit),
        Err(BaselineError::InvalidParameter {
            name: "candidates",
            ..
        })
    ));
    assert!(matches!(
        GmmDetectorParams {
            validation_fraction: 1.5,
            ..Default::default()
        }
        .fit(&fit),
        Err(BaselineError::InvalidParameter {
            name: "validation_fraction",
            ..
        })
    ));
    let msg = GmmDetectorParams::default()
        .fit_split(&fit, &wide)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("expected 2 columns, got 3"), "{msg}");
}

#[test]
fn held_out_scores_are_the_chosen_count_fitted_on_train_alone_scoring_validation() {
    use msma::GmmParams;
    let rows: Vec<Vec<f64>> = (0..90)
        .map(|i| {
            let c = [0.0, 4.0, 9.0][i % 3];
            vec![
                c + 0.1 * ((i * 7 % 13) as f64 - 6.0),
                c + 0.1 * ((i * 5 % 11) as f64 - 5.0),
            ]
        })
        .collect();
    let train = Matrix::from_rows(&rows[..70]).unwrap();
    let val = Matrix::from_rows(&rows[70..]).unwrap();
    let params = GmmDetectorParams {
        candidates: vec![1, 3],
        ..GmmDetectorParams::default()
    }
    .seed(7);
    let detector = params.fit_split(&train, &val).unwrap();
    let held = detector.held_out().unwrap();
    let chosen = detector.mixture().n_components();
    // Refit by hand: the chosen count on train alone, scored on the validation rows.
    let alone = GmmParams {
        n_components: chosen,
        seed: 7,
        ..params.gmm.clone()
    }
    .fit(&train)
    .unwrap();
    let scores: Vec<f64> = alone
        .score_samples(&val)
        .unwrap()
        .iter()
        .map(|ll| -ll)
        .collect();
    let mean = scores.iter().sum::<f64>() / 20.0;
    let std = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / 20.0).sqrt();
    assert_eq!(held.rows, 20);
    approx::assert_relative_eq!(held.mean, mean, max_relative = 1e-12);
    approx::assert_relative_eq!(held.std, std, max_relative = 1e-12);
    // The candidate's recorded validation log-likelihood is minus that mean.
    let ll = detector
        .candidates()
        .iter()
        .find(|c| c.components == chosen)
        .and_then(|c| c.validation_ll)
        .unwrap();
    approx::assert_relative_eq!(ll, -mean, max_relative = 1e-12);
}
