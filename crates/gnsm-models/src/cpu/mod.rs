//! Host (CPU) kernels, in the manner of candle-core's `cpu/` folder: what the CPU path
//! runs instead of chains of candle ops.
//!
//! - [`ops`]: LayerNorm and the exact GELU as candle custom ops with their own backward;
//! - [`conv`]: 2-D convolution (im2col + gemm) with its own backward;
//! - [`group_norm`]: GroupNorm, optionally with SiLU, with its own backward;
//! - [`inplace`]: the optimizer's moments, AdamW's update and the EMA as in-place ops;
//! - [`params`]: a tab-ResNet's variables as host slices ([`NetView`]);
//! - `math`: matmuls through `gemm`, LayerNorm, FiLM and activations on host slices;
//! - [`step`]: the allocation-free training step ([`CpuStep`]), checked against autograd;
//! - `transposed`: the forward's weights transposed for `gemm`'s fast layout;
//! - `infer`: the inference forward.
//!
//! Nothing here depends on the model type: `TabResNetModel` hands over a [`NetView`].

pub(crate) mod conv;
pub(crate) mod group_norm;
mod infer;
pub(crate) mod inplace;
mod math;
pub(crate) mod ops;
pub(crate) mod params;
pub(crate) mod step;
mod transposed;

use candle_core::{CpuStorage, Layout};

pub(crate) use infer::{infer, infer_levels};
pub(crate) use params::NetView;
pub(crate) use step::CpuStep;

/// Rows per rayon task in the element-wise passes (small tensors stay on one thread).
pub(crate) const ROWS_PER_TASK: usize = 16;

/// Run `f` on a worker of rayon's global pool (in place when already on one).
///
/// Why: a parallel loop started from outside the pool wakes the workers and parks the
/// calling thread on a lock until they finish; a training step runs dozens of such loops
/// and matmuls, and on 2 cores those hand-offs (futex waits and `sched_yield`) were ≈ 30 %
/// of a width-256 step (17.2 → 12.3 ms, docs/benchmarks.md). Started on a worker, the same
/// loops split by work stealing and the hand-off happens once.
pub(crate) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// The values of a contiguous f32 CPU tensor.
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Option<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((a, b))) => Some(&data[a..b]),
        _ => None,
    }
}

/// The values of a contiguous f32 CPU tensor, writable.
pub(crate) fn f32_slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Option<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((a, b))) => Some(&mut data[a..b]),
        _ => None,
    }
}

/// The values of a contiguous f32 CPU tensor given to the custom op `name`, or an error
/// naming it.
pub(crate) fn f32_input<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    name: &str,
) -> candle_core::Result<&'a [f32]> {
    match f32_slice(s, l) {
        Some(x) => Ok(x),
        None => candle_core::bail!("{name}: needs a contiguous f32 tensor"),
    }
}

/// [`f32_input`], writable (for in-place ops).
pub(crate) fn f32_input_mut<'a>(
    s: &'a mut CpuStorage,
    l: &Layout,
    name: &str,
) -> candle_core::Result<&'a mut [f32]> {
    match f32_slice_mut(s, l) {
        Some(x) => Ok(x),
        None => candle_core::bail!("{name}: needs a contiguous f32 tensor"),
    }
}

/// Mean and 1/σ of one row (biased σ², as PyTorch's LayerNorm).
#[inline]
pub(crate) fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let d = row.len() as f32;
    let mean = row.iter().sum::<f32>() / d;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d;
    (mean, 1.0 / (var + eps).sqrt())
}
