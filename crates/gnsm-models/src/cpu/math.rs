//! Forward and backward pieces of the tab-ResNet on host slices: matmuls through `gemm`,
//! LayerNorm, FiLM, activations and the level embedding.

use gemm::Parallelism;
use rayon::prelude::*;

use super::params::AffineIdx;
use super::{row_stats, ROWS_PER_TASK};
use crate::Activation;

/// Fourier features `[sin(2π t f), cos(2π t f)]` of each row's level `t`, `e` per row.
pub(super) fn fourier_features(
    feats: &mut [f32],
    freqs: &[f32],
    levels: impl Iterator<Item = f32>,
    e: usize,
) {
    let half = e / 2;
    for (row, t) in feats.chunks_exact_mut(e).zip(levels) {
        for (j, &f) in freqs.iter().enumerate().take(half) {
            let a = t * f * (2.0 * std::f32::consts::PI);
            row[j] = a.sin();
            row[half + j] = a.cos();
        }
    }
}

pub(super) fn leaky_relu(v: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        0.01 * v
    }
}

/// `h ← γ·h + β` per row, with `film` rows `γ | β`, one per level, and `row_level` giving
/// each row's.
pub(super) fn film_in_place(h: &mut [f32], film: &[f32], row_level: &[usize], w: usize) {
    h.par_chunks_mut(ROWS_PER_TASK * w)
        .enumerate()
        .for_each(|(chunk, h)| {
            let rows = &row_level[chunk * ROWS_PER_TASK..];
            for (h, &l) in h.chunks_exact_mut(w).zip(rows) {
                let (gamma, beta) = film[l * 2 * w..(l + 1) * 2 * w].split_at(w);
                for j in 0..w {
                    h[j] = gamma[j] * h[j] + beta[j];
                }
            }
        });
}

/// The distinct values of `levels` in order of first appearance, and each row's index
/// among them (levels are small integers, so exact comparison is right).
pub(super) fn distinct_levels(
    levels: impl Iterator<Item = f32>,
    distinct: &mut Vec<f32>,
    row_level: &mut Vec<usize>,
) {
    distinct.clear();
    row_level.clear();
    for level in levels {
        let i = match distinct.iter().position(|&d| d == level) {
            Some(i) => i,
            None => {
                distinct.push(level);
                distinct.len() - 1
            }
        };
        row_level.push(i);
    }
}

/// LayerNorm of rows of `w` into `y`, keeping nothing for a backward.
pub(super) fn layer_norm_rows(x: &[f32], gamma: &[f32], beta: &[f32], y: &mut [f32], w: usize) {
    y.par_chunks_mut(ROWS_PER_TASK * w)
        .zip(x.par_chunks(ROWS_PER_TASK * w))
        .for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(w).zip(x.chunks_exact(w)) {
                let (mean, rstd) = row_stats(x, 1e-5);
                for j in 0..w {
                    y[j] = (x[j] - mean) * rstd * gamma[j] + beta[j];
                }
            }
        });
}

/// Whether a matmul operand is read as stored (row-major) or transposed.
#[derive(Clone, Copy)]
pub(super) enum Trans {
    No,
    Yes,
}

/// `dst (m × n, row-major) [+]= A · B` with `A` m × k and `B` k × n, each stored row-major
/// as given or transposed (then stored as k × m and n × k).
// The one `unsafe` of the crate: gemm takes raw pointers and strides.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_rm(
    dst: &mut [f32],
    accumulate: bool,
    a: &[f32],
    a_t: Trans,
    b: &[f32],
    b_t: Trans,
    m: usize,
    k: usize,
    n: usize,
) {
    gemm_rm_split(true, dst, accumulate, a, a_t, b, b_t, m, k, n);
}

