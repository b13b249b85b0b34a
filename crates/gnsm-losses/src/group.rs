use candle_core::{DType, Device, Tensor, D};
use gnsm_noise::FeatureLayout;
use serde::{Deserialize, Serialize};

use crate::LossError;

/// The logit added to padding slots of the padded layout: `exp` of it underflows to exactly
/// zero, so padding never takes probability mass or gradient.
pub const PAD_LOGIT: f64 = -1e9;

/// How [`GroupSoftmax`] computes a softmax per categorical group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupStrategy {
    /// Gather the groups into one (B, groups, K_max) block (padding masked with
    /// [`PAD_LOGIT`]) and take one softmax over the last axis: a fixed handful of ops
    /// whatever the number of groups, but candle's CPU `index_select` and its `index_add`
    /// backward make it 3.7× slower than [`GroupStrategy::Narrow`] on census
    /// (`crates/gnsm-losses/benches/losses.rs`).
    Padded,
    /// Narrow out each group and take its softmax: no padding, ~6 ops per group. The
    /// fastest on CPU, hence the default.
    #[default]
    Narrow,
}

/// Softmax, log-softmax and scores per categorical group of a [`FeatureLayout`], with a
/// correct backward (no `scatter_add`, no `softmax_last_dim`).
///
/// Results of [`GroupSoftmax::log_softmax`] come in the strategy's *native* layout:
/// (B, groups, K_max) for [`GroupStrategy::Padded`], (B, categorical width) for
/// [`GroupStrategy::Narrow`]; the losses arrange host-side targets in the same layout.
#[derive(Debug, Clone)]
pub struct GroupSoftmax {
    layout: FeatureLayout,
    strategy: GroupStrategy,
    device: Device,
    padded: Option<Padded>,
}

#[derive(Debug, Clone)]
struct Padded {
    k_max: usize,
    /// (groups·K_max,) column of the categorical block feeding each padded slot.
    gather: Tensor,
    /// The same columns counted from the start of a full row (continuous block included),
    /// so that a network output can be gathered without a copy of its categorical part.
    gather_row: Tensor,
    /// (categorical width,) padded slot of each categorical column.
    unpad: Tensor,
    /// (1, groups, K_max) f32: 0 for real slots, PAD_LOGIT for padding.
    mask: Tensor,
    /// (1, groups, 1) f32: K_g.
    sizes: Tensor,
}

/// log-softmax over the last axis. The subtracted maximum is detached: the result does not
/// depend on it, and its backward would only add work.
fn log_softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

impl GroupSoftmax {
    /// Precompute the index tensors of `layout` on `device`.
    ///
    /// # Errors
    /// A candle error if the tensors cannot be built on `device`.
    pub fn new(
        layout: &FeatureLayout,
        strategy: GroupStrategy,
        device: &Device,
    ) -> Result<Self, LossError> {
        let padded = match strategy {
            GroupStrategy::Narrow => None,
            GroupStrategy::Padded if layout.n_groups() == 0 => None,
            GroupStrategy::Padded => {
                let k_max = layout.max_group_size();
                let g = layout.n_groups();
                let base = layout.continuous();
                let mut gather = Vec::with_capacity(g * k_max);
                let mut mask = Vec::with_capacity(g * k_max);
                let mut unpad = Vec::with_capacity(layout.categorical_width());
                for (group, range) in layout.group_ranges().enumerate() {
                    let start = (range.start - base) as u32;
                    for j in 0..k_max {
                        if j < range.len() {
                            gather.push(start + j as u32);
                            mask.push(0f32);
                            unpad.push((group * k_max + j) as u32);
                        } else {
                            // Any real column will do: the mask zeroes its probability.
                            gather.push(start);
                            mask.push(PAD_LOGIT as f32);
                        }
                    }
                }
                let sizes: Vec<f32> = layout.groups().iter().map(|&k| k as f32).collect();
                let gather_row: Vec<u32> = gather.iter().map(|&c| c + base as u32).collect();
                Some(Padded {
                    k_max,
                    gather: Tensor::from_vec(gather, g * k_max, device)?,
                    gather_row: Tensor::from_vec(gather_row, g * k_max, device)?,
                    unpad: Tensor::from_vec(unpad, layout.categorical_width(), device)?,
                    mask: Tensor::from_vec(mask, (1, g, k_max), device)?,
                    sizes: Tensor::from_vec(sizes, (1, g, 1), device)?,
                })
            }
        };
        Ok(Self {
            layout: layout.clone(),
            strategy,
            device: device.clone(),
            padded,
        })
    }

