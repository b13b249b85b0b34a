use candle_core::{DType, Device, Tensor};
use gnsm_noise::{FeatureLayout, Perturbation};
use serde::{Deserialize, Serialize};

use crate::{GroupSoftmax, GroupStrategy, LossError};

/// The categorical score-matching objective.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CategoricalObjective {
    /// `KL(softmax(ε) ‖ softmax(ε_θ))` per group, summed over groups, batch mean — what
    /// every tabular configuration of the reference trains with (paper eq. 17 without the
    /// τ²K² weights, as in the code).
    #[default]
    Kl,
    /// Denoising score matching on the scores (paper eq. 5/6 with the reference's factor
    /// 0.5): `0.5·τ²K²‖softmax(ε_θ) - softmax(ε)‖²` per group, summed, batch mean.
    Mse,
}

/// Settings of a [`GnsmLoss`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LossConfig {
    /// The categorical objective (default: KL).
    pub objective: CategoricalObjective,
    /// How the per-group softmax is computed (default: padded).
    pub strategy: GroupStrategy,
}

/// The host-computed, constant side of a batch's loss, on the loss's device.
#[derive(Debug, Clone)]
pub struct LossTargets {
    rows: usize,
    /// softmax(ε) per group, in the group softmax's native layout (0 in padding).
    probs: Tensor,
    /// KL: `Σ p·ln p / B` over the batch; MSE: unused (0).
    neg_entropy: f64,
    /// MSE only: `0.5·τ_b²·K_g²/B` per entry, in the native layout.
    mse_weight: Option<Tensor>,
    /// (B, continuous) target `-n/σ`.
    continuous: Tensor,
}

impl LossTargets {
    /// Number of rows in the batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The per-group target probabilities `softmax(ε)`, in the native layout of the loss's
    /// [`GroupSoftmax`].
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }
}

/// The parts of a batch loss, each a scalar tensor.
#[derive(Debug, Clone)]
pub struct LossParts {
    /// `categorical + continuous`: what to differentiate.
    pub total: Tensor,
    /// The categorical objective (summed over groups, batch mean).
    pub categorical: Tensor,
    /// The continuous DSM objective (batch mean).
    pub continuous: Tensor,
}

/// The combined GNSM objective over a [`FeatureLayout`]: a categorical objective per group
/// plus the continuous DSM objective, for mixed data.
#[derive(Debug, Clone)]
pub struct GnsmLoss {
    config: LossConfig,
    groups: GroupSoftmax,
}

impl GnsmLoss {
    /// A loss for `layout` whose index tensors live on `device`.
    ///
    /// # Errors
    /// A candle error if the index tensors cannot be built.
    pub fn new(
        layout: &FeatureLayout,
        config: LossConfig,
        device: &Device,
    ) -> Result<Self, LossError> {
        Ok(Self {
            config,
            groups: GroupSoftmax::new(layout, config.strategy, device)?,
        })
    }

    /// The settings.
    pub fn config(&self) -> &LossConfig {
        &self.config
    }

    /// The group softmax this loss uses (also turns outputs into scores).
    pub fn group_softmax(&self) -> &GroupSoftmax {
        &self.groups
    }

    /// The layout.
    pub fn layout(&self) -> &FeatureLayout {
        self.groups.layout()
    }

