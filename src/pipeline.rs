//! The GNSM detector end to end: encode with gnsm-data, train with gnsm-models, embed score
//! norms at every noise level, fit MSMA, score and explain.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use gnsm_data::{rows_with_label, Encoding, Schema, SchemaOptions, Table};
use gnsm_losses::{GroupSoftmax, GroupStrategy};
use gnsm_models::{
    ScoreModel, TabResNetConfig, TrainEvent, TrainSummary, Trainer, TrainerConfig, WeightsHeader,
};
use gnsm_noise::NoiseSchedule;
use msma::{Detector, Fit, Matrix, Msma, MsmaParams, Selection};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::GnsmError;

const FORMAT: &str = "gnsm-model";
const VERSION: u32 = 1;

/// Everything that defines a GNSM fit. The defaults are sized for a CPU: a width-128,
/// 2-block tab-ResNet trained for 1500 steps of 256 rows (the paper's network is
/// `TabResNetConfig::default()`: width 1024, 20 blocks, trained for up to 2M steps on a GPU).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GnsmConfig {
    /// The score network.
    pub network: TabResNetConfig,
    /// Training (noise levels, objective, optimizer, budget).
    pub trainer: TrainerConfig,
    /// The density model on score norms.
    pub msma: MsmaParams,
    /// How columns are read.
    pub schema: SchemaOptions,
    /// Share of the fitting rows held out for validation (early stopping, best weights).
    pub val_fraction: f64,
    /// Rows per batch when computing score norms (bounds memory when scoring).
    pub score_batch: usize,
    /// Seed of the train/validation split (see [`GnsmConfig::with_seed`]).
    pub seed: u64,
    /// Take one unit score step at the lowest noise level before the score norms
    /// ([`gnsm_noise::denoise_step`]), as the reference scorer does for every tabular
    /// dataset (`msma.denoise = True`). Model files written before this option existed read
    /// as `false`, so they keep scoring as they did.
    #[serde(default = "no_denoise")]
    pub denoise: bool,
}

fn no_denoise() -> bool {
    false
}

impl Default for GnsmConfig {
    fn default() -> Self {
        Self {
            network: TabResNetConfig {
                width: 128,
                depth: 2,
                ..TabResNetConfig::default()
            },
            trainer: TrainerConfig {
                steps: 1500,
                batch_size: 256,
                eval_every: 250,
                lr: 1e-3,
                ..TrainerConfig::default()
            },
            msma: MsmaParams::default(),
            schema: SchemaOptions::default(),
            val_fraction: 0.1,
            score_batch: 2048,
            seed: 0,
            denoise: true,
        }
    }
}

impl GnsmConfig {
    /// Use `seed` everywhere: split, initial weights, batches and noise, k-means start.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.network.seed = seed;
        self.trainer.seed = seed;
        self.msma.gmm.seed = seed;
        self
    }
}

/// What a fit did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Rows trained on.
    pub train_rows: usize,
    /// Rows validated on.
    pub val_rows: usize,
    /// The training run.
    pub training: TrainSummary,
    /// The MSMA component selection.
    pub selection: Option<Selection>,
    /// Trainable parameters of the network.
    pub parameters: usize,
    /// Wall-clock seconds of the whole fit.
    pub seconds: f64,
}

/// One feature's part in a record's anomaly score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The column.
    pub feature: String,
    /// Its value in the record.
    pub value: String,
    /// What the model expected there: the category its score pushes towards most at the
    /// lowest noise level (for a continuous column, the denoised value `x + σ²·s`).
    pub expected: String,
    /// Share of the (atypicality-weighted) squared score norm carried by this feature.
    pub share: f64,
}

/// Why a record scored as it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Row index in the table (0-based).
    pub row: usize,
    /// Line in the file.
    pub line: u64,
    /// Anomaly score (higher = more anomalous).
    pub score: f64,
    /// Per-feature contributions, largest first.
    pub contributions: Vec<Contribution>,
}

