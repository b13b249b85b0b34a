//! The paper's evaluation protocol (REFERENCE.md §3): per seed, split the inliers 80/10/10,
//! train on train, validate on val, fit MSMA on train + val, score test inliers + all
//! anomalies, and report AP and ROC-AUC (×100).

use std::time::Instant;

use candle_core::Device;
use gnsm_baselines::{EcodParams, EcodTails, GmmDetectorParams, IsolationForestParams};
use gnsm_data::{labels_of, paper_split, Encoding, Schema, Split, Table};
use gnsm_models::TrainEvent;
use msma::{Detector, Fit, Matrix};
use serde::{Deserialize, Serialize};

use crate::{Gnsm, GnsmConfig, GnsmError};

/// Which rows the one-hot vocabulary (and continuous statistics) are fitted on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VocabularyRule {
    /// Train + validation inliers: nothing from the test rows leaks into the encoder; unseen
    /// test values land in the reserved slot. The default for user data.
    #[default]
    TrainVal,
    /// Every inlier (label 0) row, as the reference code does for six of the seven datasets.
    AllInliers,
    /// Every row, as the reference does for probe.
    AllRows,
}

/// One seed's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Average precision × 100.
    pub ap: f64,
    /// ROC-AUC × 100.
    pub roc_auc: f64,
    /// Training rows.
    pub train_rows: usize,
    /// Test rows (test inliers + anomalies).
    pub test_rows: usize,
    /// Anomalies among them.
    pub test_anomalies: usize,
    /// Training steps done.
    pub steps: usize,
    /// Best validation loss.
    pub best_val_loss: f64,
    /// MSMA components chosen.
    pub components: usize,
    /// Seconds to fit (training + MSMA).
    pub fit_seconds: f64,
    /// Seconds to score the test rows.
    pub score_seconds: f64,
}

/// Mean and population standard deviation (NumPy's `std`) of the seeds' AP and ROC-AUC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// What was evaluated.
    pub dataset: String,
    /// Per seed.
    pub seeds: Vec<SeedResult>,
    /// Mean AP × 100.
    pub ap_mean: f64,
    /// Std of AP × 100.
    pub ap_std: f64,
    /// Mean ROC-AUC × 100.
    pub roc_auc_mean: f64,
    /// Std of ROC-AUC × 100.
    pub roc_auc_std: f64,
}

fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

impl EvalSummary {
    /// Summarise per-seed results.
    pub fn new(dataset: impl Into<String>, seeds: Vec<SeedResult>) -> Self {
        let (ap_mean, ap_std) = mean_std(seeds.iter().map(|s| s.ap));
        let (roc_auc_mean, roc_auc_std) = mean_std(seeds.iter().map(|s| s.roc_auc));
        Self {
            dataset: dataset.into(),
            seeds,
            ap_mean,
            ap_std,
            roc_auc_mean,
            roc_auc_std,
        }
    }
}

/// What one seed produced, besides its numbers: the detector and the test rows with their
/// scores (for reports of the top anomalies).
#[derive(Debug)]
pub struct SeedRun {
    /// The numbers.
    pub result: SeedResult,
    /// The fitted detector.
    pub detector: Gnsm,
    /// Test rows (table indices).
    pub test_rows: Vec<usize>,
    /// Their anomaly scores.
    pub scores: Vec<f64>,
    /// Their labels.
    pub labels: Vec<bool>,
}

/// One seed's split, labels and encoder, shared by GNSM and the baselines.
struct Prepared {
    labels: Vec<bool>,
    split: Split,
    schema: Schema,
}

fn prepare(
    schema: &Schema,
    table: &Table,
    seed: u64,
    rule: VocabularyRule,
) -> Result<Prepared, GnsmError> {
    let labels = labels_of(schema, table)?;
    let anomalies = labels.iter().filter(|&&l| l).count();
    if anomalies == 0 || anomalies == labels.len() {
        return Err(GnsmError::Invalid(format!(
            "{}: evaluation needs both inliers and anomalies ({anomalies} of {} rows are anomalies)",
            table.source(),
            labels.len()
        )));
    }
    let split = paper_split(&labels, seed);
    let vocabulary: Vec<usize> = match rule {
        VocabularyRule::TrainVal => split.train.iter().chain(&split.val).copied().collect(),
        VocabularyRule::AllInliers => (0..labels.len()).filter(|&i| !labels[i]).collect(),
        VocabularyRule::AllRows => (0..labels.len()).collect(),
    };
    let mut fitted = schema.clone();
    fitted.fit(table, &vocabulary)?;
    Ok(Prepared {
        labels,
        split,
        schema: fitted,
    })
}

