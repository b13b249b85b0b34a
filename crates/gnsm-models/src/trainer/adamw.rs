use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::cpu::inplace::{fusable, AdamWApply, HostMoment, Moment};
use crate::ModelError;

/// AdamW (decoupled weight decay, PyTorch's update) whose moments are plain tensors that a
/// checkpoint can save and restore — candle's optimizer state is not serialisable.
#[derive(Debug)]
pub struct AdamW {
    params: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: usize,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl AdamW {
    /// An optimizer over `params` (name, variable), moments at zero.
    ///
    /// # Errors
    /// A candle error.
    pub fn new(
        params: Vec<(String, Var)>,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    ) -> Result<Self, ModelError> {
        let m = params
            .iter()
            .map(|(_, p)| p.as_tensor().zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        // Separate buffers: the fused update writes into each in place.
        let v = params
            .iter()
            .map(|(_, p)| p.as_tensor().zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            params,
            m,
            v,
            t: 0,
            beta1,
            beta2,
            eps,
            weight_decay,
        })
    }

    /// Updates taken so far.
    pub fn steps_taken(&self) -> usize {
        self.t
    }

    /// The factor that clips gradients of global norm `norm` to at most `max` (`None`: no
    /// clipping), to pass to [`AdamW::step`].
    ///
    /// ```
    /// use gnsm_models::AdamW;
    /// assert_eq!(AdamW::clip_scale(0.5, Some(1.0)), 1.0);
    /// assert!((AdamW::clip_scale(4.0, Some(1.0)) - 0.25).abs() < 1e-6);
    /// assert_eq!(AdamW::clip_scale(4.0, None), 1.0);
    /// ```
    pub fn clip_scale(norm: f64, max: Option<f64>) -> f64 {
        match max {
            Some(max) if norm > max => max / (norm + 1e-6),
            _ => 1.0,
        }
    }

    /// The global L2 norm of the gradients of the parameters (missing gradients count 0).
    ///
    /// # Errors
    /// A candle error.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64, ModelError> {
        let mut total = 0f64;
        for (_, p) in &self.params {
            if let Some(g) = grads.get(p.as_tensor()) {
                total += g
                    .sqr()?
                    .sum_all()?
                    .to_dtype(candle_core::DType::F64)?
                    .to_scalar::<f64>()?;
            }
        }
        Ok(total.sqrt())
    }

