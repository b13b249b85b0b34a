//! One seed of the paper's protocol, built once and shared by GNSM and the baselines.

use std::time::Instant;

use candle_core::Device;
use gnsm_data::{labels_of, paper_split, Schema, Split, Table, VocabularyRule};
use gnsm_models::TrainEvent;
use serde::{Deserialize, Serialize};

use crate::{Gnsm, GnsmConfig, GnsmError};

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
    /// MSMA components chosen (0 when the detector does not score with MSMA).
    pub components: usize,
    /// Seconds to fit (training + scoring stage).
    pub fit_seconds: f64,
    /// Seconds to score the test rows.
    pub score_seconds: f64,
    /// Precision, recall and F1 at the default decision rule (p ≤ 0.01), the test inliers
    /// calibrating ([`msma::conformal_decisions`]); `None` in results written before they
    /// were reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions: Option<msma::DecisionMetrics>,
    /// What fitting the default score's one-hot density term found (whether the score uses
    /// it, the mixture size, the generalisation gap); `None` for MSMA, with the term off, and
    /// in results written before it was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_hot: Option<crate::OneHotReport>,
}

impl SeedResult {
    /// The AP × 100 of a random ranking: the share of anomalies among the test rows (the
    /// protocol puts every anomaly in the test split, so AP must be read against it).
    pub fn random_ap(&self) -> f64 {
        100.0 * self.test_anomalies as f64 / self.test_rows.max(1) as f64
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

/// One seed of the paper's protocol (every inlier split 80/10/10 into train, validation and
/// test, seeded; test = test inliers + every anomaly; the encoder fitted on the rows a
/// [`VocabularyRule`] names), built once so that GNSM and the baselines see the same rows.
///
/// ```no_run
/// use candle_core::Device;
/// use gnsm::data::{default_data_dir, PaperDataset};
/// use gnsm::data::VocabularyRule;
/// use gnsm::eval::Protocol;
/// use gnsm::GnsmConfig;
/// let data = PaperDataset::Cmc.load(&default_data_dir().unwrap())?;
/// let protocol = Protocol::new(&data.schema, &data.table, 42, VocabularyRule::AllInliers)?;
/// let run = protocol.fit(&GnsmConfig::default(), &Device::Cpu, &mut |_| {})?;
/// println!("AP {:.2}", run.result.ap);
/// # Ok::<(), gnsm::GnsmError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Protocol<'a> {
    table: &'a Table,
    seed: u64,
    labels: Vec<bool>,
    split: Split,
    schema: Schema,
}

impl<'a> Protocol<'a> {
    /// Split `table`'s rows by `schema`'s label for `seed` and fit the encoder by `rule`.
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] without both classes, or a schema error.
    pub fn new(
        schema: &Schema,
        table: &'a Table,
        seed: u64,
        rule: VocabularyRule,
    ) -> Result<Self, GnsmError> {
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
        let fitting: Vec<usize> = split.train.iter().chain(&split.val).copied().collect();
        let mut fitted = schema.clone();
        fitted.fit_with(
            table,
            &rule.rows(&labels, &fitting),
            &rule.statistics_rows(&labels, &fitting),
        )?;
        Ok(Self {
            table,
            seed,
            labels,
            split,
            schema: fitted,
        })
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The split.
    pub fn split(&self) -> &Split {
        &self.split
    }

    /// The fitted encoder.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The table.
    pub fn table(&self) -> &'a Table {
        self.table
    }

    /// The labels of the test rows.
    pub fn test_labels(&self) -> Vec<bool> {
        self.split.test.iter().map(|&i| self.labels[i]).collect()
    }

    /// Train a detector with `config` (its seed set to this seed) on train, validate on
    /// val, fit its scoring stage on train + val, and score the test rows. `on_event` sees
    /// the trainer's events.
    ///
    /// # Errors
    /// Any fit or scoring error.
    pub fn fit(
        &self,
        config: &GnsmConfig,
        device: &Device,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<SeedRun, GnsmError> {
        let config = config.clone().with_seed(self.seed);
        let start = Instant::now();
        let (detector, summary) = Gnsm::fit_rows(
            &config,
            self.schema.clone(),
            self.table,
            &self.split.train,
            &self.split.val,
            device,
            on_event,
        )?;
        let fit_seconds = start.elapsed().as_secs_f64();
        let training = (summary.training.steps, summary.training.best_val_loss);
        self.finish(detector, training, fit_seconds)
    }

    /// Score this seed's test rows with a detector trained before on this seed's split (by
    /// [`Protocol::fit`], then saved): the network is kept, the scoring stage is fitted
    /// again on this seed's train and val parts, as [`Protocol::fit`] fits it, with
    /// `config`'s scoring method, MSMA settings and denoising step (so a refit with the
    /// fit's own settings scores as the fit). For comparing scoring settings on the very
    /// same network. The result's steps,
    /// validation loss and fit seconds include the saved training's.
    ///
    /// # Errors
    /// As [`Protocol::fit`], and [`GnsmError::Invalid`] when the detector's encoder is not
    /// this seed's.
    pub fn refit(&self, mut detector: Gnsm, config: &GnsmConfig) -> Result<SeedRun, GnsmError> {
        // The whole encoder, not only its widths: a vocabulary in another order would encode
        // every row into the wrong slots without any error.
        if self.schema != *detector.schema() {
            return Err(GnsmError::Invalid(format!(
                "{}: the saved detector's encoder (columns, vocabulary) differs from seed {}'s; \
                 was it trained on this dataset, seed and vocabulary rule?",
                self.table.source(),
                self.seed
            )));
        }
        let config = config.clone().with_seed(self.seed);
        let start = Instant::now();
        detector.refit_scoring_split(
            config.score.clone(),
            config.msma.clone(),
            config.denoise,
            self.table,
            &self.split.train,
            &self.split.val,
        )?;
        let (steps, best_val_loss, train_seconds) =
            detector.training().map_or((0, f64::NAN, 0.0), |t| {
                (t.steps, t.best_val_loss, t.seconds)
            });
        let fit_seconds = train_seconds + start.elapsed().as_secs_f64();
        self.finish(detector, (steps, best_val_loss), fit_seconds)
    }

    /// Score the test rows and collect the numbers.
    fn finish(
        &self,
        detector: Gnsm,
        (steps, best_val_loss): (usize, f64),
        fit_seconds: f64,
    ) -> Result<SeedRun, GnsmError> {
        let start = Instant::now();
        let scores = detector.score_table(self.table, Some(&self.split.test))?;
        let score_seconds = start.elapsed().as_secs_f64();
        let test_labels = self.test_labels();
        let ap = msma::average_precision(&test_labels, &scores)? * 100.0;
        let roc_auc = msma::roc_auc(&test_labels, &scores)? * 100.0;
        let decisions =
            msma::conformal_decisions(&test_labels, &scores, msma::DecisionRule::DEFAULT_ALPHA)?;
        Ok(SeedRun {
            result: SeedResult {
                seed: self.seed,
                ap,
                roc_auc,
                train_rows: self.split.train.len(),
                test_rows: self.split.test.len(),
                test_anomalies: test_labels.iter().filter(|&&l| l).count(),
                steps,
                best_val_loss,
                components: detector.msma().map_or(0, |m| m.gmm().n_components()),
                fit_seconds,
                score_seconds,
                decisions: Some(decisions),
                one_hot: detector.one_hot_report().cloned(),
            },
            detector,
            test_rows: self.split.test.clone(),
            scores,
            labels: test_labels,
        })
    }
}
