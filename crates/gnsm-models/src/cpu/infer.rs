//! The tab-ResNet's inference forward on host buffers allocated once per call, for rows at
//! their own levels ([`infer`]) or for the same rows at several levels sharing the work that
//! does not depend on the level ([`infer_levels`]).

use super::math::{
    activate_for_inference, distinct_levels, film_in_place, fourier_features, layer_norm_rows,
    leaky_relu, linear_fwd, map, map_in_place, silu,
};
use super::params::{NetIdx, NetView};
use super::transposed::TransposedWeights;
use crate::ModelError;

/// Rows per inference tile: large enough that narrow networks do not pay a matmul call per
/// few rows (256 cost narrow networks a third of their scoring speed), small enough that
/// padding a short last tile costs little.
const TILE: usize = 1024;

/// Inference forward of `rows` rows `x` (row-major, the layout's width) at per-row `levels`
/// (as f32): the tab-ResNet without dropout on a handful of buffers allocated once per call
/// instead of one per op, in fixed tiles so that a row's output does not depend on the rows
/// beside it. `None` when the model is not a CPU f32 model.
///
/// # Errors
/// [`ModelError::Shape`] for a missing variable or inputs of the wrong size.
pub(crate) fn infer(
    model: &NetView<'_>,
    x: &[f32],
    levels: &[f32],
) -> Result<Option<Vec<f32>>, ModelError> {
    if !model.on_cpu_f32() {
        return Ok(None);
    }
    let b = levels.len();
    check_rows(model, x, b)?;
    let (mut distinct, mut row_level) = (Vec::new(), Vec::with_capacity(b));
    distinct_levels(levels.iter().copied(), &mut distinct, &mut row_level);
    let d = model.input_width;
    let mut out = vec![0f32; b * d];
    with_forward(model, &distinct, |f| {
        super::on_pool(|| {
            for start in (0..b).step_by(TILE) {
                let n = TILE.min(b - start);
                f.load(&x[start * d..(start + n) * d]);
                f.level[..n].copy_from_slice(&row_level[start..start + n]);
                f.level[n..].fill(0);
                f.project();
                f.blocks_and_head(0);
                out[start * d..(start + n) * d].copy_from_slice(&f.out[..n * d]);
            }
        });
        Ok(())
    })?;
    Ok(Some(out))
}

/// The same rows `x` at each of `levels` (as f32): per tile, the input projection and the
/// first block up to its FiLM (which depend on the row alone) run once, the rest once per
/// level. Each tile's outputs at level `levels[j]` go to `each(j, first_row, outputs)`,
/// tile by tile, every level of a tile before the next tile. The arithmetic per row is
/// [`infer`]'s, on tiles of the same shape: outputs are bit-identical to it. `false` when
/// the model is not a CPU f32 model (nothing was called).
///
/// # Errors
/// [`ModelError::Shape`] for a missing variable or inputs of the wrong size.
pub(crate) fn infer_levels(
    model: &NetView<'_>,
    x: &[f32],
    levels: &[f32],
    each: &mut dyn FnMut(usize, usize, &[f32]),
) -> Result<bool, ModelError> {
    if !model.on_cpu_f32() {
        return Ok(false);
    }
    let d = model.input_width;
    if x.len() % d.max(1) != 0 {
        return Err(ModelError::Shape {
            what: "network input",
            expected: format!("rows of {d}"),
            got: format!("{} values", x.len()),
        });
    }
    let b = x.len() / d.max(1);
    let w = model.config.width;
    // One FiLM row per level (distinct or not, so `j` indexes both).
    with_forward(model, levels, |f| {
        let (mut h0, mut pre) = (vec![0f32; TILE * w], vec![0f32; TILE * w]);
        for start in (0..b).step_by(TILE) {
            let n = TILE.min(b - start);
            let shared = super::on_pool(|| {
                f.load(&x[start * d..(start + n) * d]);
                f.project();
                h0.copy_from_slice(&f.h);
                let shared = f.first_block_before_film();
                if shared {
                    pre.copy_from_slice(&f.h1);
                }
                shared
            });
            for j in 0..levels.len() {
                // The callback need not be `Send`: the level's forward runs on the pool,
                // the callback here.
                super::on_pool(|| {
                    f.level.fill(j);
                    f.h.copy_from_slice(&h0);
                    if shared {
                        f.h1.copy_from_slice(&pre);
                        f.block_from_film(0);
                        f.blocks_and_head(1);
                    } else {
                        f.blocks_and_head(0);
                    }
                });
                each(j, start, &f.out[..n * d]);
            }
        }
        Ok(())
    })?;
    Ok(true)
}

fn check_rows(model: &NetView<'_>, x: &[f32], rows: usize) -> Result<(), ModelError> {
    let d = model.input_width;
    if x.len() != rows * d {
        return Err(ModelError::Shape {
            what: "network input",
            expected: format!("{rows} rows of {d}"),
            got: format!("{} values", x.len()),
        });
    }
    Ok(())
}

/// One tile's buffers and the network's parameters: the forward split where the level
/// first enters (the first block's FiLM).
struct Forward<'a> {
    p: &'a [&'a [f32]],
    idx: &'a NetIdx,
    /// The large weights transposed (copied once per call).
    weights_t: &'a TransposedWeights,
    /// Per block, `levels × 2w` FiLM rows `γ | β`.
    films: &'a [f32],
    levels: usize,
    act: crate::Activation,
    w: usize,
    d: usize,
    input: Vec<f32>,
    h: Vec<f32>,
    t: Vec<f32>,
    h1: Vec<f32>,
    out: Vec<f32>,
    /// Each tile row's index into the levels.
    level: Vec<usize>,
}