    /// The layout this softmax works on.
    pub fn layout(&self) -> &FeatureLayout {
        &self.layout
    }

    /// The strategy in use.
    pub fn strategy(&self) -> GroupStrategy {
        self.strategy
    }

    /// The device of the index tensors.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Shape of the native layout for `rows` rows.
    pub(crate) fn native_dims(&self, rows: usize) -> Vec<usize> {
        match &self.padded {
            Some(p) => vec![rows, self.layout.n_groups(), p.k_max],
            None => vec![rows, self.layout.categorical_width()],
        }
    }

    /// Arrange host values given per categorical column, (rows × categorical width)
    /// row-major, in the native layout, with `fill` in padding slots.
    ///
    /// # Errors
    /// [`LossError::Shape`] when `flat` is not rows × categorical width.
    pub(crate) fn arrange_host(
        &self,
        flat: &[f32],
        rows: usize,
        fill: f32,
    ) -> Result<Vec<f32>, LossError> {
        let cw = self.layout.categorical_width();
        if flat.len() != rows * cw {
            return Err(LossError::Shape {
                what: "host values (rows × categorical width)",
                expected: vec![rows, cw],
                got: vec![flat.len()],
            });
        }
        let Some(p) = &self.padded else {
            return Ok(flat.to_vec());
        };
        let g = self.layout.n_groups();
        let base = self.layout.continuous();
        let mut out = vec![fill; rows * g * p.k_max];
        for (row_in, row_out) in flat.chunks_exact(cw).zip(out.chunks_exact_mut(g * p.k_max)) {
            for (group, range) in self.layout.group_ranges().enumerate() {
                let src = &row_in[range.start - base..range.end - base];
                row_out[group * p.k_max..group * p.k_max + src.len()].copy_from_slice(src);
            }
        }
        Ok(out)
    }

    fn check_logits(&self, logits: &Tensor) -> Result<usize, LossError> {
        let cw = self.layout.categorical_width();
        match logits.dims() {
            &[rows, w] if w == cw => Ok(rows),
            dims => Err(LossError::Shape {
                what: "categorical logits",
                expected: vec![dims.first().copied().unwrap_or(0), cw],
                got: dims.to_vec(),
            }),
        }
    }

    /// Per-group log-softmax of categorical logits (B, categorical width), in the native
    /// layout. Padding slots hold about [`PAD_LOGIT`].
    ///
    /// # Errors
    /// [`LossError::Shape`] for logits of the wrong width, or a candle error.
    pub fn log_softmax(&self, logits: &Tensor) -> Result<Tensor, LossError> {
        self.check_logits(logits)?;
        self.log_softmax_from(logits, 0)
    }

    /// As [`GroupSoftmax::log_softmax`], from a full network output (B, width) whose
    /// categorical block starts after the continuous features.
    ///
    /// # Errors
    /// [`LossError::Shape`] for an output of the wrong width, or a candle error.
    pub(crate) fn log_softmax_output(&self, output: &Tensor) -> Result<Tensor, LossError> {
        self.check_output(output)?;
        self.log_softmax_from(output, self.layout.continuous())
    }

