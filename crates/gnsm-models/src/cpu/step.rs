//! A training step of the tab-ResNet on CPU that allocates nothing per step: forward and
//! backward written out by hand on buffers kept between steps, the matmuls handed straight to
//! `gemm` (the engine under candle's CPU matmul) with the bias folded into the output.
//!
//! Why: candle allocates a fresh buffer for every op result and every gradient; at the
//! paper's shape (width 1024, 20 blocks) the kernel's zeroing of those freshly faulted pages,
//! not the matmuls, was the largest cost of a step (docs/benchmarks.md). The network is small
//! enough to differentiate by hand, and the result is checked against candle's autograd
//! (every gradient, `tests` below), so both paths compute the same step.
//!
//! Only the network runs here; the loss and its gradient with respect to the network output
//! stay in candle (gnsm-losses), on a (batch × columns) tensor.

use rayon::prelude::*;

use super::math::*;
use super::params::{NetIdx, NetView};
use super::transposed::TransposedWeights;
use super::ROWS_PER_TASK;
use crate::{Activation, ModelError};

/// Given the network output, the loss and its gradient with respect to the output.
pub(crate) type LossGrad<'a> = dyn FnMut(&[f32]) -> Result<(f64, Vec<f32>), ModelError> + Send + 'a;

/// Saved activations of one residual block.
#[derive(Debug)]
struct BlockBuffers {
    /// Normalised input (before the LayerNorm's affine map).
    hat: Vec<f32>,
    /// 1/σ per row.
    rstd: Vec<f32>,
    /// LayerNorm output (the activation's input).
    pre: Vec<f32>,
    /// Activation output.
    act: Vec<f32>,
    /// dense_1 output.
    h1: Vec<f32>,
    /// FiLM output (γ | β per row).
    film: Vec<f32>,
    /// After FiLM (dense_2's input).
    h2: Vec<f32>,
}

/// The buffers and variable indices of the hand-written step for one model and batch size.
#[derive(Debug)]
pub(crate) struct CpuStep {
    batch: usize,
    width: usize,
    in_dim: usize,
    emb_size: usize,
    activation: Activation,
    names: Vec<String>,
    idx: NetIdx,
    /// One gradient buffer per variable, in the model's sorted order.
    grads: Vec<Vec<f32>>,
    feats: Vec<f32>,
    e0_pre: Vec<f32>,
    e0: Vec<f32>,
    e1_pre: Vec<f32>,
    emb: Vec<f32>,
    x: Vec<f32>,
    /// The residual stream before each block, and after the last (depth + 1 buffers).
    stream: Vec<Vec<f32>>,
    blocks: Vec<BlockBuffers>,
    head_hat: Vec<f32>,
    head_rstd: Vec<f32>,
    head_pre: Vec<f32>,
    head_act: Vec<f32>,
    out: Vec<f32>,
    g_h: Vec<f32>,
    g_a: Vec<f32>,
    g_b: Vec<f32>,
    g_film: Vec<f32>,
    g_emb: Vec<f32>,
    g_e: Vec<f32>,
    /// The distinct levels of the batch: the level embedding and every block's FiLM are
    /// computed once per level, not once per row.
    distinct: Vec<f32>,
    /// Row → index into `distinct`.
    row_level: Vec<usize>,
    /// The forward's large weights transposed, refreshed every step.
    weights_t: TransposedWeights,
}

impl CpuStep {
    /// Whether the hand-written step can train `model`: CPU, f32, no dropout.
    pub(crate) fn supports(model: &NetView<'_>) -> bool {
        model.config.dropout == 0.0 && model.on_cpu_f32()
    }

