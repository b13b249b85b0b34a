//! The one-hot density term of the default score: rebuilt by hand from the public pieces
//! (the baseline mixture, the loss alone), gated by its generalisation gap, independent of
//! row order and batching, bit-identical across seeded runs, and saved with the model.

mod support;

use candle_core::Device;
use gnsm::baselines::GmmDetectorParams;
use gnsm::data::{CsvOptions, Encoding, Schema, Table};
use gnsm::msma::Matrix;
use gnsm::{DenoisingParams, Gnsm, GnsmConfig, OneHotDensityParams, ScoreMethod};

fn config() -> GnsmConfig {
    support::small_config(300)
}

fn one_hot(schema: &Schema, table: &Table, rows: &[usize]) -> Matrix {
    let e = schema.encode_rows(table, rows, Encoding::OneHot).unwrap();
    Matrix::new(
        e.rows,
        e.layout.width(),
        e.data.iter().map(|&v| f64::from(v)).collect(),
    )
    .unwrap()
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn loss_alone(term: Option<OneHotDensityParams>) -> ScoreMethod {
    ScoreMethod::DenoisingLoss(DenoisingParams {
        one_hot: term,
        ..DenoisingParams::default()
    })
}

#[test]
fn the_default_score_is_the_loss_plus_the_one_hot_mixture_each_standardised() {
    let (dir, path) = support::planted_file("one-hot");
    let table = Table::read(&path, &CsvOptions::default()).unwrap();
    let config = config();
    assert!(
        matches!(&config.score, ScoreMethod::DenoisingLoss(p) if p.one_hot.is_some()),
        "the term is on by default"
    );
    let mut schema = Schema::infer(&table, &config.schema).unwrap();
    let (train, val): (Vec<usize>, Vec<usize>) = ((0..540).collect(), (540..600).collect());
    let inliers: Vec<usize> = (0..600).collect();
    schema.fit(&table, &inliers).unwrap();
    let fit = |config: &GnsmConfig| {
        Gnsm::fit_rows(
            config,
            schema.clone(),
            &table,
            &train,
            &val,
            &Device::Cpu,
            &mut |_| {},
        )
        .unwrap()
    };
    let (detector, summary) = fit(&config);
    let report = summary.one_hot.clone().expect("the term was fitted");
    assert_eq!((report.fit_rows, report.val_rows), (540, 60));
    let gap = report.gap.expect("a mixture was fitted");
    assert!(
        report.used,
        "planted inliers are a mixture that generalises: {report:?}"
    );
    assert!(gap < 1.0);
    assert_eq!(detector.one_hot_report(), Some(&report));
    let combined = detector.score_table(&table, None).unwrap();

    // Seeded runs are bit-identical.
    assert_eq!(fit(&config).0.score_table(&table, None).unwrap(), combined);

    // Refitting the scoring stage on the fit's own rows and settings scores as the fit.
    let mut refitted = fit(&config).0;
    refitted
        .refit_scoring_split(
            config.score.clone(),
            config.msma.clone(),
            config.denoise,
            &table,
            &train,
            &val,
        )
        .unwrap();
    assert_eq!(refitted.one_hot_report(), Some(&report));
    assert_eq!(refitted.score_table(&table, None).unwrap(), combined);

    // By hand: the loss alone on the same network, and the baseline mixture on the same rows.
    let model = dir.join("combined.gnsm");
    detector.save(&model).unwrap();
    let mut alone = Gnsm::load(&model, &Device::Cpu).unwrap();
    assert_eq!(alone.score_table(&table, None).unwrap(), combined);
    alone
        .refit_scoring(
            loss_alone(None),
            config.msma.clone(),
            true,
            &table,
            &inliers,
        )
        .unwrap();
    assert_eq!(alone.one_hot_report(), None);
    let loss = alone.score_table(&table, None).unwrap();
    let gmm = GmmDetectorParams::default()
        .seed(7)
        .fit_split(
            &one_hot(&schema, &table, &train),
            &one_hot(&schema, &table, &val),
        )
        .unwrap();
    assert_eq!(gmm.mixture().n_components(), report.components);
    let held = gmm.held_out().unwrap();
    let lls = gmm
        .mixture()
        .score_samples(&one_hot(&schema, &table, &(0..620).collect::<Vec<_>>()))
        .unwrap();
    let (loss_mean, loss_std) = mean_std(&loss[540..600]);
    for (i, (&c, (&l, &ll))) in combined.iter().zip(loss.iter().zip(&lls)).enumerate() {
        let expected = (l - loss_mean) / loss_std + (-ll - held.mean) / held.std;
        approx::assert_relative_eq!(c, expected, max_relative = 1e-9, epsilon = 1e-9);
        assert!(c.is_finite(), "row {i}");
    }
    // The in-sample side of the gap: the refitted mixture on the validation rows.
    let (in_mean, in_std) = mean_std(
        &gmm.mixture()
            .score_samples(&one_hot(&schema, &table, &val))
            .unwrap()
            .iter()
            .map(|ll| -ll)
            .collect::<Vec<_>>(),
    );
    approx::assert_relative_eq!(gap, (held.mean - in_mean) / in_std, max_relative = 1e-9);

    // Row order and batching do not change a row's score.
    let reversed: Vec<usize> = (0..620).rev().collect();
    let mut back = detector.score_table(&table, Some(&reversed)).unwrap();
    back.reverse();
    assert_eq!(back, combined);
    assert_eq!(
        detector.score_table(&table, Some(&[613])).unwrap()[0],
        combined[613]
    );

    // A gate no gap passes leaves the loss alone.
    let never = OneHotDensityParams {
        max_gap: f64::NEG_INFINITY,
        ..Default::default()
    };
    let mut gated = Gnsm::load(&model, &Device::Cpu).unwrap();
    gated
        .refit_scoring(
            loss_alone(Some(never)),
            config.msma.clone(),
            true,
            &table,
            &inliers,
        )
        .unwrap();
    let gated_report = gated.one_hot_report().unwrap();
    assert!(!gated_report.used && gated_report.gap.is_some());
    assert_eq!(gated.score_table(&table, None).unwrap(), loss);

    // The term survives a save and reload, and a bad setting is refused.
    let bad = OneHotDensityParams {
        max_fit_cost: 0.0,
        ..Default::default()
    };
    assert!(gated
        .refit_scoring(
            loss_alone(Some(bad)),
            config.msma.clone(),
            true,
            &table,
            &inliers
        )
        .is_err());
    support::cleanup(&dir);
}

#[test]
fn over_the_fitting_budget_the_mixture_sees_a_seeded_sample() {
    let (dir, path) = support::planted_file("one-hot-budget");
    let table = Table::read(&path, &CsvOptions::default()).unwrap();
    let mut config = config();
    config.trainer.steps = 30;
    let (mut detector, _) = Gnsm::fit(&config, &table, &Device::Cpu).unwrap();
    let width = detector.model().layout().width() as f64;
    // 100 rows' worth of budget.
    let capped = OneHotDensityParams {
        max_fit_cost: 100.0 * width * width,
        ..Default::default()
    };
    let inliers: Vec<usize> = (0..600).collect();
    let refit = |detector: &mut Gnsm| {
        detector
            .refit_scoring(
                loss_alone(Some(capped.clone())),
                config.msma.clone(),
                true,
                &table,
                &inliers,
            )
            .unwrap();
        (
            detector.one_hot_report().unwrap().clone(),
            detector.score_table(&table, Some(&[0, 5, 610])).unwrap(),
        )
    };
    let (report, scores) = refit(&mut detector);
    assert_eq!((report.fit_rows, report.val_rows), (100, 60));
    assert_eq!(
        refit(&mut detector),
        (report, scores),
        "the sample is seeded"
    );
    support::cleanup(&dir);
}
