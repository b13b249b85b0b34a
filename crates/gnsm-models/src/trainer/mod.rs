//! The training loop: seeded batches and noise, AdamW, gradient clipping, EMA weights,
//! fixed-noise validation, best-checkpoint keeping, early stopping, time budget, atomic
//! checkpoints with exact resume, progress bar, event hook and CSV log.

mod adamw;
mod config;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use gnsm_losses::GnsmLoss;
use gnsm_noise::{perturb_batch, FeatureLayout, NoiseRng, NoiseSchedule, Perturbation};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

pub use adamw::AdamW;

use crate::cpu::CpuStep;
pub use config::{LrSchedule, NonFinitePolicy, TrainerConfig};

use crate::model::WeightsHeader;
use crate::{ModelError, ScoreModel, TabResNetConfig};

const CHECKPOINT_FORMAT: &str = "gnsm-checkpoint";
/// Version 2: the checksummed envelope.
const CHECKPOINT_VERSION: u32 = 2;

/// Something that happened during training, for library users' hooks.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// A step was taken.
    Step {
        /// Steps done (1-based).
        step: usize,
        /// Its loss.
        loss: f64,
        /// Its learning rate.
        lr: f64,
    },
    /// A validation ran (EMA weights, fixed noise, all levels).
    Validation {
        /// Steps done.
        step: usize,
        /// Mean training loss since the previous validation.
        train_loss: f64,
        /// Validation loss averaged over levels.
        val_loss: f64,
        /// Whether it is the best so far.
        improved: bool,
    },
    /// A checkpoint was written.
    Checkpoint {
        /// The file.
        path: PathBuf,
    },
    /// A batch with a non-finite loss or gradient was skipped.
    SkippedBatch {
        /// The step.
        step: usize,
    },
    /// Training stopped before the step budget.
    Stopped {
        /// Steps done.
        step: usize,
        /// Why: early stopping or the time budget.
        reason: StopReason,
    },
}

/// Why a training run ended. Saved as the strings `"steps"`, `"early stopping"` and
/// `"time budget"`, as model files have always held them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The step budget was used up.
    #[serde(rename = "steps")]
    Steps,
    /// The validation loss stopped improving (`patience`).
    #[serde(rename = "early stopping")]
    EarlyStopping,
    /// The wall-clock budget (`max_minutes`) ran out.
    #[serde(rename = "time budget")]
    TimeBudget,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Steps => "steps",
            Self::EarlyStopping => "early stopping",
            Self::TimeBudget => "time budget",
        })
    }
}

/// One validation of a run: where the loss curve stands. Saved as the tuple
/// `[step, train_loss, val_loss, lr]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "(usize, f64, f64, f64)", into = "(usize, f64, f64, f64)")]
pub struct CurvePoint {
    /// Steps done.
    pub step: usize,
    /// Mean training loss since the previous validation (NaN before any step).
    pub train_loss: f64,
    /// Validation loss of the EMA weights.
    pub val_loss: f64,
    /// Learning rate of the last step.
    pub lr: f64,
}

impl From<(usize, f64, f64, f64)> for CurvePoint {
    fn from((step, train_loss, val_loss, lr): (usize, f64, f64, f64)) -> Self {
        Self {
            step,
            train_loss,
            val_loss,
            lr,
        }
    }
}

impl From<CurvePoint> for (usize, f64, f64, f64) {
    fn from(p: CurvePoint) -> Self {
        (p.step, p.train_loss, p.val_loss, p.lr)
    }
}

/// The result of [`Trainer::fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Steps done in total (including before a resume).
    pub steps: usize,
    /// Best validation loss.
    pub best_val_loss: f64,
    /// Step of the best validation loss.
    pub best_step: usize,
    /// Batches skipped for non-finite values.
    pub skipped_batches: usize,
    /// Wall-clock seconds of training (including before a resume).
    pub seconds: f64,
    /// Why training ended.
    pub stopped_by: StopReason,
    /// The loss curve: one point per validation.
    pub curve: Vec<CurvePoint>,
}

/// Where a step's gradients are: candle's autograd store, or the fused CPU step's buffers.
enum Gradients<'a> {
    Graph(candle_core::backprop::GradStore),
    Fused(&'a CpuStep),
}