    /// Buffers for `model` at `batch` rows per step.
    ///
    /// # Errors
    /// [`ModelError::Shape`] when a variable the tab-ResNet needs is missing.
    pub(crate) fn new(model: &NetView<'_>, batch: usize) -> Result<Self, ModelError> {
        let config = model.config;
        let (width, depth, emb_size) = (config.width, config.depth, config.embedding_size);
        let in_dim = model.input_width;
        let vars = &model.vars;
        let names: Vec<String> = vars.iter().map(|(n, _)| n.clone()).collect();
        let idx = NetIdx::new(&names, depth)?;
        let rows_w = batch * width;
        let blocks = (0..depth)
            .map(|_| BlockBuffers {
                hat: vec![0.0; rows_w],
                rstd: vec![0.0; batch],
                pre: vec![0.0; rows_w],
                act: vec![0.0; rows_w],
                h1: vec![0.0; rows_w],
                film: vec![0.0; 2 * rows_w],
                h2: vec![0.0; rows_w],
            })
            .collect();
        Ok(Self {
            batch,
            width,
            in_dim,
            emb_size,
            activation: config.activation,
            idx,
            grads: vars
                .iter()
                .map(|(_, v)| vec![0.0; v.elem_count()])
                .collect(),
            names,
            feats: vec![0.0; batch * emb_size],
            e0_pre: vec![0.0; batch * emb_size],
            e0: vec![0.0; batch * emb_size],
            e1_pre: vec![0.0; batch * emb_size],
            emb: vec![0.0; batch * emb_size],
            x: vec![0.0; batch * in_dim],
            stream: (0..=depth).map(|_| vec![0.0; rows_w]).collect(),
            blocks,
            head_hat: vec![0.0; rows_w],
            head_rstd: vec![0.0; batch],
            head_pre: vec![0.0; rows_w],
            head_act: vec![0.0; rows_w],
            out: vec![0.0; batch * in_dim],
            g_h: vec![0.0; rows_w],
            g_a: vec![0.0; rows_w],
            g_b: vec![0.0; rows_w],
            g_film: vec![0.0; 2 * rows_w],
            g_emb: vec![0.0; batch * emb_size],
            g_e: vec![0.0; batch * emb_size],
            distinct: Vec::with_capacity(batch),
            row_level: vec![0; batch],
            weights_t: TransposedWeights::default(),
        })
    }

    /// Rows per step these buffers hold.
    pub(crate) fn batch(&self) -> usize {
        self.batch
    }

    /// The gradients of the last [`CpuStep::run`], in the model's sorted variable order.
    pub(crate) fn grads(&self) -> &[Vec<f32>] {
        &self.grads
    }

    /// Variable names, in the order of [`CpuStep::grads`].
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Forward `x` (batch × in_dim, row-major) at `levels`, ask `loss_grad` for the loss and
    /// its gradient with respect to the output (batch × in_dim), then back-propagate into
    /// [`CpuStep::grads`]. Returns the loss.
    ///
    /// # Errors
    /// [`ModelError::Shape`] for inputs of the wrong size, or what `loss_grad` returns.
    pub(crate) fn run(
        &mut self,
        model: &NetView<'_>,
        x: &[f32],
        levels: &[usize],
        loss_grad: &mut LossGrad<'_>,
    ) -> Result<f64, ModelError> {
        if x.len() != self.batch * self.in_dim || levels.len() != self.batch {
            return Err(ModelError::Shape {
                what: "fused CPU step input",
                expected: format!("{} rows of {}", self.batch, self.in_dim),
                got: format!("{} values, {} levels", x.len(), levels.len()),
            });
        }
        self.x.copy_from_slice(x);
        model.with_params(|params, freqs| {
            super::on_pool(|| {
                self.weights_t
                    .refresh(params, &self.idx, self.in_dim, self.width);
                self.forward(params, freqs, levels);
                let (loss, g_out) = loss_grad(&self.out)?;
                if g_out.len() != self.out.len() {
                    return Err(ModelError::Shape {
                        what: "loss gradient",
                        expected: self.out.len().to_string(),
                        got: g_out.len().to_string(),
                    });
                }
                self.backward(params, &g_out);
                Ok(loss)
            })
        })
    }