/// Run the protocol for one seed. `schema` carries the column kinds and label (fitted or
/// not); it is fitted here on the rows `rule` names.
///
/// # Errors
/// [`GnsmError::Invalid`] without a label, or any fit / scoring error.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_seed(
    config: &GnsmConfig,
    schema: &Schema,
    table: &Table,
    seed: u64,
    rule: VocabularyRule,
    device: &Device,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<SeedRun, GnsmError> {
    let Prepared {
        labels,
        split,
        schema: fitted,
    } = prepare(schema, table, seed, rule)?;
    let config = config.clone().with_seed(seed);
    let start = Instant::now();
    let (detector, report) = Gnsm::fit_rows(
        &config,
        fitted,
        table,
        &split.train,
        &split.val,
        device,
        on_event,
    )?;
    let fit_seconds = start.elapsed().as_secs_f64();
    let training = (report.training.steps, report.training.best_val_loss);
    finish_seed(detector, table, seed, labels, split, training, fit_seconds)
}

/// Run the protocol for one seed with a detector trained before on this seed's split (by
/// [`evaluate_seed`] with the same seed, schema and vocabulary rule, then saved): the network
/// is kept, the density stage is fitted again on train + val with `config`'s MSMA settings and
/// denoising step, and the test rows are scored. For trying scoring settings without
/// retraining. The result's steps, validation loss and fit seconds include the saved
/// training's.
///
/// # Errors
/// As [`evaluate_seed`], and [`GnsmError::Invalid`] when the detector's encoder is not the
/// one this seed's protocol fits.
pub fn evaluate_fitted(
    mut detector: Gnsm,
    config: &GnsmConfig,
    schema: &Schema,
    table: &Table,
    seed: u64,
    rule: VocabularyRule,
) -> Result<SeedRun, GnsmError> {
    let Prepared {
        labels,
        split,
        schema: fitted,
    } = prepare(schema, table, seed, rule)?;
    // The whole encoder, not only its widths: a vocabulary in another order would encode
    // every row into the wrong slots without any error.
    if fitted != *detector.schema() {
        return Err(GnsmError::Invalid(format!(
            "{}: the saved detector's encoder (columns, vocabulary) differs from seed {seed}'s; \
             was it trained on this dataset, seed and vocabulary rule?",
            table.source()
        )));
    }
    let config = config.clone().with_seed(seed);
    let start = Instant::now();
    let rows: Vec<usize> = split.train.iter().chain(&split.val).copied().collect();
    detector.refit_msma(config.msma.clone(), config.denoise, table, &rows)?;
    let (steps, best_val_loss, train_seconds) =
        detector.training().map_or((0, f64::NAN, 0.0), |t| {
            (t.steps, t.best_val_loss, t.seconds)
        });
    let fit_seconds = train_seconds + start.elapsed().as_secs_f64();
    finish_seed(
        detector,
        table,
        seed,
        labels,
        split,
        (steps, best_val_loss),
        fit_seconds,
    )
}

/// Score the test rows of a seed's split and collect the numbers.
fn finish_seed(
    detector: Gnsm,
    table: &Table,
    seed: u64,
    labels: Vec<bool>,
    split: Split,
    (steps, best_val_loss): (usize, f64),
    fit_seconds: f64,
) -> Result<SeedRun, GnsmError> {
    let start = Instant::now();
    let scores = detector.score_table(table, Some(&split.test))?;
    let score_seconds = start.elapsed().as_secs_f64();
    let test_labels: Vec<bool> = split.test.iter().map(|&i| labels[i]).collect();
    let ap = msma::average_precision(&test_labels, &scores)? * 100.0;
    let roc_auc = msma::roc_auc(&test_labels, &scores)? * 100.0;
    Ok(SeedRun {
        result: SeedResult {
            seed,
            ap,
            roc_auc,
            train_rows: split.train.len(),
            test_rows: split.test.len(),
            test_anomalies: test_labels.iter().filter(|&&l| l).count(),
            steps,
            best_val_loss,
            components: detector.msma().gmm().n_components(),
            fit_seconds,
            score_seconds,
        },
        detector,
        test_rows: split.test,
        scores,
        labels: test_labels,
    })
}

/// A classical detector run beside GNSM on the same split and encoding (plain one-hot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// IsolationForest, 100 trees of 256 rows, fitted on train + val.
    IsolationForest,
    /// ECOD fitted on train + val, scored with pyod's pooled tails (as the published
    /// numbers).
    Ecod,
    /// Full-covariance GMM, k from {3, 5, 7, 9} by validation log-likelihood, refitted on
    /// train + val.
    Gmm,
}

impl Baseline {
    /// Every baseline.
    pub const ALL: [Baseline; 3] = [Baseline::IsolationForest, Baseline::Ecod, Baseline::Gmm];

    /// A short display name.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::IsolationForest => "IForest",
            Baseline::Ecod => "ECOD",
            Baseline::Gmm => "GMM one-hot",
        }
    }
}

