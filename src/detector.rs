//! The GNSM detector end to end: encode with gnsm-data, train with gnsm-models, embed score
//! norms at every noise level, fit MSMA, score.

use std::time::Instant;

use candle_core::Device;
use gnsm_data::{rows_with_label, Encoding, Schema, Table};
use gnsm_models::{TabResNetModel, TrainEvent, TrainSummary, Trainer};
use msma::{Matrix, Msma, MsmaParams, Selection};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::density::{ScoreMethod, Scored, Stage};
use crate::onehot::OneHotReport;
use crate::scorer::Scorer;
use crate::{Calibration, DecisionRule, GnsmConfig, GnsmError};

/// What a fit did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// Rows the network was trained on (a sample of the training rows with
    /// [`GnsmConfig::train_sample`]).
    pub train_rows: usize,
    /// Rows the scoring stage was fitted on (training and validation rows, all of them).
    #[serde(default)]
    pub density_rows: usize,
    /// Rows validated on.
    pub val_rows: usize,
    /// Held-out inlier rows whose scores calibrate p-values (0 when none were held out).
    pub calibration_rows: usize,
    /// The training run.
    pub training: TrainSummary,
    /// The MSMA component selection (MSMA scoring only).
    pub selection: Option<Selection>,
    /// What fitting the one-hot density term found (denoising loss with the term on).
    #[serde(default)]
    pub one_hot: Option<OneHotReport>,
    /// Trainable parameters of the network.
    pub parameters: usize,
    /// Wall-clock seconds of the whole fit.
    pub seconds: f64,
}

/// A fitted GNSM anomaly detector.
///
/// ```no_run
/// use candle_core::Device;
/// use gnsm::{Gnsm, GnsmConfig};
/// use gnsm::data::{CsvOptions, SchemaOptions, Table};
///
/// let table = Table::read("data/cmc.csv", &CsvOptions::default())?;
/// let config = GnsmConfig {
///     schema: SchemaOptions { label: Some("label".into()), ..Default::default() },
///     ..Default::default()
/// };
/// // Rows labelled anomalous are left out of the fit.
/// let (detector, _summary) = Gnsm::fit(&config, &table, &Device::Cpu)?;
/// let scores = detector.score_table(&table, None)?;
/// detector.save("cmc.gnsm")?;
/// # Ok::<(), gnsm::GnsmError>(())
/// ```
pub struct Gnsm {
    pub(crate) config: GnsmConfig,
    pub(crate) schema: Schema,
    pub(crate) scorer: Scorer,
    pub(crate) stage: Stage,
    pub(crate) training: Option<TrainSummary>,
    pub(crate) calibration: Option<Calibration>,
}

impl std::fmt::Debug for Gnsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gnsm")
            .field("model", self.scorer.model())
            .finish()
    }
}