    fn forward(&mut self, p: &[&[f32]], freqs: &[f32], levels: &[usize]) {
        let (b, w, d, e) = (self.batch, self.width, self.in_dim, self.emb_size);
        distinct_levels(
            levels.iter().map(|&l| l as f32),
            &mut self.distinct,
            &mut self.row_level,
        );
        let (u, ue) = (self.distinct.len(), self.distinct.len() * e);
        fourier_features(
            &mut self.feats[..ue],
            freqs,
            self.distinct.iter().copied(),
            e,
        );
        linear_fwd(
            &mut self.e0_pre[..ue],
            &self.feats[..ue],
            p,
            self.idx.emb_0,
            u,
            e,
            e,
        );
        map(&mut self.e0[..ue], &self.e0_pre[..ue], silu);
        linear_fwd(
            &mut self.e1_pre[..ue],
            &self.e0[..ue],
            p,
            self.idx.emb_1,
            u,
            e,
            e,
        );
        map(&mut self.emb[..ue], &self.e1_pre[..ue], silu);
        let wt = &self.weights_t;
        wt.linear(
            &mut self.stream[0],
            false,
            &self.x,
            p,
            self.idx.proj,
            b,
            d,
            w,
        );
        let act = activation_fn(self.activation);
        for (i, idx) in self.idx.blocks.iter().enumerate() {
            let (done, rest) = self.stream.split_at_mut(i + 1);
            let (input, output) = (&done[i], &mut rest[0]);
            let buf = &mut self.blocks[i];
            layer_norm_fwd(
                input,
                p[idx.norm.weight],
                p[idx.norm.bias],
                &mut buf.hat,
                &mut buf.rstd,
                &mut buf.pre,
                w,
            );
            map(&mut buf.act, &buf.pre, act);
            wt.linear(&mut buf.h1, false, &buf.act, p, idx.dense_1, b, w, w);
            linear_fwd(
                &mut buf.film[..2 * u * w],
                &self.emb[..ue],
                p,
                idx.film,
                u,
                e,
                2 * w,
            );
            // h2 = γ·h1 + β.
            buf.h2.copy_from_slice(&buf.h1);
            film_in_place(&mut buf.h2, &buf.film, &self.row_level, w);
            // output = input + dense_2(h2).
            output.copy_from_slice(input);
            wt.linear(output, true, &buf.h2, p, idx.dense_2, b, w, w);
        }
        layer_norm_fwd(
            &self.stream[self.idx.blocks.len()],
            p[self.idx.head_norm.weight],
            p[self.idx.head_norm.bias],
            &mut self.head_hat,
            &mut self.head_rstd,
            &mut self.head_pre,
            w,
        );
        map(&mut self.head_act, &self.head_pre, leaky_relu);
        wt.linear(
            &mut self.out,
            false,
            &self.head_act,
            p,
            self.idx.head,
            b,
            w,
            d,
        );
    }