/// The saved description of a [`Gnsm`] (the safetensors metadata of its file).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Artifact {
    format: String,
    version: u32,
    config: GnsmConfig,
    schema: Schema,
    msma: Msma,
    model: WeightsHeader,
    /// How the network was trained (absent in files from before it was saved).
    #[serde(default)]
    training: Option<TrainSummary>,
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
/// let (detector, _report) = Gnsm::fit(&config, &table, &Device::Cpu)?;
/// let scores = detector.score_table(&table, None)?;
/// detector.save("cmc.gnsm")?;
/// # Ok::<(), gnsm::GnsmError>(())
/// ```
pub struct Gnsm {
    config: GnsmConfig,
    schema: Schema,
    scorer: Scorer,
    msma: Msma,
    training: Option<TrainSummary>,
}

/// A trained network turned into per-level scores and score norms of clean rows.
struct Scorer {
    model: ScoreModel,
    groups: GroupSoftmax,
    schedule: NoiseSchedule,
    batch: usize,
}

impl std::fmt::Debug for Gnsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gnsm")
            .field("model", &self.scorer.model)
            .finish()
    }
}

impl Gnsm {
    /// Fit on a table: infer the schema with `config.schema`, leave out rows labelled
    /// anomalous, split the rest into train and validation (`val_fraction`, seeded), fit the
    /// vocabulary on them, train, and fit MSMA on the score norms of train + validation.
    ///
    /// # Errors
    /// Any data, training or MSMA error.
    pub fn fit(
        config: &GnsmConfig,
        table: &Table,
        device: &Device,
    ) -> Result<(Self, FitReport), GnsmError> {
        let mut schema = Schema::infer(table, &config.schema)?;
        let mut rows = rows_with_label(&schema, table, false)?;
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
        let n_val =
            ((rows.len() as f64 * config.val_fraction).round() as usize).clamp(1, rows.len() - 1);
        let val = rows.split_off(rows.len() - n_val);
        let mut all = rows.clone();
        all.extend(&val);
        schema.fit(table, &all)?;
        Self::fit_rows(config, schema, table, &rows, &val, device, &mut |_| {})
    }

    /// Fit with an already fitted schema on the given training and validation rows of a
    /// table (the paper protocol's entry point). `on_event` sees the trainer's events.
    ///
    /// # Errors
    /// Any data, training or MSMA error.
    pub fn fit_rows(
        config: &GnsmConfig,
        schema: Schema,
        table: &Table,
        train: &[usize],
        val: &[usize],
        device: &Device,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<(Self, FitReport), GnsmError> {
        let start = Instant::now();
        let layout = schema.layout()?;
        let train_x = schema.encode_rows(table, train, Encoding::LogOneHot)?;
        let val_x = schema.encode_rows(table, val, Encoding::LogOneHot)?;
        let mut trainer = Trainer::new(
            config.network.clone(),
            layout.clone(),
            config.trainer.clone(),
            device,
        )?;
        let training = trainer.fit(&train_x.data, &val_x.data, on_event)?;
        let model = trainer.best().duplicate()?;
        let parameters = model.num_parameters();
        let scorer = Scorer {
            groups: GroupSoftmax::new(&layout, GroupStrategy::Narrow, device)?,
            schedule: config.trainer.noise.build()?,
            batch: config.score_batch.max(1),
            model,
        };
        let mut both = train_x.data;
        both.extend_from_slice(&val_x.data);
        let msma = config
            .msma
            .fit(&scorer.score_norms(&both, config.denoise)?)?;
        let selection = msma.selection().cloned();
        let detector = Self {
            config: config.clone(),
            schema,
            scorer,
            msma,
            training: Some(training.clone()),
        };
        Ok((
            detector,
            FitReport {
                train_rows: train.len(),
                val_rows: val.len(),
                training,
                selection,
                parameters,
                seconds: start.elapsed().as_secs_f64(),
            },
        ))
    }

    /// Fit the density stage again on the given rows of a table (the inliers it should
    /// describe, usually train + validation), keeping the trained network: to try other MSMA
    /// settings or switch the denoising step without retraining. The configuration is
    /// updated, so a saved model scores as refitted. Returns the model selection made.
    ///
    /// # Errors
    /// Encoding errors, or [`GnsmError::Msma`] when the mixture cannot be fitted.
    pub fn refit_msma(
        &mut self,
        params: MsmaParams,
        denoise: bool,
        table: &Table,
        rows: &[usize],
    ) -> Result<Option<Selection>, GnsmError> {
        let encoded = self.schema.encode_rows(table, rows, Encoding::LogOneHot)?;
        let msma = params.fit(&self.scorer.score_norms(&encoded.data, denoise)?)?;
        let selection = msma.selection().cloned();
        self.msma = msma;
        self.config.msma = params;
        self.config.denoise = denoise;
        Ok(selection)
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The score network (best EMA weights).
    pub fn model(&self) -> &ScoreModel {
        &self.scorer.model
    }

    /// The MSMA density model.
    pub fn msma(&self) -> &Msma {
        &self.msma
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
        self.scorer.score_norms(encoded, self.config.denoise)
    }

    /// Anomaly scores (minus the MSMA log-likelihood; higher = more anomalous) of the given
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
            let encoded = self.schema.encode_rows(table, chunk, Encoding::LogOneHot)?;
            let norms = self
                .scorer
                .score_norms(&encoded.data, self.config.denoise)?;
            scores.extend(self.msma.score(&norms)?);
        }
        Ok(scores)
    }