    /// Compute the constant targets of a perturbed batch on the host (softmax of the logit
    /// noise per group, the entropy term of the KL, the MSE weights) and upload them.
    ///
    /// # Errors
    /// [`LossError::Shape`] when the perturbation does not fit the layout, or a candle error.
    pub fn targets(&self, noise: &Perturbation, dtype: DType) -> Result<LossTargets, LossError> {
        let layout = self.layout();
        let rows = noise.rows;
        let cw = layout.categorical_width();
        let n_cont = layout.continuous();
        if noise.logit_noise.len() != rows * cw
            || noise.continuous_target.len() != rows * n_cont
            || noise.temperatures.len() != rows
        {
            return Err(LossError::Shape {
                what: "perturbation for this layout",
                expected: vec![rows, cw + n_cont],
                got: vec![
                    noise.logit_noise.len() / rows.max(1),
                    noise.continuous_target.len() / rows.max(1),
                ],
            });
        }
        let device = self.groups.device();
        let dims = self.groups.native_dims(rows);
        let batch = rows.max(1) as f64;

        // softmax(ε) per group and Σ p ln p come with the perturbation; MSE adds its weights.
        if noise.target_probs.len() != rows * cw || noise.target_neg_entropy.len() != rows {
            return Err(LossError::Shape {
                what: "target probabilities of the perturbation",
                expected: vec![rows, cw],
                got: vec![noise.target_probs.len(), noise.target_neg_entropy.len()],
            });
        }
        let p_log_p: f64 = noise.target_neg_entropy.iter().sum();
        let weights = match self.config.objective {
            CategoricalObjective::Kl => None,
            CategoricalObjective::Mse => {
                let mut w = vec![0f32; rows * cw];
                for (b, row) in w.chunks_exact_mut(cw.max(1)).enumerate().take(rows) {
                    let tau = f64::from(noise.temperatures[b]);
                    for range in layout.group_ranges() {
                        let k = range.len() as f64;
                        row[range.start - n_cont..range.end - n_cont]
                            .fill((0.5 * tau * tau * k * k / batch) as f32);
                    }
                }
                Some(w)
            }
        };
        let upload = |host: Vec<f32>| -> Result<Tensor, LossError> {
            Ok(Tensor::from_vec(host, dims.clone(), device)?.to_dtype(dtype)?)
        };
        let probs = if cw == 0 {
            self.groups.native_zeros(rows, dtype)?
        } else {
            upload(self.groups.arrange_host(&noise.target_probs, rows, 0.0)?)?
        };
        let mse_weight = match weights {
            Some(w) if cw > 0 => Some(upload(self.groups.arrange_host(&w, rows, 0.0)?)?),
            _ => None,
        };
        let continuous = Tensor::from_slice(&noise.continuous_target, (rows, n_cont), device)?
            .to_dtype(dtype)?;
        Ok(LossTargets {
            rows,
            probs,
            neg_entropy: p_log_p / batch,
            mse_weight,
            continuous,
        })
    }

    /// The loss of a network output (B, width) — continuous scores first, then the
    /// categorical logits — against a batch's targets.
    ///
    /// # Errors
    /// [`LossError::Shape`] when the output does not have the layout's width or the batch's
    /// rows, or a candle error.
    pub fn forward(&self, output: &Tensor, targets: &LossTargets) -> Result<LossParts, LossError> {
        let layout = self.layout();
        let rows = targets.rows;
        if output.dims() != [rows, layout.width()] {
            return Err(LossError::Shape {
                what: "network output",
                expected: vec![rows, layout.width()],
                got: output.dims().to_vec(),
            });
        }
        let batch = rows.max(1) as f64;
        let dtype = output.dtype();
        let zero = || Tensor::zeros((), dtype, output.device());

        let categorical = if layout.n_groups() == 0 {
            zero()?
        } else {
            let log_q = self.groups.log_softmax_output(output)?;
            match (&self.config.objective, &targets.mse_weight) {
                (CategoricalObjective::Kl, _) => {
                    // KL = Σ p ln p - Σ p ln q; the first term is a constant from the host.
                    (log_q.mul(&targets.probs)?.sum_all()? * (-1.0 / batch))?
                        .affine(1.0, targets.neg_entropy)?
                }
                (CategoricalObjective::Mse, Some(weight)) => {
                    let diff = log_q.exp()?.sub(&targets.probs)?;
                    diff.sqr()?.mul(weight)?.sum_all()?
                }
                (CategoricalObjective::Mse, None) => {
                    return Err(LossError::Shape {
                        what: "MSE weights (targets built by a KL loss?)",
                        expected: self.groups.native_dims(rows),
                        got: vec![],
                    })
                }
            }
        };

        let continuous = if layout.continuous() == 0 {
            zero()?
        } else {
            let scores = output.narrow(1, 0, layout.continuous())?;
            (scores.sub(&targets.continuous)?.sqr()?.sum_all()? * (0.5 / batch))?
        };
        let total = categorical.add(&continuous)?;
        Ok(LossParts {
            total,
            categorical,
            continuous,
        })
    }
}