    fn backward(&mut self, p: &[&[f32]], g_out: &[f32]) {
        let (b, w, d, e) = (self.batch, self.width, self.in_dim, self.emb_size);
        let grads = &mut self.grads;
        // Head: out = head(leaky(LN(h))).
        linear_bwd(
            g_out,
            &self.head_act,
            p[self.idx.head.weight],
            grads,
            self.idx.head,
            Some(&mut self.g_a[..]),
            b,
            w,
            d,
        );
        grad_map(&mut self.g_a, &self.head_pre, |v| {
            if v > 0.0 {
                1.0
            } else {
                0.01
            }
        });
        self.g_h.fill(0.0);
        layer_norm_bwd(
            &self.g_a,
            &self.head_hat,
            &self.head_rstd,
            p[self.idx.head_norm.weight],
            grads,
            self.idx.head_norm,
            &mut self.g_h,
            w,
        );
        let (u, ue) = (self.distinct.len(), self.distinct.len() * e);
        self.g_emb[..ue].fill(0.0);
        let act_grad = activation_grad(self.activation);
        for (i, idx) in self.idx.blocks.iter().enumerate().rev() {
            let buf = &self.blocks[i];
            // output = input + dense_2(h2): g_h flows to the input unchanged, plus the branch.
            linear_bwd(
                &self.g_h,
                &buf.h2,
                p[idx.dense_2.weight],
                grads,
                idx.dense_2,
                Some(&mut self.g_a[..]),
                b,
                w,
                w,
            );
            // h2 = γ·h1 + β: g_h1 = g·γ per row; g_γ = Σ g·h1 and g_β = Σ g over the rows
            // of each level.
            let row_level = &self.row_level;
            self.g_b
                .par_chunks_mut(ROWS_PER_TASK * w)
                .zip(self.g_a.par_chunks(ROWS_PER_TASK * w))
                .enumerate()
                .for_each(|(chunk, (g_h1, g))| {
                    let rows = &row_level[chunk * ROWS_PER_TASK..];
                    for ((g_h1, g), &l) in g_h1.chunks_exact_mut(w).zip(g.chunks_exact(w)).zip(rows)
                    {
                        let gamma = &buf.film[l * 2 * w..l * 2 * w + w];
                        for j in 0..w {
                            g_h1[j] = g[j] * gamma[j];
                        }
                    }
                });
            let g_film = &mut self.g_film[..2 * u * w];
            g_film.fill(0.0);
            for ((g, h1), &l) in self
                .g_a
                .chunks_exact(w)
                .zip(buf.h1.chunks_exact(w))
                .zip(row_level)
            {
                let (g_gamma, g_beta) = g_film[l * 2 * w..(l + 1) * 2 * w].split_at_mut(w);
                for j in 0..w {
                    g_gamma[j] += g[j] * h1[j];
                    g_beta[j] += g[j];
                }
            }
            linear_bwd(
                g_film,
                &self.emb[..ue],
                p[idx.film.weight],
                grads,
                idx.film,
                None,
                u,
                e,
                2 * w,
            );
            // g_emb += g_film · W_film.
            gemm_rm(
                &mut self.g_emb[..ue],
                true,
                g_film,
                Trans::No,
                p[idx.film.weight],
                Trans::No,
                u,
                2 * w,
                e,
            );
            linear_bwd(
                &self.g_b,
                &buf.act,
                p[idx.dense_1.weight],
                grads,
                idx.dense_1,
                Some(&mut self.g_a[..]),
                b,
                w,
                w,
            );
            grad_map(&mut self.g_a, &buf.pre, act_grad);
            layer_norm_bwd(
                &self.g_a,
                &buf.hat,
                &buf.rstd,
                p[idx.norm.weight],
                grads,
                idx.norm,
                &mut self.g_h,
                w,
            );
        }
        // proj: no gradient to the input needed.
        linear_bwd(
            &self.g_h,
            &self.x,
            p[self.idx.proj.weight],
            grads,
            self.idx.proj,
            None,
            b,
            d,
            w,
        );
        // Embedding: emb = silu(e1_pre), e1_pre = dense_1(e0), e0 = silu(e0_pre).
        grad_map(&mut self.g_emb[..ue], &self.e1_pre[..ue], silu_grad);
        linear_bwd(
            &self.g_emb[..ue],
            &self.e0[..ue],
            p[self.idx.emb_1.weight],
            grads,
            self.idx.emb_1,
            Some(&mut self.g_e[..ue]),
            u,
            e,
            e,
        );
        grad_map(&mut self.g_e[..ue], &self.e0_pre[..ue], silu_grad);
        linear_bwd(
            &self.g_e[..ue],
            &self.feats[..ue],
            p[self.idx.emb_0.weight],
            grads,
            self.idx.emb_0,
            None,
            u,
            e,
            e,
        );
    }
}

