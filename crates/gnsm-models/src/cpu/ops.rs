//! Fused CPU kernels with their own backward: LayerNorm over the last axis and the exact
//! (erf) GELU. candle builds both from a chain of tensor ops — nine for LayerNorm forward,
//! about twenty for its backward, a dozen for GELU's backward — each allocating a full-size
//! temporary; on the small shapes GNSM trains on CPU that chain, not the matmuls, dominates a
//! step. Other devices keep the op-level versions.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::row_stats;

/// Rows per rayon task here: the LayerNorm backward sums its gain and shift gradients over
/// blocks of this many rows, so changing it changes the float summation order (and the
/// bits of every result). The element-wise passes elsewhere use `super::ROWS_PER_TASK`.
const LAYER_NORM_ROWS_PER_TASK: usize = 32;

/// `0.5·x·(1 + erf(x/√2))`.
#[inline]
pub(crate) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `d gelu / dx = Φ(x) + x·φ(x)`.
#[inline]
pub(crate) fn gelu_grad(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2));
    cdf + x * INV_SQRT_2PI * (-0.5 * x * x).exp()
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = super::f32_input(s, l, self.name())?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(4096)
            .zip(x.par_chunks(4096))
            .for_each(|(o, x)| o.iter_mut().zip(x).for_each(|(o, &v)| *o = gelu(v)));
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(&grad, &GeluBackward)?))
    }
}

struct GeluBackward;