/// Where a run stands, besides the tensors: saved whole in checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    rng: NoiseRng,
    cursor: usize,
    step: usize,
    best_val_loss: f64,
    best_step: usize,
    evals_since_best: usize,
    skipped: usize,
    loss_sum: f64,
    loss_count: usize,
    /// Training seconds before the current `fit` call (in a checkpoint: up to it).
    seconds: f64,
    curve: Vec<CurvePoint>,
}

/// The checkpoint header: format, model and trainer settings, and the progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    model: WeightsHeader,
    config: TrainerConfig,
    adam_steps: usize,
    progress: Progress,
}

/// Trains a [`ScoreModel`] with GNSM noise and loss.
///
/// ```
/// use candle_core::Device;
/// use gnsm_models::{TabResNetConfig, Trainer, TrainerConfig};
/// use gnsm_noise::{FeatureLayout, LOG_ONE_HOT_COLD as C};
///
/// let layout = FeatureLayout::categorical(vec![2, 2])?;
/// // Two columns that always agree: (a, a) or (b, b).
/// let rows: Vec<f32> = (0..64)
///     .flat_map(|i| if i % 2 == 0 { [0.0, C, 0.0, C] } else { [C, 0.0, C, 0.0] })
///     .collect();
/// let net = TabResNetConfig { width: 32, depth: 1, embedding_size: 16, ..Default::default() };
/// let config = TrainerConfig { steps: 20, batch_size: 16, eval_every: 10, progress: false, ..Default::default() };
/// let mut trainer = Trainer::new(net, layout, config, &Device::Cpu)?;
/// let summary = trainer.fit(&rows, &rows[..32], &mut |_| {})?;
/// assert_eq!(summary.steps, 20);
/// assert!(summary.best_val_loss.is_finite());
/// # Ok::<(), gnsm_models::ModelError>(())
/// ```
pub struct Trainer {
    config: TrainerConfig,
    model: ScoreModel,
    ema: ScoreModel,
    best: ScoreModel,
    optimizer: AdamW,
    loss: GnsmLoss,
    schedule: NoiseSchedule,
    order: Vec<u32>,
    progress: Progress,
    /// Buffers of the hand-written CPU step (built on first use for the batch size).
    cpu_step: Option<CpuStep>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("step", &self.progress.step)
            .field("best_val_loss", &self.progress.best_val_loss)
            .field("model", &self.model)
            .finish()
    }
}

impl Trainer {
    /// A trainer for a fresh model.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for bad settings, or a candle error.
    pub fn new(
        network: TabResNetConfig,
        layout: FeatureLayout,
        config: TrainerConfig,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let model = ScoreModel::new(network, layout, device)?;
        Self::with_model(model, config)
    }

    /// A trainer continuing from an existing model's weights (fresh optimizer).
    ///
    /// # Errors
    /// As [`Trainer::new`].
    pub fn with_model(model: ScoreModel, config: TrainerConfig) -> Result<Self, ModelError> {
        config.validate()?;
        let schedule = config.noise.build()?;
        let loss = GnsmLoss::new(model.layout(), config.loss, model.device())?;
        let optimizer = AdamW::new(
            model.named_vars(),
            config.beta1,
            config.beta2,
            config.adam_eps,
            config.weight_decay,
        )?;
        let ema = model.duplicate()?;
        let best = model.duplicate()?;
        Ok(Self {
            progress: Progress {
                rng: NoiseRng::seed_from_u64(config.seed),
                cursor: 0,
                step: 0,
                best_val_loss: f64::INFINITY,
                best_step: 0,
                evals_since_best: 0,
                skipped: 0,
                loss_sum: 0.0,
                loss_count: 0,
                seconds: 0.0,
                curve: Vec::new(),
            },
            config,
            model,
            ema,
            best,
            optimizer,
            loss,
            schedule,
            order: Vec::new(),
            cpu_step: None,
        })
    }

    /// The model being trained (raw weights).
    pub fn model(&self) -> &ScoreModel {
        &self.model
    }

    /// The EMA weights.
    pub fn ema(&self) -> &ScoreModel {
        &self.ema
    }

    /// The EMA weights of the best validation so far (what scoring should use).
    pub fn best(&self) -> &ScoreModel {
        &self.best
    }

    /// Steps done.
    pub fn step(&self) -> usize {
        self.progress.step
    }

