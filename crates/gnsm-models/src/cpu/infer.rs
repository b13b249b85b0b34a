//! The tab-ResNet's inference forward on host buffers allocated once per call.

use super::math::{
    activation_fn, distinct_levels, film_in_place, fourier_features, layer_norm_rows, leaky_relu,
    linear_acc, linear_fwd, map, map_in_place, silu,
};
use super::params::{NetIdx, NetView};
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
    let config = model.config;
    let (w, e) = (config.width, config.embedding_size);
    let d = model.input_width;
    let b = levels.len();
    if x.len() != b * d {
        return Err(ModelError::Shape {
            what: "network input",
            expected: format!("{b} rows of {d}"),
            got: format!("{} values", x.len()),
        });
    }
    let names: Vec<String> = model.vars.iter().map(|(n, _)| n.clone()).collect();
    let idx = NetIdx::new(&names, config.depth)?;
    let (mut distinct, mut row_level) = (Vec::new(), Vec::with_capacity(b));
    distinct_levels(levels.iter().copied(), &mut distinct, &mut row_level);
    let u = distinct.len();
    model.with_params(|p, freqs| {
        // The level embedding and every block's FiLM, one level at a time: a matmul of one
        // row, so that a level's values never depend on which other levels share the call.
        let mut feats = vec![0f32; e];
        let mut tmp = vec![0f32; e];
        let mut emb = vec![0f32; u * e];
        for (&level, emb) in distinct.iter().zip(emb.chunks_exact_mut(e)) {
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
        drop((feats, tmp, emb));

        // The body in tiles of TILE rows (the last one padded with zero rows): every matmul
        // has the same shape, so a row's output is bit-identical however the rows were
        // batched (scoring a file in one process or in Spark partitions gives equal scores).
        let tile = TILE;
        let mut h = vec![0f32; tile * w];
        let mut t = vec![0f32; tile * w];
        let mut h1 = vec![0f32; tile * w];
        let mut input = vec![0f32; tile * d];
        let mut tile_out = vec![0f32; tile * d];
        let mut tile_level = vec![0usize; tile];
        let mut out = vec![0f32; b * d];
        let act = activation_fn(config.activation);
        for start in (0..b).step_by(tile) {
            let n = tile.min(b - start);
            input[..n * d].copy_from_slice(&x[start * d..(start + n) * d]);
            input[n * d..].fill(0.0);
            tile_level[..n].copy_from_slice(&row_level[start..start + n]);
            tile_level[n..].fill(0);
            linear_fwd(&mut h, &input, p, idx.proj, tile, d, w);
            for (block, film) in idx.blocks.iter().zip(films.chunks_exact(u * 2 * w)) {
                layer_norm_rows(&h, p[block.norm.weight], p[block.norm.bias], &mut t, w);
                map_in_place(&mut t, act);
                linear_fwd(&mut h1, &t, p, block.dense_1, tile, w, w);
                film_in_place(&mut h1, film, &tile_level, w);
                linear_acc(&mut h, &h1, p, block.dense_2, tile, w, w);
            }
            let norm = idx.head_norm;
            layer_norm_rows(&h, p[norm.weight], p[norm.bias], &mut t, w);
            map_in_place(&mut t, leaky_relu);
            linear_fwd(&mut tile_out, &t, p, idx.head, tile, w, d);
            out[start * d..(start + n) * d].copy_from_slice(&tile_out[..n * d]);
        }
        Ok(Some(out))
    })
}