/// Put host gradients into a `Var`-keyed list (for tests and the candle fallback).
#[cfg(test)]
pub(crate) fn grads_as_tensors(
    step: &CpuStep,
    vars: &[(String, candle_core::Var)],
) -> Result<Vec<candle_core::Tensor>, ModelError> {
    use candle_core::Tensor;
    vars.iter()
        .zip(step.grads())
        .map(|((_, v), g)| Ok(Tensor::from_slice(g, v.dims(), v.device())?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TabResNetConfig, TabResNetModel};
    use candle_core::{Device, Tensor};
    use gnsm_noise::FeatureLayout;

    /// Every gradient of the hand-written step equals candle's autograd on the same weights,
    /// inputs and a loss `Σ out · c` with fixed random `c`, for each activation.
    #[test]
    fn gradients_equal_candle_autograd() {
        for activation in [Activation::Gelu, Activation::Silu, Activation::Relu] {
            let layout = FeatureLayout::categorical(vec![3, 4, 2]).unwrap();
            let config = TabResNetConfig {
                width: 24,
                depth: 2,
                embedding_size: 16,
                activation,
                ..Default::default()
            };
            let model = TabResNetModel::new(config, layout, &Device::Cpu).unwrap();
            // Non-trivial norm gains and biases (init sets them to 1 and 0).
            let mut rng = 7u64;
            let mut next = move || {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((rng >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            };
            for (name, var) in model.named_vars() {
                if var.rank() == 1 {
                    let base = if name.ends_with("norm.weight") {
                        1.0
                    } else {
                        0.0
                    };
                    let v: Vec<f32> = (0..var.elem_count()).map(|_| base + next()).collect();
                    var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap())
                        .unwrap();
                }
            }
            // More rows than one rayon task holds, and repeated levels (the embedding and FiLM
            // are computed once per distinct level).
            let batch = 37;
            let x: Vec<f32> = (0..batch * 9).map(|_| 2.0 * next()).collect();
            let levels: Vec<usize> = (0..batch).map(|i| [0, 3, 7, 19, 11, 3][i % 6]).collect();
            let c: Vec<f32> = (0..batch * 9).map(|_| next()).collect();

            let view = model.cpu_view();
            let mut step = CpuStep::new(&view, batch).unwrap();
            let c_host = c.clone();
            let loss = step
                .run(&view, &x, &levels, &mut |out| {
                    let l: f32 = out.iter().zip(&c_host).map(|(o, c)| o * c).sum();
                    Ok((f64::from(l), c_host.clone()))
                })
                .unwrap();

            let xt = Tensor::from_slice(&x, (batch, 9), &Device::Cpu).unwrap();
            let lt = Tensor::from_vec(
                levels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
                batch,
                &Device::Cpu,
            )
            .unwrap();
            let ct = Tensor::from_slice(&c, (batch, 9), &Device::Cpu).unwrap();
            let out = model.network().forward(&xt, &lt).unwrap();
            let total = (out * ct).unwrap().sum_all().unwrap();
            let expected_loss = total.to_scalar::<f32>().unwrap();
            // The inference forward gives the same output.
            let level_f: Vec<f32> = levels.iter().map(|&l| l as f32).collect();
            let inferred = crate::cpu::infer(&view, &x, &level_f).unwrap().unwrap();
            let want: Vec<f32> = model
                .network()
                .forward(&xt, &lt)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            for (a, b) in inferred.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "{activation:?} infer: {a} vs {b}"
                );
            }
            assert!(
                (loss as f32 - expected_loss).abs() <= 1e-4 * expected_loss.abs().max(1.0),
                "{activation:?}: loss {loss} vs {expected_loss}"
            );
            let store = total.backward().unwrap();
            let vars = model.named_vars();
            let ours = grads_as_tensors(&step, &vars).unwrap();
            for ((name, var), g) in vars.iter().zip(&ours) {
                let want = store.get(var.as_tensor()).unwrap();
                let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
                let got: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
                let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() <= 2e-4 * scale,
                        "{activation:?} {name}: {a} vs {b} (scale {scale})"
                    );
                }
            }
            // The buffers are reused: a second run on other inputs gives that run's numbers.
            let x2: Vec<f32> = x.iter().map(|v| -v).collect();
            step.run(&view, &x2, &levels, &mut |_| Ok((0.0, c.clone())))
                .unwrap();
            let out2 = model
                .network()
                .forward(
                    &Tensor::from_slice(&x2, (batch, 9), &Device::Cpu).unwrap(),
                    &lt,
                )
                .unwrap();
            let want2 = (out2 * Tensor::from_slice(&c, (batch, 9), &Device::Cpu).unwrap())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let (name, var) = &vars[0];
            let want: Vec<f32> = want2
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            for (a, b) in step.grads()[0].iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-3 * b.abs().max(1.0),
                    "{name}: {a} vs {b}"
                );
            }
        }
    }
}
