use std::path::PathBuf;

use gnsm_losses::LossConfig;
use gnsm_noise::ScheduleConfig;
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::ModelError;

/// Learning-rate schedule over the step budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The base rate throughout (after warm-up).
    Constant,
    /// Cosine decay from the base rate to `min_lr` over the step budget (PyTorch's
    /// `CosineAnnealingLR(T_max = steps, eta_min)`), as the reference.
    Cosine {
        /// The floor.
        min_lr: f64,
    },
}

impl LrSchedule {
    /// The rate at `step` (0-based) of a `steps`-step run from base rate `lr`, after
    /// `warmup` steps of linear warm-up (any training loop's schedule, not only
    /// [`Trainer`](crate::Trainer)'s).
    ///
    /// ```
    /// use gnsm_models::LrSchedule;
    /// let cosine = LrSchedule::Cosine { min_lr: 0.0 };
    /// assert_eq!(cosine.rate(1.0, 0, 10, 0), 1.0);
    /// assert!((cosine.rate(1.0, 0, 10, 5) - 0.5).abs() < 1e-12);
    /// assert_eq!(LrSchedule::Constant.rate(0.1, 2, 10, 0), 0.05); // warm-up
    /// ```
    pub fn rate(&self, lr: f64, warmup: usize, steps: usize, step: usize) -> f64 {
        if step < warmup {
            return lr * (step + 1) as f64 / warmup as f64;
        }
        match *self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine { min_lr } => {
                let span = steps.saturating_sub(warmup).max(1) as f64;
                let t = ((step - warmup) as f64 / span).min(1.0);
                min_lr + 0.5 * (lr - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

/// What to do when a loss or gradient is NaN or infinite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Stop with [`ModelError::NonFinite`] naming the step; the last checkpoint stays intact.
    #[default]
    Stop,
    /// Skip the batch (no update) and count it.
    SkipBatch,
}

/// Where a run writes besides the model: kept out of [`TrainerConfig`] (and so out of every
/// saved model file), set with [`Trainer::set_run_options`](crate::Trainer::set_run_options)
/// and carried by checkpoints so that a resumed run writes where the first one did.
///
/// ```
/// use std::path::PathBuf;
/// use gnsm_models::RunOptions;
/// let run = RunOptions { checkpoint: Some(PathBuf::from("run.safetensors")), ..Default::default() };
/// assert!(run.log_csv.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunOptions {
    /// Write the full training state here (atomically) at every validation, for
    /// [`Trainer::resume`](crate::Trainer::resume); the best EMA weights go beside it with
    /// the extension `best.safetensors`.
    pub checkpoint: Option<PathBuf>,
    /// Append the loss curve (step, train loss, validation loss, lr, seconds) as CSV.
    pub log_csv: Option<PathBuf>,
}

/// Settings of the [`Trainer`](crate::Trainer). Defaults follow the reference where it
/// applies (AdamW, weight decay 1e-4, lr 1e-3 with cosine decay to 1e-5, global grad-norm
/// clip 1, EMA 0.999), with a CPU-sized step budget and batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainerConfig {
    /// Step budget.
    pub steps: usize,
    /// Wall-clock budget in minutes (stops early when reached).
    pub max_minutes: Option<f64>,
    /// Rows per step.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Schedule after warm-up.
    pub schedule: LrSchedule,
    /// Linear warm-up steps from 0 to the base rate.
    pub warmup_steps: usize,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// AdamW β₁.
    pub beta1: f64,
    /// AdamW β₂.
    pub beta2: f64,
    /// AdamW ε.
    pub adam_eps: f64,
    /// Global gradient-norm clip (None: no clipping).
    pub grad_clip: Option<f64>,
    /// EMA decay of the weights used for validation and scoring.
    pub ema_decay: f64,
    /// Validate every this many steps (and at the end).
    pub eval_every: usize,
    /// At most this many validation rows (all when None).
    pub val_rows: Option<usize>,
    /// Rows per validation forward pass.
    pub eval_batch: usize,
    /// Stop after this many validations without improvement (None: never).
    pub patience: Option<usize>,
    /// A validation improves on the best only when lower by more than this.
    pub min_delta: f64,
    /// Seed of batch order and noise.
    pub seed: u64,
    /// NaN / inf handling.
    pub non_finite: NonFinitePolicy,
    /// The objective.
    pub loss: LossConfig,
    /// The noise levels.
    pub noise: ScheduleConfig,
    /// Train a CPU f32 model without dropout with the hand-written, allocation-free
    /// forward/backward (same numbers as candle's autograd up to float rounding, several
    /// times faster at large widths); `false` uses candle's autograd throughout.
    pub fused_cpu_step: bool,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            steps: 10_000,
            max_minutes: None,
            batch_size: 512,
            lr: 1e-3,
            schedule: LrSchedule::Cosine { min_lr: 1e-5 },
            warmup_steps: 0,
            weight_decay: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            adam_eps: 1e-8,
            grad_clip: Some(1.0),
            ema_decay: 0.999,
            eval_every: 500,
            val_rows: None,
            eval_batch: 1024,
            patience: None,
            min_delta: 0.0,
            seed: 0,
            non_finite: NonFinitePolicy::Stop,
            loss: LossConfig::default(),
            noise: ScheduleConfig::default(),
            fused_cpu_step: true,
        }
    }
}

impl TrainerConfig {
    /// Check the settings.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), ModelError> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if self.batch_size == 0 {
            return invalid("batch_size", 0, "must be at least 1");
        }
        if !positive(self.lr) {
            return invalid("lr", self.lr.to_string(), "must be finite and > 0");
        }
        if let LrSchedule::Cosine { min_lr } = self.schedule {
            if !(min_lr.is_finite() && min_lr >= 0.0 && min_lr <= self.lr) {
                return invalid("min_lr", min_lr.to_string(), "must be in [0, lr]");
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid(
                "weight_decay",
                self.weight_decay.to_string(),
                "must be finite and >= 0",
            );
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return invalid(
                "beta",
                format!("({}, {})", self.beta1, self.beta2),
                "must be in [0, 1)",
            );
        }
        if !positive(self.adam_eps) {
            return invalid(
                "adam_eps",
                self.adam_eps.to_string(),
                "must be finite and > 0",
            );
        }
        if let Some(clip) = self.grad_clip {
            if !positive(clip) {
                return invalid("grad_clip", clip.to_string(), "must be finite and > 0");
            }
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return invalid("ema_decay", self.ema_decay.to_string(), "must be in [0, 1)");
        }
        if self.eval_every == 0 || self.eval_batch == 0 {
            return invalid("eval_every / eval_batch", 0, "must be at least 1");
        }
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return invalid(
                "min_delta",
                self.min_delta.to_string(),
                "must be finite and >= 0",
            );
        }
        if let Some(m) = self.max_minutes {
            if !positive(m) {
                return invalid("max_minutes", m.to_string(), "must be finite and > 0");
            }
        }
        self.noise.build()?;
        Ok(())
    }

    /// The learning rate at `step` (0-based): linear warm-up, then the schedule.
    pub fn lr_at(&self, step: usize) -> f64 {
        self.schedule
            .rate(self.lr, self.warmup_steps, self.steps, step)
    }
}
