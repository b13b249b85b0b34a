//! The combined objective and its gradient on host slices, every group in one pass.
//!
//! The candle path ([`GnsmLoss::forward`](crate::GnsmLoss::forward) and autograd) builds a
//! handful of ops per categorical group, so with hundreds of groups the per-op overhead, not
//! the arithmetic, sets the pace of a training step. Here each row's groups are walked once:
//! the log-softmax, the loss and its gradient with respect to the network output, for the
//! same objective (values and gradients pinned to the candle path and to finite differences
//! in `tests/host.rs`). Sums are taken in f64, so results agree with the candle path to
//! float reassociation, not bit for bit.

use gnsm_noise::{FeatureLayout, Perturbation};
use rayon::prelude::*;

use crate::{CategoricalObjective, LossError};

/// The batch loss (categorical part, continuous part) of `output` (B × layout width,
/// continuous scores first, then the group logits) against the targets of `noise`, and its
/// gradient with respect to `output`, written into `grad` (same shape).
///
/// # Errors
/// [`LossError::Shape`] when `output`, `grad` or `noise` do not match the layout and batch.
pub fn loss_and_grad(
    layout: &FeatureLayout,
    objective: CategoricalObjective,
    noise: &Perturbation,
    output: &[f32],
    grad: &mut [f32],
) -> Result<(f64, f64), LossError> {
    let rows = noise.rows;
    let width = layout.width();
    let n_cont = layout.continuous();
    let cw = layout.categorical_width();
    if output.len() != rows * width
        || grad.len() != rows * width
        || noise.target_probs.len() != rows * cw
        || noise.continuous_target.len() != rows * n_cont
        || noise.temperatures.len() != rows
        || noise.target_neg_entropy.len() != rows
    {
        return Err(LossError::Shape {
            what: "host loss inputs",
            expected: vec![rows, width],
            got: vec![output.len(), grad.len(), noise.target_probs.len()],
        });
    }
    let batch = rows.max(1) as f64;
    let inv_b = (1.0 / batch) as f32;
    let k_max = layout.groups().iter().copied().max().unwrap_or(0);
    // Rows are independent: each row's gradient and its two loss terms in parallel (the
    // tasks hold enough values to be worth a thread), the terms summed in row order.
    let rows_per_task = (MIN_TASK_VALUES / width.max(1)).max(1);
    let mut terms = vec![(0f64, 0f64); rows];
    grad[..rows * width]
        .par_chunks_mut(width.max(1))
        .zip(terms.par_iter_mut())
        .enumerate()
        .with_min_len(rows_per_task)
        .for_each_init(
            || vec![0f32; k_max],
            |log_q, (b, (g, term))| {
                let row = RowLoss {
                    out: &output[b * width..(b + 1) * width],
                    probs: &noise.target_probs[b * cw..(b + 1) * cw],
                    continuous_target: &noise.continuous_target[b * n_cont..(b + 1) * n_cont],
                    tau: f64::from(noise.temperatures[b]),
                    neg_entropy: noise.target_neg_entropy[b],
                };
                *term = row.loss_and_grad(layout, objective, batch, inv_b, g, log_q);
            },
        );
    let (mut categorical, mut continuous) = (0f64, 0f64);
    for (cat, cont) in terms {
        categorical += cat;
        continuous += cont;
    }
    if objective == CategoricalObjective::Kl {
        categorical /= batch;
    }
    Ok((categorical, 0.5 * continuous / batch))
}

/// Values (rows × width) per parallel task of [`loss_and_grad`].
const MIN_TASK_VALUES: usize = 4096;

/// One row of [`loss_and_grad`]'s inputs.
struct RowLoss<'a> {
    out: &'a [f32],
    probs: &'a [f32],
    continuous_target: &'a [f32],
    tau: f64,
    neg_entropy: f64,
}

