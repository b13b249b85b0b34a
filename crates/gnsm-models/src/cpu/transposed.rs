//! The tab-ResNet's large weights transposed to (in, out), for the forward's `x · Wᵀ`.
//!
//! Why: a linear layer stores W as (out, in), so the forward multiplies by the transposed
//! view of W, a column-major right side, which `gemm` multiplies at about half the speed of a
//! row-major one (measured on 2 cores, 256 × 1024 · 1024 × 1024: 116 vs 207 GFLOP/s; 256³:
//! 141 vs 196), with the same bits in the result. An 8 × 8-blocked transpose of the weight
//! costs a tenth of that difference (0.28 ms for 1024², against 2.1 ms saved per matmul of
//! 256 rows), so the forward passes copy the weights once per step or per inference call and
//! multiply by the copies. The backward's products (`gᵀ · x`, `g · W`) already read row-major
//! operands.

use rayon::prelude::*;

use super::math::{affine_into, Trans};
use super::params::{AffineIdx, NetIdx};

/// Transposed copies of the input projection, every block's two dense layers and the head,
/// by variable index (empty for the other variables).
#[derive(Debug, Default)]
pub(super) struct TransposedWeights {
    mats: Vec<Vec<f32>>,
}

impl TransposedWeights {
    /// Copy the weights of `p` (the model's variables, sorted) transposed; call again after
    /// every update of the parameters.
    pub(super) fn refresh(&mut self, p: &[&[f32]], idx: &NetIdx, in_dim: usize, width: usize) {
        if self.mats.len() != p.len() {
            self.mats = vec![Vec::new(); p.len()];
        }
        let blocks = idx
            .blocks
            .iter()
            .flat_map(|block| [(block.dense_1, width, width), (block.dense_2, width, width)]);
        let ends = [(idx.proj, in_dim, width), (idx.head, width, in_dim)];
        for (layer, inp, outp) in ends.into_iter().chain(blocks) {
            let dst = &mut self.mats[layer.weight];
            dst.resize(inp * outp, 0.0);
            transpose(dst, p[layer.weight], outp, inp);
        }
    }

    /// `out = x · Wᵀ + b` (or `out += …` when `accumulate`) for `layer` (`inp → outp`, one of
    /// the refreshed layers), `rows` rows of `x`: the same bits as the product with the
    /// (out, in) weight.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn linear(
        &self,
        out: &mut [f32],
        accumulate: bool,
        x: &[f32],
        p: &[&[f32]],
        layer: AffineIdx,
        rows: usize,
        inp: usize,
        outp: usize,
    ) {
        let weight_t = &self.mats[layer.weight];
        assert_eq!(
            weight_t.len(),
            inp * outp,
            "the layer's weight was not refreshed"
        );
        let bias = p[layer.bias];
        affine_into(
            out,
            accumulate,
            x,
            weight_t,
            Trans::No,
            bias,
            rows,
            inp,
            outp,
        );
    }
}

/// `dst = srcᵀ` for `src` of `rows × cols` (row-major; `dst` is `cols × rows`): 8 × 8 blocks
/// through a register-sized buffer, in parallel over strips of 8 source columns.
pub(super) fn transpose(dst: &mut [f32], src: &[f32], rows: usize, cols: usize) {
    const B: usize = 8;
    assert!(dst.len() == rows * cols && src.len() == rows * cols);
    if rows == 0 || cols == 0 {
        return;
    }
    dst.par_chunks_mut(B * rows)
        .enumerate()
        .for_each(|(strip, out)| {
            let j0 = strip * B;
            let width = out.len() / rows;
            let mut i = 0;
            if width == B {
                while i + B <= rows {
                    let mut block = [[0f32; B]; B];
                    for (a, line) in block.iter_mut().enumerate() {
                        let at = (i + a) * cols + j0;
                        line.copy_from_slice(&src[at..at + B]);
                    }
                    for (b, dst_row) in out.chunks_exact_mut(rows).enumerate() {
                        for (a, line) in block.iter().enumerate() {
                            dst_row[i + a] = line[b];
                        }
                    }
                    i += B;
                }
            }
            for i in i..rows {
                for (b, dst_row) in out.chunks_exact_mut(rows).enumerate() {
                    dst_row[i] = src[i * cols + j0 + b];
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::super::math::gemm_rm;
    use super::*;

    fn naive(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut t = vec![0f32; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = src[i * cols + j];
            }
        }
        t
    }

    #[test]
    fn transpose_matches_the_definition_on_ragged_shapes() {
        for (rows, cols) in [
            (1, 1),
            (3, 5),
            (8, 8),
            (13, 53),
            (53, 256),
            (64, 17),
            (9, 8),
        ] {
            let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
            let mut dst = vec![0f32; rows * cols];
            transpose(&mut dst, &src, rows, cols);
            assert_eq!(dst, naive(&src, rows, cols), "{rows} × {cols}");
        }
    }

    #[test]
    fn product_with_the_copy_has_the_same_bits_as_with_the_transposed_view() {
        // x (rows × inp) · Wᵀ with W (outp × inp), both ways, including ragged sizes.
        for (rows, inp, outp) in [(256, 256, 256), (100, 53, 96), (7, 300, 41)] {
            let x: Vec<f32> = (0..rows * inp)
                .map(|i| ((i * 7919) % 1013) as f32 / 1013.0 - 0.5)
                .collect();
            let w: Vec<f32> = (0..outp * inp)
                .map(|i| ((i * 104_729) % 997) as f32 / 997.0 - 0.5)
                .collect();
            let mut view = vec![0f32; rows * outp];
            gemm_rm(
                &mut view,
                false,
                &x,
                Trans::No,
                &w,
                Trans::Yes,
                rows,
                inp,
                outp,
            );
            let mut wt = vec![0f32; inp * outp];
            transpose(&mut wt, &w, outp, inp);
            let mut copy = vec![0f32; rows * outp];
            gemm_rm(
                &mut copy,
                false,
                &x,
                Trans::No,
                &wt,
                Trans::No,
                rows,
                inp,
                outp,
            );
            assert_eq!(view, copy, "{rows} × {inp} · {inp} × {outp}");
        }
    }
}
