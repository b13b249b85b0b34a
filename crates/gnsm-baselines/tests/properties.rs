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
