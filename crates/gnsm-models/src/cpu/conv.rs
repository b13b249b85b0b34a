//! 2-D convolution on host slices with its own backward: im2col and one gemm per image
//! forward; the kernel gradient as a gemm against the same columns and the input gradient as
//! a gemm followed by col2im. candle's CPU backward of `conv2d` runs a direct
//! `conv_transpose2d` loop for the input gradient and a convolution with an image-sized
//! kernel for the kernel gradient, which made the UNet's and the segmenter's steps several
//! times slower than their arithmetic.
//!
//! Batches of several images run one image per rayon task (its im2col, its gemm on that
//! thread, its col2im): the small channel counts make each gemm too small to split well,
//! and the column passes were serial. Per-image kernel gradients are summed in image order,
//! so results do not depend on the thread count.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::math::{gemm_rm_split, Trans};

/// The sizes of one convolution (no dilation, one group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
}

impl ConvShape {
    fn new(x: &Layout, k: &Layout, stride: usize, padding: usize) -> Result<Self> {
        let (batch, c_in, h, w) = x.shape().dims4()?;
        let (c_out, k_in, kh, kw) = k.shape().dims4()?;
        if k_in != c_in {
            candle_core::bail!("conv2d: input has {c_in} channels, the kernel {k_in}");
        }
        if c_in == 0 || c_out == 0 {
            candle_core::bail!("conv2d: a kernel of {c_out} × {c_in} channels is empty");
        }
        if h + 2 * padding < kh || w + 2 * padding < kw || stride == 0 {
            candle_core::bail!("conv2d: {h}×{w} input too small for a {kh}×{kw} kernel");
        }
        Ok(Self {
            batch,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride,
            padding,
        })
    }

    fn out_h(&self) -> usize {
        (self.h + 2 * self.padding - self.kh) / self.stride + 1
    }

    fn out_w(&self) -> usize {
        (self.w + 2 * self.padding - self.kw) / self.stride + 1
    }