    /// Explain the given rows: each feature's share of the score norm at the levels where
    /// the record is atypical (levels weighted by how far the record's norm lies above the
    /// inliers' mean, in inlier standard deviations; all levels alike when none is above),
    /// and the category the model expected there.
    ///
    /// # Errors
    /// As [`Gnsm::score_table`].
    pub fn explain(&self, table: &Table, rows: &[usize]) -> Result<Vec<Explanation>, GnsmError> {
        let encoded = self.schema.encode_rows(table, rows, Encoding::LogOneHot)?;
        let layout = self.scorer.model.layout().clone();
        let width = layout.width();
        let levels = self.scorer.schedule.levels();
        let names = self.schema.feature_names();
        let n = rows.len();
        let x = Tensor::from_slice(&encoded.data, (n, width), self.scorer.model.device())?;
        let x = self.scorer.prepare(x, self.config.denoise)?;
        // Per row, level and feature: squared norm of that feature's scores.
        let n_features = layout.continuous() + layout.n_groups();
        let mut parts = vec![0.0f64; n * levels * n_features];
        let mut lowest: Vec<f32> = Vec::new();
        for level in 0..levels {
            let s: Vec<f32> = self
                .scorer
                .level_scores(&x, level)?
                .flatten_all()?
                .to_vec1()?;
            for r in 0..n {
                let row = &s[r * width..(r + 1) * width];
                let base = (r * levels + level) * n_features;
                for c in 0..layout.continuous() {
                    parts[base + c] = f64::from(row[c]).powi(2);
                }
                for (g, range) in layout.group_ranges().enumerate() {
                    parts[base + layout.continuous() + g] =
                        row[range].iter().map(|&v| f64::from(v).powi(2)).sum();
                }
            }
            if level + 1 == levels {
                lowest = s;
            }
        }
        let norms = Matrix::new(
            n,
            levels,
            (0..n * levels)
                .map(|i| {
                    parts[i * n_features..(i + 1) * n_features]
                        .iter()
                        .sum::<f64>()
                        .sqrt()
                })
                .collect(),
        )?;
        let scores = self.msma.score(&norms)?;
        let scaler = self.msma.scaler();
        let sigma_min = self.scorer.schedule.sigmas()[levels - 1];
        let mut out = Vec::with_capacity(n);
        for (r, &row) in rows.iter().enumerate() {
            let z: Vec<f64> = (0..levels)
                .map(|l| ((norms.row(r)[l] - scaler.mean()[l]) / scaler.scale()[l]).max(0.0))
                .collect();
            let weights: Vec<f64> = if z.iter().sum::<f64>() > 0.0 {
                z
            } else {
                vec![1.0; levels]
            };
            let mut per_feature = vec![0.0; n_features];
            for (l, w) in weights.iter().enumerate() {
                let base = (r * levels + l) * n_features;
                for f in 0..n_features {
                    per_feature[f] += w * parts[base + f];
                }
            }
            let total: f64 = per_feature.iter().sum::<f64>().max(f64::MIN_POSITIVE);
            let values = self.schema.decode_row(encoded.row(r))?;
            let low = &lowest[r * width..(r + 1) * width];
            let mut expected_row = encoded.row(r).to_vec();
            for c in 0..layout.continuous() {
                expected_row[c] += (sigma_min * sigma_min) as f32 * low[c];
            }
            // The category the score pushes towards most; never the reserved unseen slot.
            let reserved = usize::from(self.schema.reserves_unseen());
            for range in layout.group_ranges() {
                let best = (range.start..range.end - reserved)
                    .max_by(|&a, &b| low[a].total_cmp(&low[b]))
                    .unwrap_or(range.start);
                for j in range {
                    expected_row[j] = if j == best {
                        0.0
                    } else {
                        gnsm_noise::LOG_ONE_HOT_COLD
                    };
                }
            }
            let expected = self.schema.decode_row(&expected_row)?;
            let mut contributions: Vec<Contribution> = (0..n_features)
                .map(|f| Contribution {
                    feature: names[f].to_string(),
                    value: values[f].clone(),
                    expected: expected[f].clone(),
                    share: per_feature[f] / total,
                })
                .collect();
            contributions.sort_by(|a, b| b.share.total_cmp(&a.share));
            out.push(Explanation {
                row,
                line: table.line(row),
                score: scores[r],
                contributions,
            });
        }
        Ok(out)
    }