impl candle_core::CustomOp2 for GeluBackward {
    fn name(&self) -> &'static str {
        "fused-gelu-erf-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = super::f32_input(s1, l1, self.name())?;
        let g = super::f32_input(s2, l2, self.name())?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(4096)
            .zip(x.par_chunks(4096).zip(g.par_chunks(4096)))
            .for_each(|(o, (x, g))| {
                for ((o, &x), &g) in o.iter_mut().zip(x).zip(g) {
                    *o = g * gelu_grad(x);
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Exact GELU; fused on CPU (f32), candle's `gelu_erf` elsewhere.
///
/// # Errors
/// A candle error.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?.apply_op1(Gelu)
    } else {
        x.gelu_erf()
    }
}

/// LayerNorm of (rows, D) with weight and bias (D,).
struct LayerNormOp {
    eps: f32,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = super::f32_input(s1, l1, self.name())?;
        let w = super::f32_input(s2, l2, self.name())?;
        let b = super::f32_input(s3, l3, self.name())?;
        let d = w.len();
        if d == 0 || b.len() != d || x.len() % d != 0 {
            candle_core::bail!("fused-layer-norm: shapes {:?} {:?}", l1.shape(), l2.shape());
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(d * LAYER_NORM_ROWS_PER_TASK)
            .zip(x.par_chunks(d * LAYER_NORM_ROWS_PER_TASK))
            .for_each(|(o, x)| {
                for (o, x) in o.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                    let (mean, rstd) = row_stats(x, self.eps);
                    for j in 0..d {
                        o[j] = (x[j] - mean) * rstd * w[j] + b[j];
                    }
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = weight.dim(0)?;
        let rows = x.elem_count() / d;
        let grad = grad_res.contiguous()?;
        // One pass: rows of dx, then the weight and bias gradients, packed.
        let packed = x.apply_op3_no_bwd(weight, &grad, &LayerNormBackward { eps: self.eps })?;
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dw = packed.narrow(0, rows, 1)?.reshape(d)?;
        let db = packed.narrow(0, rows + 1, 1)?.reshape(d)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

struct LayerNormBackward {
    eps: f32,
}

impl CustomOp3 for LayerNormBackward {
    fn name(&self) -> &'static str {
        "fused-layer-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = super::f32_input(s1, l1, self.name())?;
        let w = super::f32_input(s2, l2, self.name())?;
        let g = super::f32_input(s3, l3, self.name())?;
        let d = w.len();
        let rows = x.len() / d;
        let mut out = vec![0f32; (rows + 2) * d];
        let (dx, sums) = out.split_at_mut(rows * d);
        let partial = dx
            .par_chunks_mut(d * LAYER_NORM_ROWS_PER_TASK)
            .zip(
                x.par_chunks(d * LAYER_NORM_ROWS_PER_TASK)
                    .zip(g.par_chunks(d * LAYER_NORM_ROWS_PER_TASK)),
            )
            .map(|(dx, (x, g))| {
                let mut dw = vec![0f32; d];
                let mut db = vec![0f32; d];
                let mut xhat = vec![0f32; d];
                for ((dx, x), g) in dx
                    .chunks_exact_mut(d)
                    .zip(x.chunks_exact(d))
                    .zip(g.chunks_exact(d))
                {
                    let (mean, rstd) = row_stats(x, self.eps);
                    let (mut mean_gw, mut mean_gw_xhat) = (0f32, 0f32);
                    for j in 0..d {
                        xhat[j] = (x[j] - mean) * rstd;
                        let gw = g[j] * w[j];
                        mean_gw += gw;
                        mean_gw_xhat += gw * xhat[j];
                        dw[j] += g[j] * xhat[j];
                        db[j] += g[j];
                    }
                    mean_gw /= d as f32;
                    mean_gw_xhat /= d as f32;
                    for j in 0..d {
                        dx[j] = rstd * (g[j] * w[j] - mean_gw - xhat[j] * mean_gw_xhat);
                    }
                }
                (dw, db)
            })
            .reduce(
                || (vec![0f32; d], vec![0f32; d]),
                |mut a, b| {
                    a.0.iter_mut().zip(&b.0).for_each(|(x, y)| *x += y);
                    a.1.iter_mut().zip(&b.1).for_each(|(x, y)| *x += y);
                    a
                },
            );
        sums[..d].copy_from_slice(&partial.0);
        sums[d..].copy_from_slice(&partial.1);
        Ok((CpuStorage::F32(out), Shape::from((rows + 2, d))))
    }
}

/// LayerNorm over the last axis; fused on CPU (f32), `None` elsewhere so the caller falls
/// back to tensor ops.
///
/// # Errors
/// A candle error.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Option<Tensor>> {
    if !(x.device().is_cpu() && x.dtype() == candle_core::DType::F32) {
        return Ok(None);
    }
    x.contiguous()?
        .apply_op3(weight, bias, LayerNormOp { eps: eps as f32 })
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn op_level_layer_norm(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
        let mean = x.mean_keepdim(D::Minus1).unwrap();
        let c = x.broadcast_sub(&mean).unwrap();
        let var = c.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        c.broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(w)
            .unwrap()
            .broadcast_add(b)
            .unwrap()
    }

    fn values(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * scale)
            .collect()
    }

    fn assert_close(a: &Tensor, b: &Tensor, tol: f32) {
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "entry {i}: {x} vs {y}"
            );
        }
    }

    #[test]
    fn fused_layer_norm_matches_the_op_level_one_with_gradients() {
        let dev = Device::Cpu;
        let (rows, d) = (70, 9);
        let x = Var::from_vec(values(rows * d, 3.0), (rows, d), &dev).unwrap();
        let w = Var::from_vec(values(d, 1.5), d, &dev).unwrap();
        let b = Var::from_vec(values(d, 0.5), d, &dev).unwrap();
        let probe = Tensor::from_vec(values(rows * d, 2.0), (rows, d), &dev).unwrap();
        let fused = layer_norm(&x, &w, &b, 1e-5).unwrap().unwrap();
        let plain = op_level_layer_norm(&x, &w, &b);
        assert_close(&fused, &plain, 1e-5);
        let gf = (fused * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gp = (plain * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&x, &w, &b] {
            assert_close(gf.get(v).unwrap(), gp.get(v).unwrap(), 1e-4);
        }
    }

    #[test]
    fn fused_gelu_matches_candle_and_the_exact_derivative() {
        let dev = Device::Cpu;
        let x = Var::from_vec(values(5000, 4.0), 5000, &dev).unwrap();
        let fused = gelu_erf(&x).unwrap();
        assert_close(&fused, &x.gelu_erf().unwrap(), 1e-6);
        let g = fused.sum_all().unwrap().backward().unwrap();
        let got: Vec<f32> = g.get(&x).unwrap().to_vec1().unwrap();
        // Central differences of the f64 GELU.
        let f = |v: f64| 0.5 * v * (1.0 + candle_core::cpu::erf::erf_f64(v / 2f64.sqrt()));
        for (i, &v) in values(5000, 4.0).iter().enumerate().step_by(97) {
            let h = 1e-5;
            let fd = (f(f64::from(v) + h) - f(f64::from(v) - h)) / (2.0 * h);
            assert!(
                (f64::from(got[i]) - fd).abs() < 1e-5,
                "x = {v}: {} vs {fd}",
                got[i]
            );
        }
    }
}