    /// The settings.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Change the step budget (or other settings that do not affect the state), e.g. after
    /// a resume.
    pub fn config_mut(&mut self) -> &mut TrainerConfig {
        &mut self.config
    }

    fn next_batch(&mut self, rows: usize, batch: usize, out: &mut Vec<usize>) {
        out.clear();
        if self.order.len() != rows {
            self.order = (0..rows as u32).collect();
            self.order.shuffle(&mut self.progress.rng);
            self.progress.cursor = 0;
        }
        if self.progress.cursor + batch > rows {
            self.order.shuffle(&mut self.progress.rng);
            self.progress.cursor = 0;
        }
        out.extend(
            self.order[self.progress.cursor..self.progress.cursor + batch]
                .iter()
                .map(|&i| i as usize),
        );
        self.progress.cursor += batch;
    }

    /// Train on `train` rows (row-major, layout width each) and validate on `val` rows,
    /// until the step budget, the time budget or early stopping. `on_event` sees every
    /// [`TrainEvent`].
    ///
    /// # Errors
    /// [`ModelError::Shape`] for data that do not fit the layout,
    /// [`ModelError::NonFinite`] under [`NonFinitePolicy::Stop`], I/O errors of checkpoints
    /// and logs, or a candle error.
    pub fn fit(
        &mut self,
        train: &[f32],
        val: &[f32],
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<TrainSummary, ModelError> {
        self.fit_until(self.config.steps, train, val, on_event)
    }

    /// As [`Trainer::fit`], but stop after `until` steps in total (at most the configured
    /// budget, which still sets the learning-rate schedule); a checkpoint is written at the
    /// stop when one is configured, so a later [`Trainer::resume`] continues exactly.
    ///
    /// # Errors
    /// As [`Trainer::fit`].
    pub fn fit_until(
        &mut self,
        until: usize,
        train: &[f32],
        val: &[f32],
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<TrainSummary, ModelError> {
        let until = until.min(self.config.steps);
        let layout = self.model.layout().clone();
        let width = layout.width();
        for (what, data) in [("training rows", train), ("validation rows", val)] {
            if data.is_empty() || data.len() % width != 0 {
                return Err(ModelError::Shape {
                    what,
                    expected: format!("a non-zero multiple of the layout width {width}"),
                    got: data.len().to_string(),
                });
            }
        }
        let n_train = train.len() / width;
        let batch = self.config.batch_size.min(n_train);
        let device = self.model.device().clone();
        let start = Instant::now();
        let bar = self.progress_bar();
        let mut log = self.open_log()?;
        let mut indices = Vec::with_capacity(batch);
        let mut clean = vec![0f32; batch * width];
        let mut levels = Vec::with_capacity(batch);
        let mut noise = Perturbation::default();
        let mut stopped_by = StopReason::Steps;

        let mut checkpointed_at = None;
        while self.progress.step < until {
            // Batch, levels and noise, all from the one seeded host RNG.
            self.next_batch(n_train, batch, &mut indices);
            for (dst, &i) in clean.chunks_exact_mut(width).zip(&indices) {
                dst.copy_from_slice(&train[i * width..(i + 1) * width]);
            }
            self.schedule
                .sample_levels(&mut self.progress.rng, batch, &mut levels);
            perturb_batch(
                &clean,
                &layout,
                &self.schedule,
                &levels,
                &mut self.progress.rng,
                &mut noise,
            )?;
            let targets = self.loss.targets(&noise, DType::F32)?;
            let lr = self.config.lr_at(self.progress.step);
            let view = self.model.cpu_view();
            let (loss, norm, grads) = if self.config.fused_cpu_step && CpuStep::supports(&view) {
                if self.cpu_step.as_ref().map(CpuStep::batch) != Some(batch) {
                    self.cpu_step = Some(CpuStep::new(&view, batch)?);
                }
                let step = self.cpu_step.as_mut().expect("built above");
                let loss_fn = &self.loss;
                let loss = step.run(&view, &noise.noisy, &levels, &mut |out| {
                    let out = Var::from_tensor(&Tensor::from_slice(out, (batch, width), &device)?)?;
                    let parts = loss_fn.forward(out.as_tensor(), &targets)?;
                    let loss = f64::from(parts.total.to_scalar::<f32>()?);
                    let grads = parts.total.backward()?;
                    let g = match grads.get(out.as_tensor()) {
                        Some(g) => g.flatten_all()?.to_vec1::<f32>()?,
                        None => vec![0.0; batch * width],
                    };
                    Ok((loss, g))
                })?;
                let step: &CpuStep = step;
                (
                    loss,
                    AdamW::host_grad_norm(step.grads()),
                    Gradients::Fused(step),
                )
            } else {
                let masks = self.dropout_masks(batch, &device)?;
                let x = Tensor::from_slice(&noise.noisy, (batch, width), &device)?;
                let level_ids: Vec<u32> = levels.iter().map(|&l| l as u32).collect();
                let level_t = Tensor::from_vec(level_ids, batch, &device)?;
                let out = self.model.forward_with_masks(&x, &level_t, &masks)?;
                let parts = self.loss.forward(&out, &targets)?;
                let loss = f64::from(parts.total.to_scalar::<f32>()?);
                let grads = parts.total.backward()?;
                let norm = self.optimizer.grad_norm(&grads)?;
                (loss, norm, Gradients::Graph(grads))
            };
            if !loss.is_finite() || !norm.is_finite() {
                let what = if loss.is_finite() { "gradient" } else { "loss" };
                match self.config.non_finite {
                    NonFinitePolicy::Stop => {
                        bar.abandon();
                        return Err(ModelError::NonFinite {
                            what,
                            step: self.progress.step + 1,
                        });
                    }
                    NonFinitePolicy::SkipBatch => {
                        self.progress.skipped += 1;
                        self.progress.step += 1;
                        on_event(&TrainEvent::SkippedBatch {
                            step: self.progress.step,
                        });
                        continue;
                    }
                }
            }
            let scale = AdamW::clip_scale(norm, self.config.grad_clip);
            match grads {
                Gradients::Graph(grads) => self.optimizer.step(&grads, lr, scale)?,
                Gradients::Fused(step) => {
                    self.optimizer
                        .step_host(step.names(), step.grads(), lr, scale)?;
                }
            }
            self.update_ema()?;
            self.progress.step += 1;
            self.progress.loss_sum += loss;
            self.progress.loss_count += 1;
            on_event(&TrainEvent::Step {
                step: self.progress.step,
                loss,
                lr,
            });
            bar.set_position(self.progress.step as u64);
            if self.progress.step % 10 == 0 {
                bar.set_message(format!(
                    "loss {loss:.4} best val {:.4}",
                    self.progress.best_val_loss
                ));
            }

            let elapsed = self.progress.seconds + start.elapsed().as_secs_f64();
            let out_of_time = self.config.max_minutes.is_some_and(|m| elapsed >= m * 60.0);
            if self.progress.step % self.config.eval_every == 0
                || self.progress.step == self.config.steps
                || out_of_time
            {
                let improved = self.validate(val, on_event, elapsed, &mut log)?;
                if improved {
                    self.progress.evals_since_best = 0;
                } else {
                    self.progress.evals_since_best += 1;
                }
                if let Some(path) = self.config.checkpoint.clone() {
                    self.save_checkpoint(&path, elapsed)?;
                    checkpointed_at = Some(self.progress.step);
                    on_event(&TrainEvent::Checkpoint { path });
                }
                if self
                    .config
                    .patience
                    .is_some_and(|p| self.progress.evals_since_best >= p)
                {
                    stopped_by = StopReason::EarlyStopping;
                    on_event(&TrainEvent::Stopped {
                        step: self.progress.step,
                        reason: stopped_by,
                    });
                    break;
                }
            }
            if out_of_time {
                stopped_by = StopReason::TimeBudget;
                on_event(&TrainEvent::Stopped {
                    step: self.progress.step,
                    reason: stopped_by,
                });
                break;
            }
        }
        bar.finish_and_clear();
        if let Some(path) = self.config.checkpoint.clone() {
            if checkpointed_at != Some(self.progress.step) && self.progress.step > 0 {
                self.save_checkpoint(&path, self.progress.seconds + start.elapsed().as_secs_f64())?;
                on_event(&TrainEvent::Checkpoint { path });
            }
        }
        if self.progress.curve.is_empty() {
            let elapsed = self.progress.seconds + start.elapsed().as_secs_f64();
            self.validate(val, on_event, elapsed, &mut log)?;
        }
        let seconds = self.progress.seconds + start.elapsed().as_secs_f64();
        Ok(TrainSummary {
            steps: self.progress.step,
            best_val_loss: self.progress.best_val_loss,
            best_step: self.progress.best_step,
            skipped_batches: self.progress.skipped,
            seconds,
            stopped_by,
            curve: self.progress.curve.clone(),
        })
    }

    fn progress_bar(&self) -> indicatif::ProgressBar {
        if !self.config.progress {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(self.config.steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "training {bar:30} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}",
            )
            .expect("a valid template"),
        );
        bar.set_position(self.progress.step as u64);
        bar
    }

    fn open_log(&self) -> Result<Option<std::fs::File>, ModelError> {
        let Some(path) = &self.config.log_csv else {
            return Ok(None);
        };
        let io = |source| ModelError::Io {
            path: path.display().to_string(),
            source,
        };
        let fresh = !path.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if fresh {
            writeln!(file, "step,train_loss,val_loss,lr,seconds").map_err(io)?;
        }
        Ok(Some(file))
    }

    fn dropout_masks(&mut self, batch: usize, device: &Device) -> Result<Vec<Tensor>, ModelError> {
        let p = self.model.config().dropout;
        if p <= 0.0 {
            return Ok(Vec::new());
        }
        let width = self.model.config().width;
        let keep = 1.0 / (1.0 - p) as f32;
        (0..self.model.config().depth)
            .map(|_| {
                let data: Vec<f32> = (0..batch * width)
                    .map(|_| {
                        if self.progress.rng.random::<f64>() < p {
                            0.0
                        } else {
                            keep
                        }
                    })
                    .collect();
                Ok(Tensor::from_vec(data, (batch, width), device)?)
            })
            .collect()
    }

    fn update_ema(&self) -> Result<(), ModelError> {
        let d = self.config.ema_decay;
        for ((_, e), (_, p)) in self.ema.named_vars().iter().zip(self.model.named_vars()) {
            if crate::cpu::inplace::fusable(&[e.as_tensor(), p.as_tensor()]) {
                e.as_tensor().inplace_op2(
                    p.as_tensor(),
                    &crate::cpu::inplace::EmaUpdate { decay: d as f32 },
                )?;
            } else {
                e.set(&((e.as_tensor() * d)? + (p.as_tensor() * (1.0 - d))?)?)?;
            }
        }
        Ok(())
    }

    /// The validation loss of `model` on `val` rows: every level with its own fixed-seed
    /// noise (so evaluations are comparable), averaged over levels.
    ///
    /// # Errors
    /// As [`Trainer::fit`].
    pub fn validation_loss(&self, model: &ScoreModel, val: &[f32]) -> Result<f64, ModelError> {
        let layout = model.layout();
        let width = layout.width();
        let mut rows = val.len() / width;
        if let Some(cap) = self.config.val_rows {
            rows = rows.min(cap);
        }
        let device = model.device();
        let mut noise = Perturbation::default();
        let mut total = 0.0;
        for level in 0..self.schedule.levels() {
            let mut rng =
                NoiseRng::seed_from_u64(self.config.seed ^ 0x7a11_da7e_0000_0000 ^ level as u64);
            let mut level_sum = 0.0;
            for start in (0..rows).step_by(self.config.eval_batch) {
                let n = self.config.eval_batch.min(rows - start);
                let levels = vec![level; n];
                perturb_batch(
                    &val[start * width..(start + n) * width],
                    layout,
                    &self.schedule,
                    &levels,
                    &mut rng,
                    &mut noise,
                )?;
                let x = Tensor::from_slice(&noise.noisy, (n, width), device)?;
                let l = Tensor::from_vec(vec![level as u32; n], n, device)?;
                let out = model.infer(&x, &l)?;
                let targets = self.loss.targets(&noise, DType::F32)?;
                let loss = f64::from(
                    self.loss
                        .forward(&out, &targets)?
                        .total
                        .to_scalar::<f32>()?,
                );
                level_sum += loss * n as f64;
            }
            total += level_sum / rows as f64;
        }
        Ok(total / self.schedule.levels() as f64)
    }

    fn validate(
        &mut self,
        val: &[f32],
        on_event: &mut dyn FnMut(&TrainEvent),
        elapsed: f64,
        log: &mut Option<std::fs::File>,
    ) -> Result<bool, ModelError> {
        let val_loss = self.validation_loss(&self.ema, val)?;
        let train_loss = if self.progress.loss_count > 0 {
            self.progress.loss_sum / self.progress.loss_count as f64
        } else {
            f64::NAN
        };
        self.progress.loss_sum = 0.0;
        self.progress.loss_count = 0;
        let lr = self.config.lr_at(self.progress.step.saturating_sub(1));
        self.progress.curve.push(CurvePoint {
            step: self.progress.step,
            train_loss,
            val_loss,
            lr,
        });
        let improved = val_loss < self.progress.best_val_loss - self.config.min_delta;
        if improved {
            self.progress.best_val_loss = val_loss;
            self.progress.best_step = self.progress.step;
            self.best.copy_from(&self.ema)?;
        }
        if let (Some(file), Some(path)) = (log.as_mut(), &self.config.log_csv) {
            writeln!(
                file,
                "{},{train_loss},{val_loss},{lr},{elapsed:.3}",
                self.progress.step
            )
            .map_err(|source| ModelError::Io {
                path: path.display().to_string(),
                source,
            })?;
        }
        on_event(&TrainEvent::Validation {
            step: self.progress.step,
            train_loss,
            val_loss,
            improved,
        });
        Ok(improved)
    }

    /// Path of the best-weights file written beside a checkpoint.
    pub fn best_path(checkpoint: &Path) -> PathBuf {
        checkpoint.with_extension("best.safetensors")
    }

    /// Write the full training state (weights, EMA and best weights, AdamW moments, step,
    /// RNG state, batch order, counters, configs and layout) to `path`, atomically; the
    /// best EMA weights also go to [`Trainer::best_path`] as a loadable [`ScoreModel`].
    ///
    /// # Errors
    /// [`ModelError::Io`] or [`ModelError::Checkpoint`].
    pub fn save_checkpoint(&self, path: &Path, seconds: f64) -> Result<(), ModelError> {
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        for (prefix, model) in [
            ("param/", &self.model),
            ("ema/", &self.ema),
            ("best/", &self.best),
        ] {
            tensors.extend(
                model
                    .tensors()
                    .into_iter()
                    .map(|(k, t)| (format!("{prefix}{k}"), t)),
            );
        }
        tensors.extend(self.optimizer.state());
        let order = Tensor::from_slice(&self.order, self.order.len(), &Device::Cpu)?;
        tensors.push(("sampler/order".into(), order));
        let state = TrainState {
            model: self.model.header(),
            config: self.config.clone(),
            adam_steps: self.optimizer.steps_taken(),
            progress: Progress {
                seconds,
                ..self.progress.clone()
            },
        };
        crate::io::save_envelope(
            path,
            CHECKPOINT_FORMAT,
            CHECKPOINT_VERSION,
            &state,
            &tensors,
        )?;
        self.best.save(Self::best_path(path))
    }

    /// Continue a run from a checkpoint written by [`Trainer::save_checkpoint`], exactly:
    /// training on from here gives the same weights as a run that never stopped.
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] for a file that is not a gnsm checkpoint, from a newer
    /// format, or incomplete; [`ModelError::Io`].
    pub fn resume(path: &Path, device: &Device) -> Result<Self, ModelError> {
        let shown = path.display().to_string();
        let file = crate::io::load_envelope::<TrainState>(
            path,
            CHECKPOINT_FORMAT,
            CHECKPOINT_VERSION,
            device,
        )?;
        let (state, tensors) = (file.header, file.tensors);
        let model =
            ScoreModel::from_tensors(state.model.clone(), &tensors, "param/", path, device)?;
        let mut trainer = Self::with_model(model, state.config.clone())?;
        let ema = ScoreModel::from_tensors(state.model.clone(), &tensors, "ema/", path, device)?;
        trainer.ema.copy_from(&ema)?;
        let best = ScoreModel::from_tensors(state.model, &tensors, "best/", path, device)?;
        trainer.best.copy_from(&best)?;
        trainer
            .optimizer
            .restore(&tensors, state.adam_steps, &shown)?;
        trainer.order = tensors
            .get("sampler/order")
            .ok_or_else(|| ModelError::Checkpoint {
                path: shown.clone(),
                reason: "missing sampler/order".into(),
            })?
            .to_vec1::<u32>()?;
        trainer.progress = state.progress;
        Ok(trainer)
    }
}