    /// Save as one safetensors file (weights as tensors; schema, MSMA, configs and format
    /// version as JSON metadata), atomically.
    ///
    /// # Errors
    /// [`GnsmError::Io`] or [`GnsmError::Artifact`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), GnsmError> {
        let path = path.as_ref();
        let artifact = Artifact {
            format: FORMAT.into(),
            version: VERSION,
            config: self.config.clone(),
            schema: self.schema.clone(),
            msma: self.msma.clone(),
            model: self.scorer.model.header(),
            training: self.training.clone(),
        };
        let json = serde_json::to_string(&artifact).map_err(|e| GnsmError::Artifact {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let tensors = self.scorer.model.tensors();
        let views: Vec<(String, &Tensor)> = tensors
            .iter()
            .map(|(k, t)| (format!("model/{k}"), t))
            .collect();
        let bytes = safetensors::tensor::serialize(
            views,
            Some(HashMap::from([("gnsm".to_string(), json)])),
        )
        .map_err(|e| GnsmError::Artifact {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(gnsm_data::write_atomic(path, &bytes)?)
    }

    /// Load a detector written by [`Gnsm::save`].
    ///
    /// # Errors
    /// [`GnsmError::Io`] when unreadable, [`GnsmError::Artifact`] for a corrupt file, a file
    /// that is not a GNSM model, or one from a newer format version.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, GnsmError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let bad = |reason: String| GnsmError::Artifact {
            path: shown.clone(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|source| GnsmError::Io {
            path: shown.clone(),
            source,
        })?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
            bad(format!(
                "not a GNSM model file (corrupt or truncated?): {e}"
            ))
        })?;
        let json = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("gnsm"))
            .ok_or_else(|| bad("not a GNSM model file: no \"gnsm\" header".into()))?;
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad(format!("bad header: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(bad("not a GNSM model file".into()));
        }
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v <= u64::from(VERSION) => {}
            other => {
                return Err(bad(format!(
                    "model format version {other:?} is newer than this build reads ({VERSION}); upgrade gnsm"
                )))
            }
        }
        let artifact: Artifact =
            serde_json::from_value(value).map_err(|e| bad(format!("bad header: {e}")))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, device)?;
        let model = ScoreModel::from_tensors(artifact.model, &tensors, "model/", path, device)?;
        let layout = artifact.schema.layout()?;
        if &layout != model.layout() {
            return Err(bad(
                "the schema's layout does not match the network's".into()
            ));
        }
        Ok(Self {
            scorer: Scorer {
                groups: GroupSoftmax::new(&layout, GroupStrategy::Narrow, device)?,
                schedule: artifact.config.trainer.noise.build()?,
                batch: artifact.config.score_batch.max(1),
                model,
            },
            config: artifact.config,
            schema: artifact.schema,
            msma: artifact.msma,
            training: artifact.training,
        })
    }
}

