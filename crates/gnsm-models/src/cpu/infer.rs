//! The tab-ResNet's inference forward on host buffers allocated once per call.

use super::math::{
    activation_fn, distinct_levels, film_in_place, fourier_features, layer_norm_rows, leaky_relu,
    linear_acc, linear_fwd, map, map_in_place, silu,
};
use super::params::{NetIdx, NetView};
use crate::ModelError;

/// Inference forward of `rows` rows `x` (row-major, the layout's width) at per-row `levels`
/// (as f32): the tab-ResNet without dropout on a handful of buffers allocated once per call
/// instead of one per op. `None` when the model is not a CPU f32 model.
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
        let mut feats = vec![0f32; u * e];
        let mut tmp = vec![0f32; u * e];
        let mut emb = vec![0f32; u * e];
        fourier_features(&mut feats, freqs, distinct.iter().copied(), e);
        linear_fwd(&mut tmp, &feats, p, idx.emb_0, u, e, e);
        map(&mut feats, &tmp, silu);
        linear_fwd(&mut tmp, &feats, p, idx.emb_1, u, e, e);
        map(&mut emb, &tmp, silu);
        drop((feats, tmp));

        let mut h = vec![0f32; b * w];
        let mut t = vec![0f32; b * w];
        let mut h1 = vec![0f32; b * w];
        let mut film = vec![0f32; 2 * u * w];
        linear_fwd(&mut h, x, p, idx.proj, b, d, w);
        let act = activation_fn(config.activation);
        for block in &idx.blocks {
            layer_norm_rows(&h, p[block.norm.weight], p[block.norm.bias], &mut t, w);
            map_in_place(&mut t, act);
            linear_fwd(&mut h1, &t, p, block.dense_1, b, w, w);
            linear_fwd(&mut film, &emb, p, block.film, u, e, 2 * w);
            film_in_place(&mut h1, &film, &row_level, w);
            linear_acc(&mut h, &h1, p, block.dense_2, b, w, w);
        }
        let norm = idx.head_norm;
        layer_norm_rows(&h, p[norm.weight], p[norm.bias], &mut t, w);
        map_in_place(&mut t, leaky_relu);
        let mut out = vec![0f32; b * d];
        linear_fwd(&mut out, &t, p, idx.head, b, w, d);
        Ok(Some(out))
    })
}