/// [`gemm_rm`], split across rayon's threads only when `split` and the product is large:
/// callers that already run one product per rayon task (the convolutions, one group of
/// images per task) pass `false`.
#[allow(clippy::too_many_arguments, unsafe_code)]
pub(super) fn gemm_rm_split(
    split: bool,
    dst: &mut [f32],
    accumulate: bool,
    a: &[f32],
    a_t: Trans,
    b: &[f32],
    b_t: Trans,
    m: usize,
    k: usize,
    n: usize,
) {
    assert!(dst.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    // (row stride, column stride) of A (m × k) and B (k × n).
    let (a_rs, a_cs) = match a_t {
        Trans::No => (k as isize, 1),
        Trans::Yes => (1, m as isize),
    };
    let (b_rs, b_cs) = match b_t {
        Trans::No => (n as isize, 1),
        Trans::Yes => (1, k as isize),
    };
    let parallelism = if split && m * n * k >= 64 * 64 * 64 {
        Parallelism::Rayon(rayon::current_num_threads())
    } else {
        Parallelism::None
    };
    // SAFETY: the assert above keeps every index the strides reach inside the slices, and
    // `dst` does not alias `a` or `b` (a `&mut` and two `&` borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `out = x · Wᵀ + bias` for a linear layer of `inp → outp` (W stored (outp, inp)).
pub(super) fn linear_fwd(
    out: &mut [f32],
    x: &[f32],
    p: &[&[f32]],
    idx: AffineIdx,
    rows: usize,
    inp: usize,
    outp: usize,
) {
    let (weight, bias) = (p[idx.weight], p[idx.bias]);
    affine_into(out, false, x, weight, Trans::Yes, bias, rows, inp, outp);
}

/// `out = x · B + bias` (or `out += …` when `accumulate`) with `B` the `inp × outp` matrix
/// `weight` read as `trans` says. The bias goes into `out` first (copied, or added), then the
/// matmul accumulates onto it: no separate bias pass over the output.
#[allow(clippy::too_many_arguments)]
pub(super) fn affine_into(
    out: &mut [f32],
    accumulate: bool,
    x: &[f32],
    weight: &[f32],
    trans: Trans,
    bias: &[f32],
    rows: usize,
    inp: usize,
    outp: usize,
) {
    for row in out[..rows * outp].chunks_exact_mut(outp) {
        if accumulate {
            row.iter_mut().zip(bias).for_each(|(o, &b)| *o += b);
        } else {
            row.copy_from_slice(bias);
        }
    }
    gemm_rm(out, true, x, Trans::No, weight, trans, rows, inp, outp);
}

/// Backward of `y = x · Wᵀ + b` given `g = ∂L/∂y`: `∂W = gᵀ · x`, `∂b = Σ_rows g`, and, when
/// asked, `gx = g · W`.
#[allow(clippy::too_many_arguments)]
pub(super) fn linear_bwd(
    g: &[f32],
    x: &[f32],
    weight: &[f32],
    grads: &mut [Vec<f32>],
    idx: AffineIdx,
    gx: Option<&mut [f32]>,
    rows: usize,
    inp: usize,
    outp: usize,
) {
    gemm_rm(
        &mut grads[idx.weight],
        false,
        g,
        Trans::Yes,
        x,
        Trans::No,
        outp,
        rows,
        inp,
    );
    column_sums(&mut grads[idx.bias], g, outp);
    if let Some(gx) = gx {
        gemm_rm(gx, false, g, Trans::No, weight, Trans::No, rows, outp, inp);
    }
}

pub(super) fn column_sums(dst: &mut [f32], g: &[f32], cols: usize) {
    dst.fill(0.0);
    for row in g.chunks_exact(cols) {
        dst.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
    }
}

/// `dst[i] = f(src[i])`, in parallel.
pub(super) fn map(dst: &mut [f32], src: &[f32], f: fn(f32) -> f32) {
    dst.par_chunks_mut(4096)
        .zip(src.par_chunks(4096))
        .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, &v)| *d = f(v)));
}

/// `x[i] = f(x[i])`, in parallel.
pub(super) fn map_in_place(x: &mut [f32], f: fn(f32) -> f32) {
    x.par_chunks_mut(4096)
        .for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
}

/// `g[i] *= f'(x[i])`, in parallel.
pub(super) fn grad_map(g: &mut [f32], x: &[f32], df: fn(f32) -> f32) {
    g.par_chunks_mut(4096)
        .zip(x.par_chunks(4096))
        .for_each(|(g, x)| g.iter_mut().zip(x).for_each(|(g, &v)| *g *= df(v)));
}

/// LayerNorm over rows of `w`: `hat = (x - μ)/σ`, `y = hat·γ + β` (eps 1e-5, biased σ², as
/// PyTorch and [`crate::layers::LayerNorm`]).
pub(super) fn layer_norm_fwd(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    hat: &mut [f32],
    rstd: &mut [f32],
    y: &mut [f32],
    w: usize,
) {
    hat.par_chunks_mut(ROWS_PER_TASK * w)
        .zip(y.par_chunks_mut(ROWS_PER_TASK * w))
        .zip(rstd.par_chunks_mut(ROWS_PER_TASK))
        .zip(x.par_chunks(ROWS_PER_TASK * w))
        .for_each(|(((hat, y), rstd), x)| {
            for (((hat, y), r), x) in hat
                .chunks_exact_mut(w)
                .zip(y.chunks_exact_mut(w))
                .zip(rstd.iter_mut())
                .zip(x.chunks_exact(w))
            {
                let (mean, rstd) = row_stats(x, 1e-5);
                *r = rstd;
                for j in 0..w {
                    hat[j] = (x[j] - mean) * *r;
                    y[j] = hat[j] * gamma[j] + beta[j];
                }
            }
        });
}

