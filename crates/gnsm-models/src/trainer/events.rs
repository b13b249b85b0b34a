//! What a training run tells its caller: events as it goes, a summary at the end.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Something that happened during training, for library users' hooks.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// A run (a `fit` or `fit_until` call) begins: for a progress display.
    Started {
        /// Steps already done (after a resume).
        step: usize,
        /// The step the run will stop at, at the latest.
        steps: usize,
    },
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

/// The result of [`Trainer::fit`](crate::Trainer::fit).
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