    /// Rows of the column matrix: input channels × kernel taps.
    fn taps(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    fn out_pixels(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// For each column row `(c, ky, kx)` and output row `oy`: the input row, or `None` in the
    /// padding; likewise per output column.
    fn source(&self, out: usize, tap: usize, size: usize) -> Option<usize> {
        (out * self.stride + tap)
            .checked_sub(self.padding)
            .filter(|&v| v < size)
    }

    /// The output columns `[lo, hi)` whose input column `ox·stride + kx − padding` lies
    /// inside the image (the rest read the zero padding).
    fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let wo = self.out_w();
        let lo = self
            .padding
            .saturating_sub(kx)
            .div_ceil(self.stride)
            .min(wo);
        let hi = if self.w + self.padding > kx {
            ((self.w - 1 + self.padding - kx) / self.stride + 1).min(wo)
        } else {
            0
        };
        (lo, hi.max(lo))
    }

    /// Whether one image's gemm may split across threads: only when the batch is a single
    /// image (otherwise the image groups are the parallel tasks).
    fn split_gemm(&self) -> bool {
        self.batch == 1
    }

    /// Images per rayon task: the batch split evenly over the pool's threads, so each task
    /// allocates one column buffer.
    fn images_per_task(&self) -> usize {
        self.batch
            .div_ceil(rayon::current_num_threads().max(1))
            .max(1)
    }

    /// One image's columns `(taps, out pixels)`, row-major; padding reads as zero.
    fn im2col(&self, x: &[f32], cols: &mut [f32]) {
        let (ho, wo) = (self.out_h(), self.out_w());
        for c in 0..self.c_in {
            let plane = &x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = ((c * self.kh + ky) * self.kw + kx) * ho * wo;
                    let (lo, hi) = self.valid_columns(kx);
                    for oy in 0..ho {
                        let dst = &mut cols[row + oy * wo..row + (oy + 1) * wo];
                        let Some(iy) = self.source(oy, ky, self.h) else {
                            dst.fill(0.0);
                            continue;
                        };
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        if lo == hi {
                            continue;
                        }
                        let first = iy * self.w + lo * self.stride + kx - self.padding;
                        if self.stride == 1 {
                            dst[lo..hi].copy_from_slice(&plane[first..first + hi - lo]);
                        } else {
                            for (i, d) in dst[lo..hi].iter_mut().enumerate() {
                                *d = plane[first + i * self.stride];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Add one image's column gradients back onto its input gradient.
    fn col2im(&self, cols: &[f32], dx: &mut [f32]) {
        let (ho, wo) = (self.out_h(), self.out_w());
        for c in 0..self.c_in {
            let plane = &mut dx[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = ((c * self.kh + ky) * self.kw + kx) * ho * wo;
                    let (lo, hi) = self.valid_columns(kx);
                    if lo == hi {
                        continue;
                    }
                    for oy in 0..ho {
                        let Some(iy) = self.source(oy, ky, self.h) else {
                            continue;
                        };
                        let src = &cols[row + oy * wo + lo..row + oy * wo + hi];
                        let first = iy * self.w + lo * self.stride + kx - self.padding;
                        if self.stride == 1 {
                            let dst = &mut plane[first..first + hi - lo];
                            dst.iter_mut().zip(src).for_each(|(d, &g)| *d += g);
                        } else {
                            for (i, &g) in src.iter().enumerate() {
                                plane[first + i * self.stride] += g;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `conv2d(x, kernel)`: x (B, C, H, W), kernel (O, C, kh, kw) → (B, O, Ho, Wo).
struct Conv2dOp {
    stride: usize,
    padding: usize,
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "host-conv2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = ConvShape::new(xl, kl, self.stride, self.padding)?;
        let (x, k) = (
            super::f32_input(xs, xl, self.name())?,
            super::f32_input(ks, kl, self.name())?,
        );
        let (taps, pixels) = (g.taps(), g.out_pixels());
        let mut out = vec![0f32; g.batch * g.c_out * pixels];
        let image = g.c_in * g.h * g.w;
        let split = g.split_gemm();
        let (per, out_image) = (g.images_per_task(), g.c_out * pixels);
        out.par_chunks_mut(per * out_image)
            .zip(x.par_chunks(per * image))
            .for_each(|(dst, xs)| {
                let mut cols = vec![0f32; taps * pixels];
                for (dst, xb) in dst.chunks_mut(out_image).zip(xs.chunks(image)) {
                    g.im2col(xb, &mut cols);
                    gemm_rm_split(
                        split,
                        dst,
                        false,
                        k,
                        Trans::No,
                        &cols,
                        Trans::No,
                        g.c_out,
                        taps,
                        pixels,
                    );
                }
            });
        let shape = Shape::from((g.batch, g.c_out, g.out_h(), g.out_w()));
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = kernel.apply_op2_no_bwd(
            &grad,
            &Conv2dInputGrad {
                stride: self.stride,
                padding: self.padding,
                input: x.dims().to_vec(),
            },
        )?;
        let dk = x.apply_op2_no_bwd(
            &grad,
            &Conv2dKernelGrad {
                stride: self.stride,
                padding: self.padding,
                kernel: kernel.dims().to_vec(),
            },
        )?;
        Ok((Some(dx), Some(dk)))
    }
}

/// The geometry of a backward op from the saved input (or kernel) dims and the output
/// gradient, checked against that gradient's shape.
fn backward_shape(
    x_dims: &[usize],
    k_dims: &[usize],
    grad: &Layout,
    stride: usize,
    padding: usize,
) -> Result<ConvShape> {
    let g = ConvShape::new(
        &Layout::contiguous(x_dims),
        &Layout::contiguous(k_dims),
        stride,
        padding,
    )?;
    if grad.dims() != [g.batch, g.c_out, g.out_h(), g.out_w()] {
        candle_core::bail!("conv2d backward: gradient of shape {:?}", grad.dims());
    }
    Ok(g)
}

/// The input gradient from (kernel, output gradient).
struct Conv2dInputGrad {
    stride: usize,
    padding: usize,
    input: Vec<usize>,
}

impl CustomOp2 for Conv2dInputGrad {
    fn name(&self) -> &'static str {
        "host-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        ks: &CpuStorage,
        kl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = backward_shape(&self.input, kl.dims(), gl, self.stride, self.padding)?;
        let (k, grad) = (
            super::f32_input(ks, kl, self.name())?,
            super::f32_input(gs, gl, self.name())?,
        );
        let (taps, pixels, image) = (g.taps(), g.out_pixels(), g.c_in * g.h * g.w);
        let mut dx = vec![0f32; g.batch * image];
        let split = g.split_gemm();
        let (per, out_image) = (g.images_per_task(), g.c_out * pixels);
        dx.par_chunks_mut(per * image)
            .zip(grad.par_chunks(per * out_image))
            .for_each(|(dxs, gs)| {
                let mut cols = vec![0f32; taps * pixels];
                for (dxb, gb) in dxs.chunks_mut(image).zip(gs.chunks(out_image)) {
                    gemm_rm_split(
                        split,
                        &mut cols,
                        false,
                        k,
                        Trans::Yes,
                        gb,
                        Trans::No,
                        taps,
                        g.c_out,
                        pixels,
                    );
                    g.col2im(&cols, dxb);
                }
            });
        Ok((CpuStorage::F32(dx), Shape::from(self.input.clone())))
    }
}

/// The kernel gradient from (input, output gradient).
struct Conv2dKernelGrad {
    stride: usize,
    padding: usize,
    kernel: Vec<usize>,
}

impl CustomOp2 for Conv2dKernelGrad {
    fn name(&self) -> &'static str {
        "host-conv2d-kernel-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = backward_shape(xl.dims(), &self.kernel, gl, self.stride, self.padding)?;
        let (x, grad) = (
            super::f32_input(xs, xl, self.name())?,
            super::f32_input(gs, gl, self.name())?,
        );
        let (taps, pixels, image) = (g.taps(), g.out_pixels(), g.c_in * g.h * g.w);
        let kernel = g.c_out * taps;
        // One kernel gradient per image, summed below in image order.
        let mut parts = vec![0f32; g.batch * kernel];
        let split = g.split_gemm();
        let (per, out_image) = (g.images_per_task(), g.c_out * pixels);
        parts
            .par_chunks_mut(per * kernel)
            .zip(
                x.par_chunks(per * image)
                    .zip(grad.par_chunks(per * out_image)),
            )
            .for_each(|(parts, (xs, gs))| {
                let mut cols = vec![0f32; taps * pixels];
                let images = xs.chunks(image).zip(gs.chunks(out_image));
                for (part, (xb, gb)) in parts.chunks_mut(kernel).zip(images) {
                    g.im2col(xb, &mut cols);
                    gemm_rm_split(
                        split,
                        part,
                        false,
                        gb,
                        Trans::No,
                        &cols,
                        Trans::Yes,
                        g.c_out,
                        pixels,
                        taps,
                    );
                }
            });
        let mut dk = vec![0f32; kernel];
        for part in parts.chunks(kernel) {
            dk.iter_mut().zip(part).for_each(|(d, &p)| *d += p);
        }
        Ok((CpuStorage::F32(dk), Shape::from(self.kernel.clone())))
    }
}

/// `conv2d(x, kernel)` with one group and no dilation: the host kernels above for contiguous
/// f32 CPU tensors, candle's `conv2d` elsewhere.
///
/// # Errors
/// A candle error for mismatched shapes.
pub(crate) fn conv2d(x: &Tensor, kernel: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let host = x.device().is_cpu()
        && x.dtype() == candle_core::DType::F32
        && kernel.dtype() == candle_core::DType::F32;
    if host {
        x.contiguous()?
            .apply_op2(&kernel.contiguous()?, Conv2dOp { stride, padding })
    } else {
        x.conv2d(kernel, padding, stride, 1, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{i}: {x} vs {y}");
        }
    }

    /// Values and both gradients equal candle's `conv2d` (its own autograd) on shapes with
    /// padding, stride 2, odd sizes and a 1×1 kernel.
    #[test]
    fn values_and_gradients_match_candle() {
        let dev = Device::Cpu;
        for &(b, c, h, w, o, k, stride, pad) in &[
            (2, 3, 7, 5, 4, 3, 1, 1),
            (2, 4, 8, 6, 3, 3, 2, 1),
            (1, 5, 6, 6, 2, 1, 1, 0),
            (3, 2, 5, 9, 3, 3, 1, 0),
            (1, 2, 3, 3, 2, 5, 1, 2),
            (2, 3, 9, 7, 2, 3, 2, 0),
            (1, 1, 7, 4, 1, 5, 3, 2),
        ] {
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, c, h, w), &dev).unwrap()).unwrap();
            let kernel =
                Var::from_tensor(&Tensor::randn(0f32, 0.5, (o, c, k, k), &dev).unwrap()).unwrap();
            let ours = conv2d(x.as_tensor(), kernel.as_tensor(), stride, pad).unwrap();
            let theirs = x
                .as_tensor()
                .conv2d(kernel.as_tensor(), pad, stride, 1, 1)
                .unwrap();
            close(&ours, &theirs, 1e-5);
            // A loss that weighs every output differently, so each gradient entry is tested.
            let weights = Tensor::randn(0f32, 1.0, ours.dims(), &dev).unwrap();
            let grads = |y: &Tensor| {
                (y * &weights)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
            };
            let (g1, g2) = (grads(&ours), grads(&theirs));
            for v in [x.as_tensor(), kernel.as_tensor()] {
                close(g1.get(v).unwrap(), g2.get(v).unwrap(), 1e-4);
            }
        }
    }

    /// Values and gradients have the same bits on one thread and on three (the kernel
    /// gradient sums its per-image parts in image order).
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (5, 3, 9, 7), &dev).unwrap();
        let kernel = Tensor::randn(0f32, 0.5, (4, 3, 3, 3), &dev).unwrap();
        let weights = Tensor::randn(0f32, 1.0, (5, 4, 5, 4), &dev).unwrap();
        let run = |threads: usize| -> Vec<Vec<f32>> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (xv, kv) = (
                    Var::from_tensor(&x).unwrap(),
                    Var::from_tensor(&kernel).unwrap(),
                );
                let y = conv2d(xv.as_tensor(), kv.as_tensor(), 2, 1).unwrap();
                let grads = (&y * &weights)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                [
                    &y,
                    grads.get(xv.as_tensor()).unwrap(),
                    grads.get(kv.as_tensor()).unwrap(),
                ]
                .iter()
                .map(|t| t.flatten_all().unwrap().to_vec1().unwrap())
                .collect()
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn empty_kernels_are_refused() {
        let x = Tensor::zeros((1, 2, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let k = Tensor::zeros((0, 2, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(conv2d(&x, &k, 1, 1).is_err());
    }

    /// The input gradient against central finite differences of the loss, by hand.
    #[test]
    fn input_gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        let x: Vec<f32> = (0..2 * 3 * 4)
            .map(|v| ((v * 7) % 11) as f32 / 11.0 - 0.5)
            .collect();
        let kernel = Tensor::randn(0f32, 1.0, (2, 2, 3, 3), &dev).unwrap();
        let loss = |x: &[f32]| -> f32 {
            let x = Tensor::from_slice(x, (1, 2, 3, 4), &dev).unwrap();
            let y = conv2d(&x, &kernel, 2, 1).unwrap();
            y.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap()
        };
        let var = Var::from_tensor(&Tensor::from_slice(&x, (1, 2, 3, 4), &dev).unwrap()).unwrap();
        let y = conv2d(var.as_tensor(), &kernel, 2, 1).unwrap();
        let grad: Vec<f32> = y
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let eps = 1e-2f32;
        for i in 0..x.len() {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += eps;
            down[i] -= eps;
            let numeric = (loss(&up) - loss(&down)) / (2.0 * eps);
            assert!(
                (numeric - grad[i]).abs() < 1e-2 * (1.0 + numeric.abs()),
                "{i}: {numeric} vs {}",
                grad[i]
            );
        }
    }
}
