//! The training loop: seeded batches and noise, AdamW, gradient clipping, EMA weights,
//! fixed-noise validation, best-checkpoint keeping, early stopping, time budget, atomic
//! checkpoints with exact resume, an event hook (progress displays are the caller's) and CSV log.

mod adamw;
mod checkpoint;
mod config;
mod events;
mod validation;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use gnsm_losses::GnsmLoss;
use gnsm_noise::{perturb_batch, FeatureLayout, NoiseRng, NoiseSchedule, Perturbation, Rows};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

pub use adamw::AdamW;

use crate::cpu::CpuStep;
pub use config::{LrSchedule, NonFinitePolicy, RunOptions, TrainerConfig};
pub use events::{CurvePoint, StopReason, TrainEvent, TrainSummary};

use crate::model::WeightsHeader;
use crate::{ModelError, TabResNetConfig, TabResNetModel};

const CHECKPOINT_FORMAT: &str = "gnsm-checkpoint";
/// Version 2: the checksummed envelope.
const CHECKPOINT_VERSION: u32 = 2;

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
    /// Absent in checkpoints written before run options left the configuration.
    #[serde(default)]
    run: Option<RunOptions>,
}

/// Trains a [`TabResNetModel`] with GNSM noise and loss.
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
/// let config = TrainerConfig { steps: 20, batch_size: 16, eval_every: 10, ..Default::default() };
/// let mut trainer = Trainer::new(net, layout, config, &Device::Cpu)?;
/// let summary = trainer.fit(&rows, &rows[..32], &mut |_| {})?;
/// assert_eq!(summary.steps, 20);
/// assert!(summary.best_val_loss.is_finite());
/// # Ok::<(), gnsm_models::ModelError>(())
/// ```
pub struct Trainer {
    config: TrainerConfig,
    run: RunOptions,
    model: TabResNetModel,
    ema: TabResNetModel,
    best: TabResNetModel,
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
        let model = TabResNetModel::new(network, layout, device)?;
        Self::with_model(model, config)
    }

    /// A trainer continuing from an existing model's weights (fresh optimizer).
    ///
    /// # Errors
    /// As [`Trainer::new`].
    pub fn with_model(model: TabResNetModel, config: TrainerConfig) -> Result<Self, ModelError> {
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
            run: RunOptions::default(),
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
    pub fn model(&self) -> &TabResNetModel {
        &self.model
    }

    /// The EMA weights.
    pub fn ema(&self) -> &TabResNetModel {
        &self.ema
    }

    /// The EMA weights of the best validation so far (what scoring should use).
    pub fn best(&self) -> &TabResNetModel {
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

    /// Where the run writes besides the model (checkpoint, CSV log).
    pub fn run_options(&self) -> &RunOptions {
        &self.run
    }

    /// Set where the run writes besides the model; takes effect at the next validation
    /// (the CSV log at the next `fit` call).
    pub fn set_run_options(&mut self, run: RunOptions) {
        self.run = run;
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

    /// Train on `train` rows and validate on `val` rows — dense (row-major log-one-hot,
    /// layout width each: a `&[f32]`) or compact ([`gnsm_noise::CompactRows`], expanded a
    /// batch at a time) —
    /// until the step budget, the time budget or early stopping. `on_event` sees every
    /// [`TrainEvent`].
    ///
    /// # Errors
    /// [`ModelError::Shape`] for data that do not fit the layout,
    /// [`ModelError::NonFinite`] under [`NonFinitePolicy::Stop`], I/O errors of checkpoints
    /// and logs, or a candle error.
    pub fn fit<'a, 'b>(
        &mut self,
        train: impl Into<Rows<'a>>,
        val: impl Into<Rows<'b>>,
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
    pub fn fit_until<'a, 'b>(
        &mut self,
        until: usize,
        train: impl Into<Rows<'a>>,
        val: impl Into<Rows<'b>>,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<TrainSummary, ModelError> {
        let (train, val) = (train.into(), val.into());
        let until = until.min(self.config.steps);
        let layout = self.model.layout().clone();
        let width = layout.width();
        let count = |data: Rows<'_>, what| match data.count(&layout, what) {
            Ok(rows) if rows > 0 => Ok(rows),
            _ => Err(ModelError::Shape {
                what,
                expected: format!("a non-zero number of rows of the layout width {width}"),
                got: match data {
                    Rows::Dense(d) => format!("{} values", d.len()),
                    Rows::Compact(c) => {
                        format!("{} rows of width {}", c.rows(), c.layout().width())
                    }
                },
            }),
        };
        let n_train = count(train, "training rows")?;
        count(val, "validation rows")?;
        let batch = self.config.batch_size.min(n_train);
        let device = self.model.device().clone();
        let start = Instant::now();
        on_event(&TrainEvent::Started {
            step: self.progress.step,
            steps: until.min(self.config.steps),
        });
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
                train.copy_rows(i, 1, dst)?;
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
            let lr = self.config.lr_at(self.progress.step);
            let view = self.model.cpu_view();
            let (loss, norm, grads) = if self.config.fused_cpu_step && CpuStep::supports(&view) {
                if self.cpu_step.as_ref().map(CpuStep::batch) != Some(batch) {
                    self.cpu_step = Some(CpuStep::new(&view, batch)?);
                }
                let step = self.cpu_step.as_mut().expect("built above");
                // The loss and its gradient in one host pass over every group: no candle
                // ops per group, so the step costs the same for 10 groups as for 1,000.
                let (layout, objective) = (self.loss.layout(), self.loss.config().objective);
                let loss = step.run(&view, &noise.noisy, &levels, &mut |out| {
                    let mut g = vec![0f32; out.len()];
                    let (categorical, continuous) =
                        gnsm_losses::loss_and_grad(layout, objective, &noise, out, &mut g)?;
                    Ok((categorical + continuous, g))
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
                let targets = self.loss.targets(&noise, DType::F32)?;
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
            // One job on the pool's worker: AdamW's and the EMA's large tensors update in
            // parallel chunks without a hand-off per tensor.
            let decay = self.config.ema_decay;
            let (optimizer, ema, model) = (&mut self.optimizer, &self.ema, &self.model);
            crate::cpu::on_pool(|| {
                match grads {
                    Gradients::Graph(grads) => optimizer.step(&grads, lr, scale)?,
                    Gradients::Fused(step) => {
                        optimizer.step_host(step.names(), step.grads(), lr, scale)?;
                    }
                }
                update_ema(ema, model, decay)
            })?;
            self.progress.step += 1;
            self.progress.loss_sum += loss;
            self.progress.loss_count += 1;
            on_event(&TrainEvent::Step {
                step: self.progress.step,
                loss,
                lr,
            });

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
                if let Some(path) = self.run.checkpoint.clone() {
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
        if let Some(path) = self.run.checkpoint.clone() {
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

    fn open_log(&self) -> Result<Option<std::fs::File>, ModelError> {
        let Some(path) = &self.run.log_csv else {
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
}

/// `ema ← d·ema + (1 − d)·model`, variable by variable.
fn update_ema(ema: &TabResNetModel, model: &TabResNetModel, d: f64) -> Result<(), ModelError> {
    for ((_, e), (_, p)) in ema.named_vars().iter().zip(model.named_vars()) {
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