    /// One update with learning rate `lr`, gradients scaled by `scale` (for clipping).
    ///
    /// # Errors
    /// A candle error.
    pub fn step(&mut self, grads: &GradStore, lr: f64, scale: f64) -> Result<(), ModelError> {
        let (bias1, bias2) = self.next_bias_corrections();
        for (i, (_, p)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p.as_tensor()) else {
                continue;
            };
            let g = &g.contiguous()?;
            if fusable(&[p.as_tensor(), g, &self.m[i], &self.v[i]]) {
                // One pass per buffer, no temporaries (the arithmetic below, in f32).
                let moment = |beta: f64, square| Moment {
                    beta: beta as f32,
                    scale: scale as f32,
                    square,
                };
                self.m[i].inplace_op2(g, &moment(self.beta1, false))?;
                self.v[i].inplace_op2(g, &moment(self.beta2, true))?;
                p.as_tensor()
                    .inplace_op3(&self.m[i], &self.v[i], &self.apply(lr, bias1, bias2))?;
                continue;
            }
            let g = if scale == 1.0 {
                g.clone()
            } else {
                (g * scale)?
            };
            let m = ((&self.m[i] * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
            let v = ((&self.v[i] * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let update = (&m / bias1)?.div(&(((&v / bias2)?.sqrt()? + self.eps)?))?;
            let decayed = (p.as_tensor() * (1.0 - lr * self.weight_decay))?;
            p.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// Count one more update and return its bias corrections `1 - β₁ᵗ`, `1 - β₂ᵗ`.
    fn next_bias_corrections(&mut self) -> (f64, f64) {
        self.t += 1;
        let t = self.t as i32;
        (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t))
    }

    /// The fused parameter update for this step.
    fn apply(&self, lr: f64, bias1: f64, bias2: f64) -> AdamWApply {
        AdamWApply {
            lr: lr as f32,
            decay: self.weight_decay as f32,
            inv_bias1: (1.0 / bias1) as f32,
            inv_bias2: (1.0 / bias2) as f32,
            eps: self.eps as f32,
        }
    }

    /// Global L2 norm of host gradients (one buffer per parameter, in parameter order).
    pub(crate) fn host_grad_norm(grads: &[Vec<f32>]) -> f64 {
        grads
            .iter()
            .flatten()
            .map(|&g| f64::from(g) * f64::from(g))
            .sum::<f64>()
            .sqrt()
    }

    /// [`AdamW::step`] with the gradients in host buffers named `names` (the parameters'
    /// names, in the same order): the fused CPU training step's path.
    ///
    /// # Errors
    /// [`ModelError::Shape`] when the names or sizes differ from the parameters, or a candle
    /// error.
    pub(crate) fn step_host(
        &mut self,
        names: &[String],
        grads: &[Vec<f32>],
        lr: f64,
        scale: f64,
    ) -> Result<(), ModelError> {
        let same = names.len() == self.params.len()
            && grads.len() == self.params.len()
            && self
                .params
                .iter()
                .zip(names.iter().zip(grads))
                .all(|((n, p), (m, g))| n == m && p.elem_count() == g.len());
        if !same {
            return Err(ModelError::Shape {
                what: "host gradients",
                expected: format!("{} buffers matching the parameters", self.params.len()),
                got: format!("{} buffers", grads.len()),
            });
        }
        let (bias1, bias2) = self.next_bias_corrections();
        for (i, ((_, p), g)) in self.params.iter().zip(grads).enumerate() {
            let moment = |beta: f64, square| HostMoment {
                grad: g,
                moment: Moment {
                    beta: beta as f32,
                    scale: scale as f32,
                    square,
                },
            };
            self.m[i].inplace_op1(&moment(self.beta1, false))?;
            self.v[i].inplace_op1(&moment(self.beta2, true))?;
            p.as_tensor()
                .inplace_op3(&self.m[i], &self.v[i], &self.apply(lr, bias1, bias2))?;
        }
        Ok(())
    }

    /// The moments as named tensors (`adam_m/NAME`, `adam_v/NAME`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("adam_m/{name}"), self.m[i].clone()));
            out.push((format!("adam_v/{name}"), self.v[i].clone()));
        }
        out
    }

    /// Restore moments and the update count.
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] when a moment is missing or mis-shaped.
    pub fn restore(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        t: usize,
        path: &str,
    ) -> Result<(), ModelError> {
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (prefix, slot) in [("adam_m", &mut self.m[i]), ("adam_v", &mut self.v[i])] {
                let key = format!("{prefix}/{name}");
                let src = tensors.get(&key).ok_or_else(|| ModelError::Checkpoint {
                    path: path.into(),
                    reason: format!("missing optimizer tensor {key}"),
                })?;
                if src.dims() != p.dims() {
                    return Err(ModelError::Checkpoint {
                        path: path.into(),
                        reason: format!("optimizer tensor {key} has shape {:?}", src.dims()),
                    });
                }
                // A private copy: the fused update writes into it in place.
                *slot = src.to_device(p.device())?.copy()?;
            }
        }
        self.t = t;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The (fused, on CPU) update against PyTorch's AdamW written out in f64 on the host.
    #[test]
    fn matches_a_host_adamw() {
        let init = [0.5f32, -1.0, 2.0, 0.25, -0.75, 1.5];
        let coef = [1.0f32, -2.0, 0.5, 3.0, -0.1, 0.0];
        let p = Var::from_tensor(&Tensor::new(&init, &Device::Cpu).unwrap()).unwrap();
        let c = Tensor::new(&coef, &Device::Cpu).unwrap();
        let (b1, b2, eps, wd, lr) = (0.9, 0.999, 1e-8, 0.01, 0.1);
        let mut opt = AdamW::new(vec![("p".into(), p.clone())], b1, b2, eps, wd).unwrap();
        let mut host: Vec<f64> = init.iter().map(|&v| f64::from(v)).collect();
        let (mut m, mut v) = (vec![0.0f64; 6], vec![0.0f64; 6]);
        for t in 1..=5 {
            // loss = Σ c·p² → g = 2·c·p; gradients scaled by 0.5 as a clip would.
            let loss = p
                .as_tensor()
                .sqr()
                .unwrap()
                .mul(&c)
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&grads, lr, 0.5).unwrap();
            for i in 0..6 {
                let g = 0.5 * 2.0 * f64::from(coef[i]) * host[i];
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let mh = m[i] / (1.0 - b1.powi(t));
                let vh = v[i] / (1.0 - b2.powi(t));
                host[i] = host[i] * (1.0 - lr * wd) - lr * mh / (vh.sqrt() + eps);
            }
        }
        let got: Vec<f32> = p.as_tensor().to_vec1().unwrap();
        for (a, b) in got.iter().zip(&host) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert_eq!(opt.steps_taken(), 5);
    }
}