/// One baseline's outcome on one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineResult {
    /// Which detector.
    pub baseline: Baseline,
    /// The seed.
    pub seed: u64,
    /// Average precision × 100.
    pub ap: f64,
    /// ROC-AUC × 100.
    pub roc_auc: f64,
    /// Seconds to fit (component selection included for the GMM).
    pub fit_seconds: f64,
    /// Seconds to score the test rows.
    pub score_seconds: f64,
}

fn one_hot(schema: &Schema, table: &Table, rows: &[usize]) -> Result<Matrix, GnsmError> {
    let encoded = schema.encode_rows(table, rows, Encoding::OneHot)?;
    let width = encoded.layout.width();
    Ok(Matrix::new(
        encoded.rows,
        width,
        encoded.data.iter().map(|&v| f64::from(v)).collect(),
    )?)
}

/// Run `baselines` on one seed of the protocol: the same split and vocabulary as
/// [`evaluate_seed`], the rows encoded as plain one-hot (continuous columns standardised).
///
/// # Errors
/// [`GnsmError::Invalid`] without both classes, or any encoding / fitting error.
pub fn evaluate_baselines(
    schema: &Schema,
    table: &Table,
    seed: u64,
    rule: VocabularyRule,
    baselines: &[Baseline],
) -> Result<Vec<BaselineResult>, GnsmError> {
    let Prepared {
        labels,
        split,
        schema,
    } = prepare(schema, table, seed, rule)?;
    let train = one_hot(&schema, table, &split.train)?;
    let val = one_hot(&schema, table, &split.val)?;
    // Train + val without encoding those rows a second time.
    let train_val = Matrix::new(
        train.rows() + val.rows(),
        train.cols(),
        [train.as_slice(), val.as_slice()].concat(),
    )?;
    let test = one_hot(&schema, table, &split.test)?;
    let test_labels: Vec<bool> = split.test.iter().map(|&i| labels[i]).collect();
    let mut results = Vec::with_capacity(baselines.len());
    for &baseline in baselines {
        let start = Instant::now();
        let detector: Box<dyn Detector<Matrix, Error = gnsm_baselines::BaselineError>> =
            match baseline {
                Baseline::IsolationForest => Box::new(
                    IsolationForestParams::default()
                        .seed(seed)
                        .fit(&train_val)?,
                ),
                Baseline::Ecod => Box::new(
                    EcodParams {
                        tails: EcodTails::Pooled,
                    }
                    .fit(&train_val)?,
                ),
                Baseline::Gmm => Box::new(
                    GmmDetectorParams::default()
                        .seed(seed)
                        .fit_split(&train, &val)?,
                ),
            };
        let fit_seconds = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let scores = detector.score(&test)?;
        let score_seconds = start.elapsed().as_secs_f64();
        results.push(BaselineResult {
            baseline,
            seed,
            ap: msma::average_precision(&test_labels, &scores)? * 100.0,
            roc_auc: msma::roc_auc(&test_labels, &scores)? * 100.0,
            fit_seconds,
            score_seconds,
        });
    }
    Ok(results)
}

/// Mean ± std of one baseline over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineSummary {
    /// Which detector.
    pub baseline: Baseline,
    /// Number of seeds.
    pub seeds: usize,
    /// Mean AP × 100.
    pub ap_mean: f64,
    /// Std of AP × 100.
    pub ap_std: f64,
    /// Mean ROC-AUC × 100.
    pub roc_auc_mean: f64,
    /// Std of ROC-AUC × 100.
    pub roc_auc_std: f64,
    /// Mean seconds to fit.
    pub fit_seconds: f64,
    /// Mean seconds to score.
    pub score_seconds: f64,
}

/// Summarise baseline results per detector, in [`Baseline::ALL`] order (detectors without
/// results are left out).
pub fn summarize_baselines(results: &[BaselineResult]) -> Vec<BaselineSummary> {
    Baseline::ALL
        .iter()
        .filter_map(|&baseline| {
            let rows: Vec<&BaselineResult> =
                results.iter().filter(|r| r.baseline == baseline).collect();
            if rows.is_empty() {
                return None;
            }
            let (ap_mean, ap_std) = mean_std(rows.iter().map(|r| r.ap));
            let (roc_auc_mean, roc_auc_std) = mean_std(rows.iter().map(|r| r.roc_auc));
            Some(BaselineSummary {
                baseline,
                seeds: rows.len(),
                ap_mean,
                ap_std,
                roc_auc_mean,
                roc_auc_std,
                fit_seconds: mean_std(rows.iter().map(|r| r.fit_seconds)).0,
                score_seconds: mean_std(rows.iter().map(|r| r.score_seconds)).0,
            })
        })
        .collect()
}
