use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

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
        let v = m.clone();
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
        self.t += 1;
        let t = self.t as i32;
        let bias1 = 1.0 - self.beta1.powi(t);
        let bias2 = 1.0 - self.beta2.powi(t);
        for (i, (_, p)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p.as_tensor()) else {
                continue;
            };
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
                *slot = src.to_device(p.device())?;
            }
        }
        self.t = t;
        Ok(())
    }
}