impl Gnsm {
    /// Fit on a table: infer the schema with `config.schema`, leave out rows labelled
    /// anomalous, split the rest into train and validation (`val_fraction`, seeded), fit the
    /// vocabulary on them, train, and fit the scoring stage ([`GnsmConfig::score`]) on
    /// train + validation.
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] for a bad configuration or too few inlier rows, and any data,
    /// training or MSMA error.
    pub fn fit(
        config: &GnsmConfig,
        table: &Table,
        device: &Device,
    ) -> Result<(Self, FitSummary), GnsmError> {
        Self::fit_observed(config, table, device, &mut |_| {})
    }

    /// [`Gnsm::fit`], with the trainer's events (start, steps, validations) passed to
    /// `on_event`: for a progress display or a log.
    ///
    /// # Errors
    /// As [`Gnsm::fit`].
    pub fn fit_observed(
        config: &GnsmConfig,
        table: &Table,
        device: &Device,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<(Self, FitSummary), GnsmError> {
        config.validate()?;
        let mut schema = Schema::infer(table, &config.schema)?;
        let mut rows = rows_with_label(&schema, table, false)?;
        if rows.is_empty() {
            return Err(GnsmError::Invalid(format!(
                "{}: no inlier rows to fit on: every row is labelled anomalous",
                table.source()
            )));
        }
        if rows.len() < 4 {
            return Err(GnsmError::Invalid(format!(
                "{}: {} inlier rows are too few to fit",
                table.source(),
                rows.len()
            )));
        }
        rows.shuffle(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(
            config.seed,
        ));
        // Calibration rows first, before anything (vocabulary included) is fitted, so that
        // they are new data to the detector, as the rows it will score.
        let n_cal = ((rows.len() as f64 * config.calibration_fraction).round() as usize)
            .min(rows.len().saturating_sub(4));
        let calibration = rows.split_off(rows.len() - n_cal);
        let n_val =
            ((rows.len() as f64 * config.val_fraction).round() as usize).clamp(1, rows.len() - 1);
        let val = rows.split_off(rows.len() - n_val);
        let mut all = rows.clone();
        all.extend(&val);
        schema.fit(table, &all)?;
        let (mut detector, mut summary) =
            Self::fit_rows(config, schema, table, &rows, &val, device, on_event)?;
        if !calibration.is_empty() {
            detector.calibrate(table, &calibration)?;
        }
        summary.calibration_rows = calibration.len();
        Ok((detector, summary))
    }

    /// Fit with an already fitted schema on the given training and validation rows of a
    /// table (the paper protocol's entry point). `on_event` sees the trainer's events.
    ///
    /// # Errors
    /// As [`Gnsm::fit`].
    pub fn fit_rows(
        config: &GnsmConfig,
        schema: Schema,
        table: &Table,
        train: &[usize],
        val: &[usize],
        device: &Device,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<(Self, FitSummary), GnsmError> {
        config.validate()?;
        let start = Instant::now();
        if config.score == ScoreMethod::Msma {
            check_components(&config.msma, train.len() + val.len())?;
        }
        let layout = schema.layout()?;
        // Compact rows (one index per column), expanded a batch at a time: a large table
        // costs 4 bytes per column here, not 4 per category.
        let train_x = schema.encode_compact(table, train)?;
        let val_x = schema.encode_compact(table, val)?;
        let sampled = match config.train_sample {
            Some(n) if n < train.len() => {
                let mut rng =
                    rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(config.seed ^ 0x5a3_91e0_u64);
                let mut picked: Vec<usize> =
                    rand::seq::index::sample(&mut rng, train.len(), n).into_vec();
                picked.sort_unstable();
                let rows: Vec<usize> = picked.iter().map(|&i| train[i]).collect();
                Some(schema.encode_compact(table, &rows)?)
            }
            _ => None,
        };
        let trained_on = sampled.as_ref().unwrap_or(&train_x);
        let mut trainer_config = config.trainer.clone();
        trainer_config.steps = config.training_steps(trained_on.rows());
        let mut trainer = Trainer::new(config.network.clone(), layout, trainer_config, device)?;
        let training = trainer.fit(trained_on, &val_x, on_event)?;
        let model = trainer.best().duplicate()?;
        let parameters = model.num_parameters();
        let scorer = Scorer::new(model, config.trainer.noise.build()?, config.score_batch)?;
        let stage = Stage::fit(
            &config.score,
            &config.msma,
            config.denoise,
            &scorer,
            (&train_x).into(),
            (&val_x).into(),
            config.score_batch,
            config.seed,
        )?;
        let selection = stage.msma().and_then(|m| m.selection().cloned());
        let one_hot = stage.one_hot_report().cloned();
        let detector = Self {
            config: config.clone(),
            schema,
            scorer,
            stage,
            training: Some(training.clone()),
            calibration: None,
        };
        Ok((
            detector,
            FitSummary {
                train_rows: trained_on.rows(),
                density_rows: train.len() + val.len(),
                val_rows: val.len(),
                calibration_rows: 0,
                training,
                selection,
                one_hot,
                parameters,
                seconds: start.elapsed().as_secs_f64(),
            },
        ))
    }

    /// Fit the scoring stage again on the given rows of a table (the inliers it should
    /// describe, usually train + validation), keeping the trained network: to compare scoring
    /// methods, MSMA settings or the denoising step on the very same network. The
    /// configuration is updated, so a saved model scores as refitted. Returns the MSMA model
    /// selection made, if any. The one-hot density term, when on, is fitted on all but the
    /// last `val_fraction` of `rows` and checked on those
    /// ([`Gnsm::refit_scoring_split`] takes the two parts as given). The calibration is
    /// dropped (it scored with the old stage): call [`Gnsm::calibrate`] again for p-values.
    ///
    /// # Errors
    /// Encoding errors, bad settings, or [`GnsmError::Msma`] when a mixture cannot be fitted.
    pub fn refit_scoring(
        &mut self,
        method: ScoreMethod,
        msma: MsmaParams,
        denoise: bool,
        table: &Table,
        rows: &[usize],
    ) -> Result<Option<Selection>, GnsmError> {
        if rows.len() < 2 {
            return Err(GnsmError::Invalid(format!(
                "{} rows are too few to fit a scoring stage on",
                rows.len()
            )));
        }
        let n_val = ((rows.len() as f64 * self.config.val_fraction).round() as usize)
            .clamp(1, rows.len() - 1);
        let (train, val) = rows.split_at(rows.len() - n_val);
        self.refit_scoring_split(method, msma, denoise, table, train, val)
    }

    /// [`Gnsm::refit_scoring`] with the fitting rows given as the training part (what MSMA
    /// and the one-hot term are fitted on) and the validation part (MSMA is fitted on both;
    /// the one-hot term is checked, and the loss standardised, on the validation part). With
    /// the rows a fit used ([`Gnsm::fit_rows`]) and the fit's own settings, the refitted
    /// detector scores as the fitted one.
    ///
    /// # Errors
    /// As [`Gnsm::refit_scoring`], and [`GnsmError::Invalid`] when either part is empty.
    pub fn refit_scoring_split(
        &mut self,
        method: ScoreMethod,
        msma: MsmaParams,
        denoise: bool,
        table: &Table,
        train: &[usize],
        val: &[usize],
    ) -> Result<Option<Selection>, GnsmError> {
        let mut config = self.config.clone();
        config.score = method;
        config.msma = msma;
        config.denoise = denoise;
        config.validate()?;
        if config.score == ScoreMethod::Msma {
            check_components(&config.msma, train.len() + val.len())?;
        }
        if train.is_empty() || val.is_empty() {
            return Err(GnsmError::Invalid(format!(
                "{} training and {} validation rows: a scoring stage needs both",
                train.len(),
                val.len()
            )));
        }
        let train = self.schema.encode_compact(table, train)?;
        let val = self.schema.encode_compact(table, val)?;
        let stage = Stage::fit(
            &config.score,
            &config.msma,
            config.denoise,
            &self.scorer,
            (&train).into(),
            (&val).into(),
            config.score_batch,
            config.seed,
        )?;
        let selection = stage.msma().and_then(|m| m.selection().cloned());
        self.stage = stage;
        self.config = config;
        // The old calibration scored with the old stage: p-values need a new one.
        self.calibration = None;
        Ok(selection)
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The score network (best EMA weights).
    pub fn model(&self) -> &TabResNetModel {
        self.scorer.model()
    }

    /// The MSMA density model, when the detector scores with MSMA.
    pub fn msma(&self) -> Option<&Msma> {
        self.stage.msma()
    }

    /// What fitting the one-hot density term found (whether the score uses it, and why), when
    /// the detector scores with the denoising loss and the term was on.
    pub fn one_hot_report(&self) -> Option<&OneHotReport> {
        self.stage.one_hot_report()
    }

    /// How the network was trained (`None` for a model file written before this was saved).
    pub fn training(&self) -> Option<&TrainSummary> {
        self.training.as_ref()
    }

    /// The configuration it was fitted with.
    pub fn config(&self) -> &GnsmConfig {
        &self.config
    }

    /// The (N, L) score-norm embedding of encoded rows (row-major, layout width each):
    /// the L2 norm of the full score vector at every level, as the reference computes it
    /// (after its denoising step when [`GnsmConfig::denoise`] is on).
    ///
    /// # Errors
    /// A candle error, or [`GnsmError::Invalid`] for data of the wrong width.
    pub fn score_norms(&self, encoded: &[f32]) -> Result<Matrix, GnsmError> {
        self.scorer
            .pass(encoded, self.config.denoise, false)?
            .norms()
    }

    /// Anomaly scores (higher = more anomalous: the expected denoising loss, or minus the MSMA
    /// log-likelihood, by [`GnsmConfig::score`]) of the given
    /// rows of a table (all rows when `None`), encoded and scored in batches so that memory
    /// stays bounded however many rows there are. Columns are matched by name; unseen
    /// categories follow the schema's policy.
    ///
    /// # Errors
    /// Encoding errors (with file, line, column), or model errors.
    pub fn score_table(
        &self,
        table: &Table,
        rows: Option<&[usize]>,
    ) -> Result<Vec<f64>, GnsmError> {
        let all: Vec<usize>;
        let rows = match rows {
            Some(r) => r,
            None => {
                all = (0..table.rows()).collect();
                &all
            }
        };
        let mut scores = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(self.config.score_batch.max(1)) {
            let (scored, _) = self.pass(table, chunk, false)?;
            scores.extend(scored.scores);
        }
        Ok(scores)
    }

    /// Score the given rows of `table` (all when `None`) and keep their scores as the
    /// calibration of p-values and decisions, replacing any before. The rows must be
    /// inliers the detector has not been fitted on ([`Gnsm::fit`] does this with
    /// [`GnsmConfig::calibration_fraction`] of the inliers).
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] for no rows or a score that is not finite; scoring errors.
    pub fn calibrate(&mut self, table: &Table, rows: &[usize]) -> Result<(), GnsmError> {
        let scores = self.score_table(table, Some(rows))?;
        self.calibration = Some(Calibration::new(scores)?);
        Ok(())
    }

    /// The calibration of p-values and decisions, when there is one.
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    fn calibrated(&self) -> Result<&Calibration, GnsmError> {
        self.calibration.as_ref().ok_or_else(|| {
            GnsmError::Invalid(
                "this detector has no calibration (fitted with calibration_fraction = 0, by \
                 fit_rows, or saved by an older version): call Gnsm::calibrate with held-out \
                 inlier rows"
                    .into(),
            )
        })
    }

    /// Conformal p-values of the given rows (all when `None`): small means anomalous; on
    /// rows drawn like the inliers, `P(p ≤ α) ≤ α`.
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] without a calibration; scoring errors.
    pub fn p_values(&self, table: &Table, rows: Option<&[usize]>) -> Result<Vec<f64>, GnsmError> {
        let calibration = self.calibrated()?;
        Ok(self
            .score_table(table, rows)?
            .into_iter()
            .map(|s| calibration.p_value(s))
            .collect())
    }

    /// The score above which `rule` flags a row.
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] without a calibration or for a level outside (0, 1).
    pub fn threshold(&self, rule: DecisionRule) -> Result<f64, GnsmError> {
        Ok(self.calibrated()?.threshold(rule)?)
    }

    /// Whether each of the given rows (all when `None`) is anomalous by `rule`.
    ///
    /// # Errors
    /// As [`Gnsm::threshold`]; scoring errors.
    pub fn predict(
        &self,
        table: &Table,
        rows: Option<&[usize]>,
        rule: DecisionRule,
    ) -> Result<Vec<bool>, GnsmError> {
        let threshold = self.threshold(rule)?;
        Ok(self
            .score_table(table, rows)?
            .into_iter()
            .map(|s| s.is_nan() || s > threshold)
            .collect())
    }

    /// Encode `rows` and score them; the encoded rows come back too. Every score is
    /// finite, or the error names the row's line.
    pub(crate) fn pass(
        &self,
        table: &Table,
        rows: &[usize],
        keep_lowest: bool,
    ) -> Result<(Scored, gnsm_data::Encoded), GnsmError> {
        let encoded = self.schema.encode_rows(table, rows, Encoding::LogOneHot)?;
        let scored = self
            .stage
            .score(
                &self.scorer,
                &encoded.data,
                self.config.denoise,
                keep_lowest,
            )
            .map_err(|e| match e {
                GnsmError::Msma(msma::MsmaError::NonFinite { row, .. }) if row < rows.len() => {
                    GnsmError::Invalid(format!(
                        "{}, line {}: the row's score is not finite (the model cannot score it)",
                        table.source(),
                        table.line(rows[row])
                    ))
                }
                other => other,
            })?;
        if let Some(r) = scored.scores.iter().position(|s| !s.is_finite()) {
            return Err(GnsmError::Invalid(format!(
                "{}, line {}: the row's score is not finite (the model cannot score it)",
                table.source(),
                table.line(rows[r])
            )));
        }
        Ok((scored, encoded))
    }

    /// Scores of already encoded rows.
    pub(crate) fn score_encoded(&self, encoded: &[f32]) -> Result<Vec<f64>, GnsmError> {
        Ok(self
            .stage
            .score(&self.scorer, encoded, self.config.denoise, false)?
            .scores)
    }
}

/// Refuse mixture sizes that cannot be fitted on `rows` rows, before any training.
fn check_components(params: &MsmaParams, rows: usize) -> Result<(), GnsmError> {
    let largest = match &params.selection {
        Some(s) => s.candidates.iter().copied().max().unwrap_or(0),
        None => params.gmm.n_components,
    };
    if largest > rows {
        return Err(GnsmError::Invalid(format!(
            "a mixture of {largest} components needs at least {largest} rows to fit; \
             the density stage has {rows}"
        )));
    }
    Ok(())
}