impl RowLoss<'_> {
    /// Write the row's gradient into `g`; return its categorical term (KL: `Σ p ln p − Σ p ln
    /// q`, before the division by the batch; MSE: already weighted) and its squared
    /// continuous error. `log_q` is scratch of the largest group's size.
    fn loss_and_grad(
        &self,
        layout: &FeatureLayout,
        objective: CategoricalObjective,
        batch: f64,
        inv_b: f32,
        g: &mut [f32],
        log_q: &mut [f32],
    ) -> (f64, f64) {
        let n_cont = layout.continuous();
        let (out, probs) = (self.out, self.probs);
        let mut continuous = 0f64;
        for j in 0..n_cont {
            let diff = out[j] - self.continuous_target[j];
            continuous += f64::from(diff) * f64::from(diff);
            g[j] = diff * inv_b;
        }
        let tau = self.tau;
        let (mut categorical, mut cross) = (0f64, 0f64);
        for range in layout.group_ranges() {
            let k = range.len();
            let logits = &out[range.clone()];
            let p = &probs[range.start - n_cont..range.end - n_cont];
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
            let lse = max + sum.ln();
            for (l, &x) in log_q[..k].iter_mut().zip(logits) {
                *l = x - lse;
            }
            let gg = &mut g[range];
            match objective {
                CategoricalObjective::Kl => {
                    // KL = Σ p ln p − Σ p ln q; ∂/∂logit = (q − p)/B (Σ p = 1).
                    for j in 0..k {
                        cross += f64::from(p[j]) * f64::from(log_q[j]);
                        gg[j] = (log_q[j].exp() - p[j]) * inv_b;
                    }
                }
                CategoricalObjective::Mse => {
                    // Σ w (q − p)², w = ½τ²K²/B; ∂/∂logit_j = 2w·q_j·[(q_j − p_j) − Σ q (q − p)].
                    let w = 0.5 * tau * tau * (k * k) as f64 / batch;
                    let mut inner = 0f64;
                    for j in 0..k {
                        let q = f64::from(log_q[j].exp());
                        let d = q - f64::from(p[j]);
                        categorical += w * d * d;
                        inner += q * d;
                    }
                    for j in 0..k {
                        let q = f64::from(log_q[j].exp());
                        let d = q - f64::from(p[j]);
                        gg[j] = (2.0 * w * q * (d - inner)) as f32;
                    }
                }
            }
        }
        if objective == CategoricalObjective::Kl {
            categorical = self.neg_entropy - cross;
        }
        (categorical, continuous)
    }
}

/// The scores of network outputs on host slices, every group of a row in one pass: what
/// [`GroupSoftmax::scores`](crate::GroupSoftmax::scores) computes with candle ops. `output`
/// holds rows of the layout's width (continuous scores first, then the group logits) and
/// `temperatures` one τ per row; each categorical group becomes `-τ + τ·K·softmax(logits)`
/// (paper eq. 4) and the continuous block is copied through. Written into `scores` (same
/// shape as `output`).
///
/// ```
/// use gnsm_losses::score_transform;
/// use gnsm_noise::FeatureLayout;
/// let layout = FeatureLayout::new(1, vec![2])?;
/// let mut scores = [0.0f32; 3];
/// score_transform(&layout, &[0.7, 0.0, 0.0], &[2.0], &mut scores)?;
/// // Equal logits: softmax ½, so each score is -2 + 2·2·½ = 0.
/// assert_eq!(scores, [0.7, 0.0, 0.0]);
/// # Ok::<(), gnsm_losses::LossError>(())
/// ```
///
/// # Errors
/// [`LossError::Shape`] when `output`, `scores` and `temperatures` do not describe the same
/// rows of the layout's width.
pub fn score_transform(
    layout: &FeatureLayout,
    output: &[f32],
    temperatures: &[f32],
    scores: &mut [f32],
) -> Result<(), LossError> {
    let width = layout.width();
    let rows = temperatures.len();
    if output.len() != rows * width || scores.len() != output.len() {
        return Err(LossError::Shape {
            what: "score transform inputs",
            expected: vec![rows, width],
            got: vec![output.len(), scores.len()],
        });
    }
    let n_cont = layout.continuous();
    for ((out, s), &tau) in output
        .chunks_exact(width.max(1))
        .zip(scores.chunks_exact_mut(width.max(1)))
        .zip(temperatures)
    {
        s[..n_cont].copy_from_slice(&out[..n_cont]);
        // Three passes over the row, so that the exponentials (most of the cost) run over
        // the whole categorical block at once, vectorised, not a few per group.
        for range in layout.group_ranges() {
            let max = out[range.clone()]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            for (g, &x) in s[range.clone()].iter_mut().zip(&out[range]) {
                *g = x - max;
            }
        }
        for g in &mut s[n_cont..] {
            *g = gnsm_noise::exp_f32(*g);
        }
        for range in layout.group_ranges() {
            let group = &mut s[range];
            let sum: f32 = group.iter().sum();
            let scale = tau * group.len() as f32 / sum;
            for g in group.iter_mut() {
                *g = *g * scale - tau;
            }
        }
    }
    Ok(())
}
