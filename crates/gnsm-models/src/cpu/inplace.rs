//! In-place fused CPU kernels for the optimizer and the EMA (candle `InplaceOp`s): one pass
//! over each buffer instead of a chain of tensor ops that allocates several full-size
//! temporaries per parameter per step (candle's optimizers do the latter).

use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, InplaceOp3, Layout, Result, Tensor};

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
        self.apply(m, g);
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
        self.moment.apply(m, self.grad);
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
        for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
            *p = *p * keep
                - self.lr * (m * self.inv_bias1) / ((v * self.inv_bias2).sqrt() + self.eps);
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
        for (e, &p) in e.iter_mut().zip(p) {
            *e = d * *e + one_minus * p;
        }
        Ok(())
    }
}

/// Whether the fused kernels apply: CPU, f32, contiguous.
pub(crate) fn fusable(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == candle_core::DType::F32 && t.is_contiguous())
}
