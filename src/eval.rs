//! The paper's evaluation protocol (REFERENCE.md §3): per seed, split the inliers 80/10/10,
//! train on train, validate on val, fit MSMA on train + val, score test inliers + all
//! anomalies, and report AP and ROC-AUC (×100).

use std::time::Instant;

use candle_core::Device;
use gnsm_data::{labels_of, paper_split, Schema, Table};
use gnsm_models::TrainEvent;
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
            steps: report.training.steps,
            best_val_loss: report.training.best_val_loss,
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