    /// The group log-softmax of `x`, whose categorical block starts at column `base`
    /// (0 or the continuous width).
    fn log_softmax_from(&self, x: &Tensor, base: usize) -> Result<Tensor, LossError> {
        let rows = x.dim(0)?;
        match &self.padded {
            Some(p) => {
                let index = if base == 0 { &p.gather } else { &p.gather_row };
                let g = self.layout.n_groups();
                let gathered = x
                    .contiguous()?
                    .index_select(index, 1)?
                    .reshape((rows, g, p.k_max))?
                    .broadcast_add(&p.mask.to_dtype(x.dtype())?)?;
                Ok(log_softmax_last(&gathered)?)
            }
            None => {
                let parts = self
                    .layout
                    .group_ranges()
                    .map(|r| {
                        log_softmax_last(&x.narrow(
                            1,
                            r.start - self.layout.continuous() + base,
                            r.len(),
                        )?)
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?;
                if parts.is_empty() {
                    return Ok(Tensor::zeros((rows, 0), x.dtype(), x.device())?);
                }
                Ok(Tensor::cat(&parts, 1)?)
            }
        }
    }

    fn check_output(&self, output: &Tensor) -> Result<usize, LossError> {
        let width = self.layout.width();
        match output.dims() {
            &[rows, w] if w == width => Ok(rows),
            dims => Err(LossError::Shape {
                what: "network output",
                expected: vec![dims.first().copied().unwrap_or(0), width],
                got: dims.to_vec(),
            }),
        }
    }

    /// Bring a tensor in the native layout back to (B, categorical width), dropping padding.
    ///
    /// # Errors
    /// A candle error for a tensor that is not in the native layout.
    pub(crate) fn to_flat(&self, native: &Tensor) -> Result<Tensor, LossError> {
        match &self.padded {
            Some(_) if self.layout.n_groups() == 0 => Ok(native.clone()),
            Some(p) => {
                let rows = native.dim(0)?;
                Ok(native
                    .reshape((rows, self.layout.n_groups() * p.k_max))?
                    .index_select(&p.unpad, 1)?)
            }
            None => Ok(native.clone()),
        }
    }

    /// Per-group softmax of categorical logits, (B, categorical width).
    ///
    /// # Errors
    /// As [`GroupSoftmax::log_softmax`].
    pub fn softmax(&self, logits: &Tensor) -> Result<Tensor, LossError> {
        self.to_flat(&self.log_softmax(logits)?.exp()?)
    }

    /// The scores of a network output (B, width) at per-row temperatures (B,): the
    /// continuous block is passed through (the network outputs those scores directly); each
    /// categorical group becomes `-τ + τ·K·softmax(logits)` (paper eq. 4).
    ///
    /// # Errors
    /// [`LossError::Shape`] for a wrong width or temperature count, or a candle error.
    pub fn scores(&self, output: &Tensor, temperatures: &Tensor) -> Result<Tensor, LossError> {
        let rows = self.check_output(output)?;
        if temperatures.dims() != [rows] {
            return Err(LossError::Shape {
                what: "temperatures",
                expected: vec![rows],
                got: temperatures.dims().to_vec(),
            });
        }
        let n_cont = self.layout.continuous();
        if self.layout.n_groups() == 0 {
            return Ok(output.clone());
        }
        let tau = temperatures.to_dtype(output.dtype())?;
        let cat = match &self.padded {
            Some(p) => {
                let tau3 = tau.reshape((rows, 1, 1))?;
                let probs = self.log_softmax_output(output)?.exp()?;
                let scale = tau3.broadcast_mul(&p.sizes.to_dtype(output.dtype())?)?;
                self.to_flat(&probs.broadcast_mul(&scale)?.broadcast_sub(&tau3)?)?
            }
            None => {
                let tau2 = tau.reshape((rows, 1))?;
                let probs = self.log_softmax_output(output)?.exp()?;
                let base = n_cont;
                let parts = self
                    .layout
                    .group_ranges()
                    .map(|r| {
                        let k = r.len() as f64;
                        (probs.narrow(1, r.start - base, r.len())? * k)?
                            .broadcast_mul(&tau2)?
                            .broadcast_sub(&tau2)
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Tensor::cat(&parts, 1)?
            }
        };
        if n_cont == 0 {
            Ok(cat)
        } else {
            Ok(Tensor::cat(&[&output.narrow(1, 0, n_cont)?, &cat], 1)?)
        }
    }

    /// Zeros of `dtype` on this device with the native layout of `rows` rows: handy for
    /// targets of a batch with no categorical groups.
    pub(crate) fn native_zeros(&self, rows: usize, dtype: DType) -> candle_core::Result<Tensor> {
        Tensor::zeros(self.native_dims(rows), dtype, &self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> FeatureLayout {
        FeatureLayout::new(2, vec![2, 3]).unwrap()
    }

    #[test]
    fn softmax_per_group_by_hand() {
        // Group 0 logits (0, ln 3) → (0.25, 0.75); group 1 (ln 1, ln 2, ln 5) → (.125, .25, .625).
        let logits = Tensor::new(
            &[[0f32, 3f32.ln(), 0.0, 2f32.ln(), 5f32.ln()]],
            &Device::Cpu,
        )
        .unwrap();
        for strategy in [GroupStrategy::Padded, GroupStrategy::Narrow] {
            let gs = GroupSoftmax::new(&layout(), strategy, &Device::Cpu).unwrap();
            let p: Vec<f32> = gs
                .softmax(&logits)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let expected = [0.25, 0.75, 0.125, 0.25, 0.625];
            for (a, b) in p.iter().zip(expected) {
                assert!((a - b).abs() < 1e-6, "{strategy:?}: {p:?}");
            }
        }
    }

    #[test]
    fn scores_by_hand() {
        // τ = 2: group 0 → -2 + 4·(0.25, 0.75) = (-1, 1); group 1 → -2 + 6·(.125, .25, .625)
        // = (-1.25, -0.5, 1.75). The continuous block passes through.
        let out = Tensor::new(
            &[[0.5f32, -0.5, 0.0, 3f32.ln(), 0.0, 2f32.ln(), 5f32.ln()]],
            &Device::Cpu,
        )
        .unwrap();
        let tau = Tensor::new(&[2f32], &Device::Cpu).unwrap();
        for strategy in [GroupStrategy::Padded, GroupStrategy::Narrow] {
            let gs = GroupSoftmax::new(&layout(), strategy, &Device::Cpu).unwrap();
            let s: Vec<f32> = gs
                .scores(&out, &tau)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let expected = [0.5, -0.5, -1.0, 1.0, -1.25, -0.5, 1.75];
            for (a, b) in s.iter().zip(expected) {
                assert!((a - b).abs() < 1e-5, "{strategy:?}: {s:?}");
            }
        }
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let gs = GroupSoftmax::new(&layout(), GroupStrategy::Padded, &Device::Cpu).unwrap();
        let bad = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(gs.log_softmax(&bad), Err(LossError::Shape { .. })));
        let out = Tensor::zeros((3, 7), DType::F32, &Device::Cpu).unwrap();
        let tau = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(
            gs.scores(&out, &tau),
            Err(LossError::Shape { .. })
        ));
        assert!(gs.arrange_host(&[0.0; 4], 1, 0.0).is_err());
    }

    #[test]
    fn arrange_host_pads() {
        let gs = GroupSoftmax::new(&layout(), GroupStrategy::Padded, &Device::Cpu).unwrap();
        let arranged = gs
            .arrange_host(&[1.0, 2.0, 3.0, 4.0, 5.0], 1, -7.0)
            .unwrap();
        assert_eq!(arranged, vec![1.0, 2.0, -7.0, 3.0, 4.0, 5.0]);
        assert_eq!(gs.native_dims(4), vec![4, 2, 3]);
    }
}
