//! The in-toolkit baselines on a [`Protocol`]'s rows.

use std::str::FromStr;
use std::time::Instant;

use gnsm_baselines::{EcodParams, EcodTails, GmmDetectorParams, IsolationForestParams};
use gnsm_data::{Encoding, Schema, Table};
use msma::{Detector, Fit, Matrix};
use serde::{Deserialize, Serialize};

use super::Protocol;
use crate::GnsmError;

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

    /// The name on command lines and in files (`iforest`, `ecod`, `gmm`).
    pub fn key(self) -> &'static str {
        match self {
            Baseline::IsolationForest => "iforest",
            Baseline::Ecod => "ecod",
            Baseline::Gmm => "gmm",
        }
    }
}

impl FromStr for Baseline {
    type Err = GnsmError;

    /// ```
    /// use gnsm::eval::Baseline;
    /// assert_eq!("ecod".parse::<Baseline>()?, Baseline::Ecod);
    /// assert!("knn".parse::<Baseline>().is_err());
    /// # Ok::<(), gnsm::GnsmError>(())
    /// ```
    fn from_str(s: &str) -> Result<Self, GnsmError> {
        Baseline::ALL
            .into_iter()
            .find(|b| b.key() == s)
            .ok_or_else(|| {
                GnsmError::Invalid(format!("unknown baseline {s:?}; one of iforest, ecod, gmm"))
            })
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
    /// Precision, recall and F1 at the default decision rule, calibrated as GNSM's
    /// ([`SeedResult::decisions`](super::SeedResult::decisions)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions: Option<msma::DecisionMetrics>,
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

impl Protocol<'_> {
    /// Run `baselines` on this seed: the same split and vocabulary as GNSM, the rows encoded
    /// as plain one-hot (continuous columns standardised).
    ///
    /// # Errors
    /// Any encoding or fitting error.
    pub fn baselines(&self, baselines: &[Baseline]) -> Result<Vec<BaselineResult>, GnsmError> {
        let (schema, table, split) = (self.schema(), self.table(), self.split());
        let train = one_hot(schema, table, &split.train)?;
        let val = one_hot(schema, table, &split.val)?;
        // Train + val without encoding those rows a second time.
        let train_val = Matrix::new(
            train.rows() + val.rows(),
            train.cols(),
            [train.as_slice(), val.as_slice()].concat(),
        )?;
        let test = one_hot(schema, table, &split.test)?;
        let test_labels = self.test_labels();
        let seed = self.seed();
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
                decisions: Some(msma::conformal_decisions(
                    &test_labels,
                    &scores,
                    msma::DecisionRule::DEFAULT_ALPHA,
                )?),
            });
        }
        Ok(results)
    }
}
