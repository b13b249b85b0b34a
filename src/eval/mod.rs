//! The paper's evaluation protocol: per seed, split the inliers 80/10/10, train on train,
//! validate on val, fit the scoring stage on train + val, score test inliers + all anomalies,
//! and report AP and ROC-AUC (×100) — for GNSM ([`Protocol::fit`]) and for the in-toolkit
//! baselines on the same rows ([`Protocol::baselines`]).

mod baselines;
mod log;
mod protocol;

use serde::{Deserialize, Serialize};

pub use baselines::{Baseline, BaselineResult};
pub use log::ResultsLog;
pub use protocol::{Protocol, SeedResult, SeedRun};

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