/// LayerNorm backward: `∂γ = Σ g·hat`, `∂β = Σ g`, and `gx += (1/σ)(ĝ - mean(ĝ) -
/// hat·mean(ĝ·hat))` with `ĝ = g·γ`.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_norm_bwd(
    g: &[f32],
    hat: &[f32],
    rstd: &[f32],
    gamma: &[f32],
    grads: &mut [Vec<f32>],
    idx: AffineIdx,
    gx: &mut [f32],
    w: usize,
) {
    {
        let dgamma = &mut grads[idx.weight];
        dgamma.fill(0.0);
        for (g, hat) in g.chunks_exact(w).zip(hat.chunks_exact(w)) {
            for j in 0..w {
                dgamma[j] += g[j] * hat[j];
            }
        }
    }
    column_sums(&mut grads[idx.bias], g, w);
    gx.par_chunks_mut(ROWS_PER_TASK * w)
        .zip(g.par_chunks(ROWS_PER_TASK * w))
        .zip(hat.par_chunks(ROWS_PER_TASK * w))
        .zip(rstd.par_chunks(ROWS_PER_TASK))
        .for_each(|(((gx, g), hat), rstd)| {
            for (((gx, g), hat), &r) in gx
                .chunks_exact_mut(w)
                .zip(g.chunks_exact(w))
                .zip(hat.chunks_exact(w))
                .zip(rstd)
            {
                let (mut mean_g, mut mean_gh) = (0f32, 0f32);
                for j in 0..w {
                    let gg = g[j] * gamma[j];
                    mean_g += gg;
                    mean_gh += gg * hat[j];
                }
                mean_g /= w as f32;
                mean_gh /= w as f32;
                for j in 0..w {
                    gx[j] += r * (g[j] * gamma[j] - mean_g - hat[j] * mean_gh);
                }
            }
        });
}

pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

pub(super) fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

pub(super) fn silu_grad(x: f32) -> f32 {
    let s = sigmoid(x);
    s * (1.0 + x * (1.0 - s))
}

pub(super) fn activation_fn(a: Activation) -> fn(f32) -> f32 {
    match a {
        Activation::Gelu => super::ops::gelu,
        Activation::Silu => silu,
        Activation::Relu => |v| v.max(0.0),
    }
}

/// `x[i] = act(x[i])` for inference, in parallel, with the activation inlined so the loop
/// vectorises; GELU through [`erf_rational`] (within 1e-6 of the exact GELU, relative for |x| > 1; tested) instead
/// of libm's scalar `erff`, which was a fifth of a default-network scoring pass. Training
/// keeps the exact GELU ([`super::ops::gelu`]) so its steps are unchanged.
pub(super) fn activate_for_inference(x: &mut [f32], a: Activation) {
    fn run(x: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
        x.par_chunks_mut(4096)
            .for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
    }
    match a {
        Activation::Gelu => run(x, |v| {
            0.5 * v * (1.0 + erf_rational(v * std::f32::consts::FRAC_1_SQRT_2))
        }),
        Activation::Silu => run(x, silu),
        Activation::Relu => run(x, |v| v.max(0.0)),
    }
}

/// `erf(x)` as the ratio of an odd degree-13 and an even degree-8 polynomial on [−3.92, 3.92]
/// (±1 in f32 beyond), Eigen's `generic_fast_erf_float` coefficients: branch-free, so loops
/// over it vectorise.
#[inline(always)]
pub(super) fn erf_rational(x: f32) -> f32 {
    // Beyond 3.92 the f32 erf is ±1 exactly (the ratio is 1 − 1e-7 there).
    if x.abs() >= 3.92 {
        return 1f32.copysign(x);
    }
    let x2 = x * x;
    let mut p = -2.726_142e-10_f32;
    for c in [
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_6e-3,
        -1.609_603_3e-2,
    ] {
        p = p * x2 + c;
    }
    let mut q = -1.456_607_2e-5_f32;
    for c in [-2.133_740_6e-4, -1.682_827e-3, -7.373_329e-3, -1.426_474e-2] {
        q = q * x2 + c;
    }
    x * p / q
}

pub(super) fn activation_grad(a: Activation) -> fn(f32) -> f32 {
    match a {
        Activation::Gelu => super::ops::gelu_grad,
        Activation::Silu => silu_grad,
        Activation::Relu => |v| if v > 0.0 { 1.0 } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_gelu_is_within_1e_6_of_the_exact_gelu_relative_beyond_one() {
        let mut worst = 0f32;
        let xs: Vec<f32> = (-120_000..120_000).map(|i| i as f32 * 1e-4).collect();
        let mut fast = xs.clone();
        activate_for_inference(&mut fast, Activation::Gelu);
        for (&x, &f) in xs.iter().zip(&fast) {
            worst = worst.max((f - super::super::ops::gelu(x)).abs() / x.abs().max(1.0));
        }
        assert!(
            worst < 1e-6,
            "worst error {worst} (absolute, relative beyond |x| = 1)"
        );
        let mut big = vec![-50.0f32, 50.0, 0.0];
        activate_for_inference(&mut big, Activation::Gelu);
        assert_eq!(big, [-0.0, 50.0, 0.0]);
        let mut other = vec![-1.0f32, 2.0];
        activate_for_inference(&mut other, Activation::Relu);
        assert_eq!(other, [0.0, 2.0]);
    }
}
