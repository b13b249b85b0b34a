//! GroupNorm over (N, C, spatial…) with a per-channel gain and shift, optionally followed by
//! SiLU, as one CPU custom op with its own one-pass backward.
//!
//! Why: candle builds GroupNorm from a reshape, two reductions, three broadcasts and a
//! division, and SiLU from a few more ops; each allocates a full-size temporary, and their
//! backward chains twice as many. In the conditional UNet's step those chains (candle's
//! strided reductions and copies, and the zeroing of fresh pages) cost about as much as the
//! convolutions (docs/benchmarks.md). Here a (sample, group) block is contiguous, so one task
//! normalises it in place of the chain, and the backward recomputes the normalised values
//! instead of keeping them.
//!
//! Sums run in f32, per block in order; the gain and shift gradients add the blocks' partial
//! sums in block order, so results do not depend on the thread count.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{f32_input, row_stats};

/// Shapes of one GroupNorm application.
#[derive(Debug, Clone, Copy)]
struct Dims {
    /// Channels.
    c: usize,
    /// Groups.
    g: usize,
    /// Spatial elements per channel.
    s: usize,
}

impl Dims {
    fn of(shape: &Shape, groups: usize) -> Result<Self> {
        let d = shape.dims();
        if d.len() < 3 || groups == 0 || d[1] % groups != 0 {
            candle_core::bail!(
                "group-norm: input {d:?} with {groups} groups (rank >= 3, groups divide channels)"
            );
        }
        Ok(Self {
            c: d[1],
            g: groups,
            s: d[2..].iter().product(),
        })
    }

    /// Channels per group.
    fn cpg(&self) -> usize {
        self.c / self.g
    }

    /// Elements in one (sample, group) block.
    fn block(&self) -> usize {
        self.cpg() * self.s
    }
}

#[inline]
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// GroupNorm (+ SiLU) of x with weight and bias (C,).
struct GroupNormOp {
    groups: usize,
    eps: f32,
    silu: bool,
}