impl Scorer {
    /// The score vectors of clean rows `x` (B, width) at `level`: (B, width).
    fn level_scores(&self, x: &Tensor, level: usize) -> Result<Tensor, GnsmError> {
        let rows = x.dim(0)?;
        let device = self.model.device();
        let levels = Tensor::from_vec(vec![level as u32; rows], rows, device)?;
        let out = self.model.infer(x, &levels)?;
        let tau = self.schedule.temperature(level)? as f32;
        let taus = Tensor::from_vec(vec![tau; rows], rows, device)?;
        Ok(self.groups.scores(&out, &taus)?)
    }

    /// Clean rows as the score norms see them: after the reference's denoising step when
    /// `denoise`, unchanged otherwise.
    fn prepare(&self, x: Tensor, denoise: bool) -> Result<Tensor, GnsmError> {
        if !denoise {
            return Ok(x);
        }
        let scores: Vec<f32> = self
            .level_scores(&x, self.schedule.levels() - 1)?
            .flatten_all()?
            .to_vec1()?;
        let mut rows: Vec<f32> = x.flatten_all()?.to_vec1()?;
        gnsm_noise::denoise_step(self.model.layout(), &mut rows, &scores)?;
        Ok(Tensor::from_vec(rows, x.shape(), x.device())?)
    }

    /// The (N, L) score-norm embedding of encoded rows (row-major, layout width each):
    /// the L2 norm of the full score vector at every level, as the reference computes it
    /// (after its denoising step when `denoise`).
    ///
    /// # Errors
    /// A candle error, or [`GnsmError::Invalid`] for data of the wrong width.
    pub fn score_norms(&self, encoded: &[f32], denoise: bool) -> Result<Matrix, GnsmError> {
        let width = self.model.layout().width();
        if encoded.len() % width != 0 {
            return Err(GnsmError::Invalid(format!(
                "encoded rows have {} values, not a multiple of the layout width {width}",
                encoded.len()
            )));
        }
        let rows = encoded.len() / width;
        let levels = self.schedule.levels();
        let mut norms = vec![0.0f64; rows * levels];
        let batch = self.batch;
        for start in (0..rows).step_by(batch) {
            let n = batch.min(rows - start);
            let x = Tensor::from_slice(
                &encoded[start * width..(start + n) * width],
                (n, width),
                self.model.device(),
            )?;
            let x = self.prepare(x, denoise)?;
            for level in 0..levels {
                let s = self.level_scores(&x, level)?;
                let sq: Vec<f32> = s.sqr()?.sum(1)?.to_vec1()?;
                for (i, v) in sq.into_iter().enumerate() {
                    norms[(start + i) * levels + level] = f64::from(v).sqrt();
                }
            }
        }
        Ok(Matrix::new(rows, levels, norms)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_saved_before_the_denoising_step_read_without_it() {
        assert!(GnsmConfig::default().denoise);
        let mut json = serde_json::to_value(GnsmConfig::default()).unwrap();
        json.as_object_mut().unwrap().remove("denoise");
        let old: GnsmConfig = serde_json::from_value(json).unwrap();
        assert!(!old.denoise);
        // Everything else still takes its default.
        assert_eq!(
            GnsmConfig {
                denoise: true,
                ..old
            },
            GnsmConfig::default()
        );
    }
}