impl<'a> Forward<'a> {
    /// Copy `rows` (at most a tile) into the input, the rest of the tile zero.
    fn load(&mut self, rows: &[f32]) {
        self.input[..rows.len()].copy_from_slice(rows);
        self.input[rows.len()..].fill(0.0);
    }

    fn project(&mut self) {
        self.weights_t.linear(
            &mut self.h,
            false,
            &self.input,
            self.p,
            self.idx.proj,
            TILE,
            self.d,
            self.w,
        );
    }

    /// The first block's LayerNorm, activation and first linear into `h1` (the part of the
    /// network before the level enters); `false` for a network without blocks.
    fn first_block_before_film(&mut self) -> bool {
        if self.idx.blocks.is_empty() {
            return false;
        }
        self.block_before_film(0);
        true
    }

    /// Block `i`'s LayerNorm, activation and first linear, from the stream `h` into `h1`.
    fn block_before_film(&mut self, i: usize) {
        let (p, w, block) = (self.p, self.w, self.idx.blocks[i]);
        layer_norm_rows(
            &self.h,
            p[block.norm.weight],
            p[block.norm.bias],
            &mut self.t,
            w,
        );
        activate_for_inference(&mut self.t, self.act);
        self.weights_t
            .linear(&mut self.h1, false, &self.t, p, block.dense_1, TILE, w, w);
    }

    /// Block `i`'s FiLM and second linear on `h1`, added to the stream `h`.
    fn block_from_film(&mut self, i: usize) {
        let (w, block) = (self.w, self.idx.blocks[i]);
        let film = self.film_rows(i);
        film_in_place(&mut self.h1, film, &self.level, w);
        self.weights_t.linear(
            &mut self.h,
            true,
            &self.h1,
            self.p,
            block.dense_2,
            TILE,
            w,
            w,
        );
    }

    /// Block `block`'s FiLM rows, one per level.
    fn film_rows(&self, block: usize) -> &'a [f32] {
        let size = self.levels * 2 * self.w;
        &self.films[block * size..(block + 1) * size]
    }

    /// Blocks `from..` and the head, from the stream `h` into `out`.
    fn blocks_and_head(&mut self, from: usize) {
        let (p, w, idx) = (self.p, self.w, self.idx);
        for i in from..idx.blocks.len() {
            self.block_before_film(i);
            self.block_from_film(i);
        }
        let norm = idx.head_norm;
        layer_norm_rows(&self.h, p[norm.weight], p[norm.bias], &mut self.t, w);
        map_in_place(&mut self.t, leaky_relu);
        self.weights_t
            .linear(&mut self.out, false, &self.t, p, idx.head, TILE, w, self.d);
    }
}

/// Run `f` with a [`Forward`] over the model's parameters, conditioned on `levels`: the level
/// embedding and every block's FiLM computed one level at a time (a matmul of one row, so
/// that a level's values never depend on which other levels share the call).
fn with_forward(
    model: &NetView<'_>,
    levels: &[f32],
    f: impl FnOnce(&mut Forward<'_>) -> Result<(), ModelError>,
) -> Result<(), ModelError> {
    let config = model.config;
    let (w, e, d) = (config.width, config.embedding_size, model.input_width);
    let names: Vec<String> = model.vars.iter().map(|(n, _)| n.clone()).collect();
    let idx = NetIdx::new(&names, config.depth)?;
    let u = levels.len();
    model.with_params(|p, freqs| {
        let mut feats = vec![0f32; e];
        let mut tmp = vec![0f32; e];
        let mut emb = vec![0f32; u * e];
        for (&level, emb) in levels.iter().zip(emb.chunks_exact_mut(e)) {
            fourier_features(&mut feats, freqs, std::iter::once(level), e);
            linear_fwd(&mut tmp, &feats, p, idx.emb_0, 1, e, e);
            map(&mut feats, &tmp, silu);
            linear_fwd(&mut tmp, &feats, p, idx.emb_1, 1, e, e);
            map(emb, &tmp, silu);
        }
        let mut films = vec![0f32; idx.blocks.len() * u * 2 * w];
        for (block, film) in idx.blocks.iter().zip(films.chunks_exact_mut(u * 2 * w)) {
            for (emb, film) in emb.chunks_exact(e).zip(film.chunks_exact_mut(2 * w)) {
                linear_fwd(film, emb, p, block.film, 1, e, 2 * w);
            }
        }
        // Tiles of TILE rows (the last one padded with zero rows): every matmul has the same
        // shape, so a row's output is bit-identical however the rows were batched (scoring a
        // file in one process or in Spark partitions gives equal scores).
        let mut weights_t = TransposedWeights::default();
        weights_t.refresh(p, &idx, d, w);
        let mut forward = Forward {
            p,
            idx: &idx,
            weights_t: &weights_t,
            films: &films,
            levels: u,
            act: config.activation,
            w,
            d,
            input: vec![0f32; TILE * d],
            h: vec![0f32; TILE * w],
            t: vec![0f32; TILE * w],
            h1: vec![0f32; TILE * w],
            out: vec![0f32; TILE * d],
            level: vec![0usize; TILE],
        };
        f(&mut forward)
    })
}