impl CustomOp3 for GroupNormOp {
    fn name(&self) -> &'static str {
        "fused-group-norm"
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
        let x = f32_input(s1, l1, self.name())?;
        let w = f32_input(s2, l2, self.name())?;
        let b = f32_input(s3, l3, self.name())?;
        let dims = Dims::of(l1.shape(), self.groups)?;
        if w.len() != dims.c || b.len() != dims.c {
            candle_core::bail!("group-norm: {} channels, weight {}", dims.c, w.len());
        }
        let mut out = vec![0f32; x.len()];
        let (block, s, cpg) = (dims.block(), dims.s, dims.cpg());
        if block > 0 {
            out.par_chunks_mut(block)
                .zip(x.par_chunks(block))
                .enumerate()
                .for_each(|(i, (o, x))| {
                    let (mean, rstd) = row_stats(x, self.eps);
                    let c0 = (i % dims.g) * cpg;
                    for (k, (o, x)) in o.chunks_exact_mut(s).zip(x.chunks_exact(s)).enumerate() {
                        let (scale, shift) = (rstd * w[c0 + k], b[c0 + k]);
                        for (o, &v) in o.iter_mut().zip(x) {
                            let y = (v - mean) * scale + shift;
                            *o = if self.silu { y * sigmoid(y) } else { y };
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = Dims::of(x.shape(), self.groups)?;
        let grad = grad_res.contiguous()?;
        // SiLU's derivative needs the shifted value, so the gain and the shift go in together.
        let affine = Tensor::cat(&[weight, bias], 0)?;
        // One pass: dx (flattened), then the weight and bias gradients, packed.
        let packed = x.flatten_all()?.apply_op3_no_bwd(
            &affine,
            &grad.flatten_all()?,
            &GroupNormBackward {
                dims,
                eps: self.eps,
                silu: self.silu,
            },
        )?;
        let len = x.elem_count();
        let dx = packed.narrow(0, 0, len)?.reshape(x.shape())?;
        let dw = packed.narrow(0, len, dims.c)?;
        let db = packed.narrow(0, len + dims.c, dims.c)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

struct GroupNormBackward {
    dims: Dims,
    eps: f32,
    silu: bool,
}

impl CustomOp3 for GroupNormBackward {
    fn name(&self) -> &'static str {
        "fused-group-norm-backward"
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
        let x = f32_input(s1, l1, self.name())?;
        let affine = f32_input(s2, l2, self.name())?;
        let g = f32_input(s3, l3, self.name())?;
        let dims = self.dims;
        if affine.len() != 2 * dims.c || g.len() != x.len() {
            candle_core::bail!(
                "group-norm backward: {} channels, {} affine",
                dims.c,
                affine.len()
            );
        }
        let (w, b) = affine.split_at(dims.c);
        let (block, s, cpg) = (dims.block(), dims.s, dims.cpg());
        let mut out = vec![0f32; x.len() + 2 * dims.c];
        let (dx, sums) = out.split_at_mut(x.len());
        if block == 0 {
            return Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * dims.c)));
        }
        // Per block: dx, and the block's (Σ g·x̂, Σ g) per channel of its group.
        let partial: Vec<Vec<f32>> = dx
            .par_chunks_mut(block)
            .zip(x.par_chunks(block).zip(g.par_chunks(block)))
            .enumerate()
            .map(|(i, (dx, (x, g)))| {
                let (mean, rstd) = row_stats(x, self.eps);
                let c0 = (i % dims.g) * cpg;
                let mut channel_sums = vec![0f32; 2 * cpg];
                // First pass: the gradient before the norm's affine map (in dx), and the two
                // block means the input gradient needs.
                let (mut mean_gw, mut mean_gw_xhat) = (0f32, 0f32);
                for (k, ((dx, x), g)) in dx
                    .chunks_exact_mut(s)
                    .zip(x.chunks_exact(s))
                    .zip(g.chunks_exact(s))
                    .enumerate()
                {
                    let wk = w[c0 + k];
                    let (mut sum_gx, mut sum_g) = (0f32, 0f32);
                    for ((d, &v), &gv) in dx.iter_mut().zip(x).zip(g) {
                        let xhat = (v - mean) * rstd;
                        let gy = if self.silu {
                            let y = xhat * wk + b[c0 + k];
                            let sig = sigmoid(y);
                            gv * sig * (1.0 + y * (1.0 - sig))
                        } else {
                            gv
                        };
                        sum_gx += gy * xhat;
                        sum_g += gy;
                        let gw = gy * wk;
                        mean_gw += gw;
                        mean_gw_xhat += gw * xhat;
                        *d = gw;
                    }
                    channel_sums[k] = sum_gx;
                    channel_sums[cpg + k] = sum_g;
                }
                let n = block as f32;
                mean_gw /= n;
                mean_gw_xhat /= n;
                for (d, &v) in dx.iter_mut().zip(x) {
                    let xhat = (v - mean) * rstd;
                    *d = rstd * (*d - mean_gw - xhat * mean_gw_xhat);
                }
                channel_sums
            })
            .collect();
        let (dw, db) = sums.split_at_mut(dims.c);
        for (i, p) in partial.iter().enumerate() {
            let c0 = (i % dims.g) * cpg;
            for k in 0..cpg {
                dw[c0 + k] += p[k];
                db[c0 + k] += p[cpg + k];
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * dims.c)))
    }
}

/// GroupNorm of `x` (N, C, spatial…) in `groups` groups with `weight` and `bias` (C,),
/// followed by SiLU when `silu`; fused on CPU (f32), `None` elsewhere so the caller falls
/// back to tensor ops.
///
/// # Errors
/// A candle error for bad shapes.
pub fn group_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Result<Option<Tensor>> {
    if !(x.device().is_cpu() && x.dtype() == candle_core::DType::F32) {
        return Ok(None);
    }
    x.contiguous()?
        .apply_op3(
            &weight.contiguous()?,
            &bias.contiguous()?,
            GroupNormOp {
                groups,
                eps: eps as f32,
                silu,
            },
        )
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module, Var};

