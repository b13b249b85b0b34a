//! In-place fused CPU kernels for the optimizer and the EMA (candle `InplaceOp`s): one pass
//! over each buffer instead of a chain of tensor ops that allocates several full-size
//! temporaries per parameter per step (candle's optimizers do the latter).

use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, InplaceOp3, Layout, Result, Tensor};
use rayon::prelude::*;

/// `m ← β·m + (1-β)·(scale·g)` or, with `square`, `v ← β·v + (1-β)·(scale·g)²`.
pub(crate) struct Moment {
    pub beta: f32,
    pub scale: f32,
    pub square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let g = super::f32_input(s2, l2, self.name())?;
        let m = super::f32_input_mut(s1, l1, self.name())?;
        if m.len() != g.len() {
            candle_core::bail!("adamw-moment: length mismatch {} vs {}", m.len(), g.len());
        }
        par_update(m, g, |m, g| self.apply(m, g));
        Ok(())
    }
}

impl Moment {
    fn apply(&self, m: &mut [f32], g: &[f32]) {
        let (beta, one_minus) = (self.beta, 1.0 - self.beta);
        if self.square {
            for (m, &g) in m.iter_mut().zip(g) {
                let g = g * self.scale;
                *m = beta * *m + one_minus * g * g;
            }
        } else {
            for (m, &g) in m.iter_mut().zip(g) {
                *m = beta * *m + one_minus * (g * self.scale);
            }
        }
    }
}

/// [`Moment`] with the gradient in a host slice (the fused CPU training step's buffers).
pub(crate) struct HostMoment<'a> {
    pub grad: &'a [f32],
    pub moment: Moment,
}

impl InplaceOp1 for HostMoment<'_> {
    fn name(&self) -> &'static str {
        "adamw-moment-host"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        let m = super::f32_input_mut(s, l, self.name())?;
        if m.len() != self.grad.len() {
            candle_core::bail!(
                "adamw-moment-host: length mismatch {} vs {}",
                m.len(),
                self.grad.len()
            );
        }
        par_update(m, self.grad, |m, g| self.moment.apply(m, g));
        Ok(())
    }
}

/// `p ← p·(1 - lr·wd) - lr·(m/b₁)/(√(v/b₂) + ε)`.
pub(crate) struct AdamWApply {
    pub lr: f32,
    pub decay: f32,
    pub inv_bias1: f32,
    pub inv_bias2: f32,
    pub eps: f32,
}

impl InplaceOp3 for AdamWApply {
    fn name(&self) -> &'static str {
        "adamw-apply"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let m = super::f32_input(s2, l2, self.name())?;
        let v = super::f32_input(s3, l3, self.name())?;
        let p = super::f32_input_mut(s1, l1, self.name())?;
        if p.len() != m.len() || p.len() != v.len() {
            candle_core::bail!("adamw-apply: length mismatch");
        }
        let keep = 1.0 - self.lr * self.decay;
        let apply = |p: &mut [f32], m: &[f32], v: &[f32]| {
            for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
                *p = *p * keep
                    - self.lr * (m * self.inv_bias1) / ((v * self.inv_bias2).sqrt() + self.eps);
            }
        };
        if p.len() < 2 * CHUNK {
            apply(p, m, v);
        } else {
            p.par_chunks_mut(CHUNK)
                .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
                .for_each(|(p, (m, v))| apply(p, m, v));
        }
        Ok(())
    }
}

/// `e ← d·e + (1-d)·p`.
pub(crate) struct EmaUpdate {
    pub decay: f32,
}

impl InplaceOp2 for EmaUpdate {
    fn name(&self) -> &'static str {
        "ema-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let p = super::f32_input(s2, l2, self.name())?;
        let e = super::f32_input_mut(s1, l1, self.name())?;
        if e.len() != p.len() {
            candle_core::bail!("ema-update: length mismatch");
        }
        let (d, one_minus) = (self.decay, 1.0 - self.decay);
        par_update(e, p, |e, p| {
            for (e, &p) in e.iter_mut().zip(p) {
                *e = d * *e + one_minus * p;
            }
        });
        Ok(())
    }
}

/// Elements per parallel task of the updates: tensors under two chunks (biases, norms, the
/// small layers) update serially.
const CHUNK: usize = 1 << 14;

/// `f(dst_chunk, src_chunk)` over matching chunks, in parallel for large tensors. Each
/// element's update is the same either way.
fn par_update(dst: &mut [f32], src: &[f32], f: impl Fn(&mut [f32], &[f32]) + Sync) {
    if dst.len() < 2 * CHUNK {
        f(dst, src);
    } else {
        dst.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(d, s)| f(d, s));
    }
}

/// Whether the fused kernels apply: CPU, f32, contiguous.
pub(crate) fn fusable(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == candle_core::DType::F32 && t.is_contiguous())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Values in [-1, 1) from an index, so the expected updates can be written out.
    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.5 - 1.0)
            .collect()
    }

    #[test]
    fn updates_of_large_tensors_equal_the_formulas_element_by_element() {
        // 3 × CHUNK + 5 elements: the parallel chunks and a ragged last one.
        let n = 3 * CHUNK + 5;
        let (p0, g, m0, v0) = (values(n, 1), values(n, 2), values(n, 3), values(n, 4));
        let v0: Vec<f32> = v0.iter().map(|v| v.abs()).collect();
        let t = |x: &[f32]| Tensor::from_slice(x, n, &Device::Cpu).unwrap();
        let host = |x: &Tensor| x.to_vec1::<f32>().unwrap();

        let (m, v) = (t(&m0), t(&v0));
        let moment = |beta: f32, square| HostMoment {
            grad: &g,
            moment: Moment {
                beta,
                scale: 0.5,
                square,
            },
        };
        m.inplace_op1(&moment(0.9, false)).unwrap();
        v.inplace_op1(&moment(0.999, true)).unwrap();
        let m1: Vec<f32> = m0
            .iter()
            .zip(&g)
            .map(|(&m, &g)| 0.9 * m + (1.0 - 0.9) * (g * 0.5))
            .collect();
        let v1: Vec<f32> = v0
            .iter()
            .zip(&g)
            .map(|(&v, &g)| {
                let g = g * 0.5;
                0.999 * v + (1.0 - 0.999) * g * g
            })
            .collect();
        assert_eq!(host(&m), m1);
        assert_eq!(host(&v), v1);

        let p = t(&p0);
        let apply = AdamWApply {
            lr: 1e-3,
            decay: 1e-4,
            inv_bias1: 10.0,
            inv_bias2: 1000.0,
            eps: 1e-8,
        };
        p.inplace_op3(&m, &v, &apply).unwrap();
        let keep = 1.0 - 1e-3f32 * 1e-4;
        let p1: Vec<f32> = p0
            .iter()
            .zip(m1.iter().zip(&v1))
            .map(|(&p, (&m, &v))| p * keep - 1e-3 * (m * 10.0) / ((v * 1000.0f32).sqrt() + 1e-8))
            .collect();
        assert_eq!(host(&p), p1);

        let e = t(&v0);
        e.inplace_op2(&p, &EmaUpdate { decay: 0.999 }).unwrap();
        let e1: Vec<f32> = v0
            .iter()
            .zip(&p1)
            .map(|(&e, &p)| 0.999 * e + (1.0 - 0.999) * p)
            .collect();
        assert_eq!(host(&e), e1);
    }
}