    fn values(n: usize, scale: f32, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed) * 37 % 101) as f32 / 50.0 - 1.0) * scale)
            .collect()
    }

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "entry {i}: {x} vs {y}"
            );
        }
    }

    /// candle's GroupNorm (and SiLU) from tensor ops, the reference.
    fn candle_group_norm(x: &Tensor, w: &Tensor, b: &Tensor, groups: usize, silu: bool) -> Tensor {
        let c = w.dim(0).unwrap();
        let norm = candle_nn::GroupNorm::new(w.clone(), b.clone(), c, groups, 1e-6).unwrap();
        let y = norm.forward(x).unwrap();
        if silu {
            y.silu().unwrap()
        } else {
            y
        }
    }

    #[test]
    fn fused_group_norm_matches_candle_with_gradients() {
        let dev = Device::Cpu;
        for (silu, (n, c, h, w, groups)) in [
            (true, (3, 8, 5, 4, 4)),
            (false, (3, 8, 5, 4, 4)),
            (true, (2, 6, 7, 3, 1)),
            (true, (2, 6, 1, 1, 6)),
        ] {
            let len = n * c * h * w;
            let x = Var::from_vec(values(len, 3.0, 1), (n, c, h, w), &dev).unwrap();
            let gain = Var::from_vec(values(c, 1.5, 2), c, &dev).unwrap();
            let shift = Var::from_vec(values(c, 0.7, 3), c, &dev).unwrap();
            let probe = Tensor::from_vec(values(len, 2.0, 4), (n, c, h, w), &dev).unwrap();
            let fused = group_norm(&x, &gain, &shift, groups, 1e-6, silu)
                .unwrap()
                .unwrap();
            let plain = candle_group_norm(&x, &gain, &shift, groups, silu);
            close(&fused, &plain, 1e-5);
            let loss = |t: Tensor| (t * &probe).unwrap().sum_all().unwrap();
            let gf = loss(fused).backward().unwrap();
            let gp = loss(plain).backward().unwrap();
            for v in [&x, &gain, &shift] {
                close(gf.get(v).unwrap(), gp.get(v).unwrap(), 1e-4);
            }
        }
    }

    #[test]
    fn fused_group_norm_gradients_match_finite_differences() {
        // f64 central differences of Σ probe · silu(groupnorm(x)) on a small case.
        let (n, c, s, groups, eps) = (2usize, 4usize, 3usize, 2usize, 1e-6f64);
        let x0 = values(n * c * s, 2.0, 5);
        let (w0, b0) = (values(c, 1.2, 6), values(c, 0.4, 7));
        let probe = values(n * c * s, 1.0, 8);
        let f = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
            let (cpg, mut total) = (c / groups, 0.0);
            for i in 0..n * groups {
                let block = &x[i * cpg * s..(i + 1) * cpg * s];
                let m = block.iter().sum::<f64>() / block.len() as f64;
                let v = block.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / block.len() as f64;
                for (j, &xv) in block.iter().enumerate() {
                    let ch = (i % groups) * cpg + j / s;
                    let y = (xv - m) / (v + eps).sqrt() * w[ch] + b[ch];
                    total += probe[i * cpg * s + j] as f64 * y / (1.0 + (-y).exp());
                }
            }
            total
        };
        let to64 = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
        let (x64, w64, b64) = (to64(&x0), to64(&w0), to64(&b0));
        let dev = Device::Cpu;
        let x = Var::from_vec(x0.clone(), (n, c, s), &dev).unwrap();
        let w = Var::from_vec(w0.clone(), c, &dev).unwrap();
        let b = Var::from_vec(b0.clone(), c, &dev).unwrap();
        let p = Tensor::from_vec(probe.clone(), (n, c, s), &dev).unwrap();
        let y = group_norm(&x, &w, &b, groups, eps, true).unwrap().unwrap();
        let grads = (y * p).unwrap().sum_all().unwrap().backward().unwrap();
        let h = 1e-6;
        let check = |got: &Tensor, base: &[f64], which: usize| {
            let got: Vec<f32> = got
                .to_vec1()
                .unwrap_or_else(|_| got.flatten_all().unwrap().to_vec1().unwrap());
            for i in 0..base.len() {
                let (mut up, mut down) = (base.to_vec(), base.to_vec());
                up[i] += h;
                down[i] -= h;
                let fd = match which {
                    0 => (f(&up, &w64, &b64) - f(&down, &w64, &b64)) / (2.0 * h),
                    1 => (f(&x64, &up, &b64) - f(&x64, &down, &b64)) / (2.0 * h),
                    _ => (f(&x64, &w64, &up) - f(&x64, &w64, &down)) / (2.0 * h),
                };
                assert!(
                    (f64::from(got[i]) - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                    "input {which}, entry {i}: {} vs {fd}",
                    got[i]
                );
            }
        };
        check(grads.get(&x).unwrap(), &x64, 0);
        check(grads.get(&w).unwrap(), &w64, 1);
        check(grads.get(&b).unwrap(), &b64, 2);
    }
}
