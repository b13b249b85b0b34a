//! The tab-ResNet: gradients reach every variable, shapes, group scores, a forward pass
//! pinned to an independent naive f64 implementation, save/load.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use gnsm_losses::{GroupSoftmax, GroupStrategy};
use gnsm_models::{ModelError, TabResNetConfig, TabResNetModel, FOURIER_KEY};
use gnsm_noise::FeatureLayout;

fn small(width: usize, depth: usize) -> TabResNetConfig {
    TabResNetConfig {
        width,
        depth,
        embedding_size: 8,
        seed: 3,
        ..Default::default()
    }
}

fn input(rows: usize, width: usize, salt: f32) -> Tensor {
    let data: Vec<f32> = (0..rows * width)
        .map(|i| (i as f32 * 0.37 + salt).sin() * 2.0)
        .collect();
    Tensor::from_vec(data, (rows, width), &Device::Cpu).unwrap()
}

#[test]
fn every_variable_gets_a_gradient() {
    let layout = FeatureLayout::new(2, vec![3, 4]).unwrap();
    let model = TabResNetModel::new(small(16, 3), layout, &Device::Cpu).unwrap();
    let x = input(5, 9, 0.0);
    let levels = Tensor::new(&[0u32, 3, 7, 12, 19], &Device::Cpu).unwrap();
    let out = model.forward(&x, &levels).unwrap();
    let loss = out.sqr().unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let vars = model.named_vars();
    assert_eq!(
        vars.len(),
        4 + 2 + 3 * 8 + 2 + 2,
        "embedding 4, proj 2, 8 per block, head norm 2, head 2"
    );
    for (name, var) in vars {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} got no gradient"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            norm > 0.0 && norm.is_finite(),
            "{name}: gradient norm {norm}"
        );
    }
}

#[test]
fn shapes_for_odd_sizes_and_group_scores_sum_to_zero() {
    for (cont, groups, rows) in [(0, vec![2], 1), (3, vec![5, 2, 7], 13), (1, vec![], 3)] {
        let layout = FeatureLayout::new(cont, groups.clone()).unwrap();
        let model = TabResNetModel::new(small(7, 2), layout.clone(), &Device::Cpu).unwrap();
        let x = input(rows, layout.width(), 1.0);
        let levels = Tensor::from_vec(
            (0..rows as u32).map(|i| i % 20).collect::<Vec<_>>(),
            rows,
            &Device::Cpu,
        )
        .unwrap();
        let out = model.forward(&x, &levels).unwrap();
        assert_eq!(out.dims(), &[rows, layout.width()]);
        let taus = Tensor::from_vec(vec![2.5f32; rows], rows, &Device::Cpu).unwrap();
        let gs = GroupSoftmax::new(&layout, GroupStrategy::Narrow, &Device::Cpu).unwrap();
        let scores: Vec<Vec<f32>> = gs.scores(&out, &taus).unwrap().to_vec2().unwrap();
        for row in scores {
            for r in layout.group_ranges() {
                let s: f32 = row[r].iter().sum();
                assert!(s.abs() < 1e-4, "group score sums to {s}");
            }
        }
    }
    let model = TabResNetModel::new(
        small(8, 1),
        FeatureLayout::categorical(vec![2, 2]).unwrap(),
        &Device::Cpu,
    )
    .unwrap();
    let wrong = input(2, 5, 0.0);
    let levels = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
    assert!(matches!(
        model.forward(&wrong, &levels),
        Err(ModelError::Shape { .. })
    ));
}

// ---- an independent naive forward pass in f64 -------------------------------------------

fn weights(model: &TabResNetModel) -> HashMap<String, Vec<f64>> {
    model
        .tensors()
        .into_iter()
        .map(|(k, t)| {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            (k, v.into_iter().map(f64::from).collect())
        })
        .collect()
}

fn linear(w: &HashMap<String, Vec<f64>>, name: &str, x: &[f64], out: usize) -> Vec<f64> {
    let (wt, b) = (&w[&format!("{name}.weight")], &w[&format!("{name}.bias")]);
    let inp = x.len();
    (0..out)
        .map(|o| b[o] + (0..inp).map(|i| wt[o * inp + i] * x[i]).sum::<f64>())
        .collect()
}

fn layer_norm(w: &HashMap<String, Vec<f64>>, name: &str, x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let (g, b) = (&w[&format!("{name}.weight")], &w[&format!("{name}.bias")]);
    x.iter()
        .enumerate()
        .map(|(i, v)| (v - mean) / (var + 1e-5).sqrt() * g[i] + b[i])
        .collect()
}

fn naive_forward(model: &TabResNetModel, x: &[f64], level: f64) -> Vec<f64> {
    let w = weights(model);
    let c = model.config();
    let silu = |v: f64| v / (1.0 + (-v).exp());
    let gelu = |v: f64| 0.5 * v * (1.0 + statrs::function::erf::erf(v / std::f64::consts::SQRT_2));
    let freqs = &w[FOURIER_KEY];
    let mut emb: Vec<f64> = freqs
        .iter()
        .map(|f| (2.0 * std::f64::consts::PI * level * f).sin())
        .collect();
    emb.extend(
        freqs
            .iter()
            .map(|f| (2.0 * std::f64::consts::PI * level * f).cos()),
    );
    let e = c.embedding_size;
    let emb: Vec<f64> = linear(&w, "embedding.dense_0", &emb, e)
        .into_iter()
        .map(silu)
        .collect();
    let emb: Vec<f64> = linear(&w, "embedding.dense_1", &emb, e)
        .into_iter()
        .map(silu)
        .collect();
    let mut h = linear(&w, "proj", x, c.width);
    for b in 0..c.depth {
        let p = format!("blocks.{b}");
        let a: Vec<f64> = layer_norm(&w, &format!("{p}.norm"), &h)
            .into_iter()
            .map(gelu)
            .collect();
        let a = linear(&w, &format!("{p}.dense_1"), &a, c.width);
        let film = linear(&w, &format!("{p}.film"), &emb, 2 * c.width);
        let a: Vec<f64> = (0..c.width)
            .map(|i| a[i] * film[i] + film[c.width + i])
            .collect();
        let a = linear(&w, &format!("{p}.dense_2"), &a, c.width);
        h = h.iter().zip(&a).map(|(x, y)| x + y).collect();
    }
    let h: Vec<f64> = layer_norm(&w, "head_norm", &h)
        .into_iter()
        .map(|v| if v > 0.0 { v } else { 0.01 * v })
        .collect();
    linear(&w, "head", &h, x.len())
}

#[test]
fn forward_matches_a_naive_implementation() {
    let layout = FeatureLayout::new(2, vec![3, 5]).unwrap();
    let model = TabResNetModel::new(small(24, 3), layout, &Device::Cpu).unwrap();
    let x = input(4, 10, 0.5);
    let levels = [0u32, 4, 11, 19];
    let out: Vec<Vec<f32>> = model
        .forward(&x, &Tensor::new(&levels, &Device::Cpu).unwrap())
        .unwrap()
        .to_vec2()
        .unwrap();
    let rows: Vec<Vec<f32>> = x.to_vec2().unwrap();
    for (r, row) in rows.iter().enumerate() {
        let xr: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        let expected = naive_forward(&model, &xr, f64::from(levels[r]));
        for (a, b) in out[r].iter().zip(&expected) {
            assert!(
                (f64::from(*a) - b).abs() < 2e-4 * (1.0 + b.abs()),
                "row {r}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn save_load_round_trip_and_bad_files() {
    let layout = FeatureLayout::new(1, vec![2, 3]).unwrap();
    let model = TabResNetModel::new(small(12, 2), layout, &Device::Cpu).unwrap();
    let dir = std::env::temp_dir().join(format!("gnsm-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    model.save(&path).unwrap();
    let back = TabResNetModel::load(&path, &Device::Cpu).unwrap();
    let x = input(3, 6, 2.0);
    let levels = Tensor::new(&[1u32, 2, 3], &Device::Cpu).unwrap();
    let a: Vec<Vec<f32>> = model.forward(&x, &levels).unwrap().to_vec2().unwrap();
    let b: Vec<Vec<f32>> = back.forward(&x, &levels).unwrap().to_vec2().unwrap();
    assert_eq!(a, b);
    assert_eq!(back.config(), model.config());
    // Same seed, same weights; another seed, other weights.
    let again = TabResNetModel::new(small(12, 2), model.layout().clone(), &Device::Cpu).unwrap();
    assert_eq!(
        again
            .forward(&x, &levels)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap(),
        a
    );
    // Corrupt and foreign files are errors.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    assert!(matches!(
        TabResNetModel::load(&path, &Device::Cpu),
        Err(ModelError::Checkpoint { .. })
    ));
    let plain = dir.join("plain.safetensors");
    candle_core::safetensors::save(
        &HashMap::from([(
            "w".to_string(),
            Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
        )]),
        &plain,
    )
    .unwrap();
    let err = TabResNetModel::load(&plain, &Device::Cpu).unwrap_err();
    assert!(
        err.to_string().contains("not a gnsm-tab-resnet file"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inference_of_a_row_does_not_depend_on_the_rows_beside_it() {
    let layout = FeatureLayout::new(2, vec![3, 4, 5]).unwrap();
    let model = TabResNetModel::new(small(64, 2), layout, &Device::Cpu).unwrap();
    let rows = 2100;
    let x = input(rows, 14, 0.5);
    let level_ids: Vec<u32> = (0..rows as u32).map(|i| (i * 7) % 20).collect();
    let levels = Tensor::new(level_ids.as_slice(), &Device::Cpu).unwrap();
    let all: Vec<Vec<f32>> = model.infer(&x, &levels).unwrap().to_vec2().unwrap();
    // Other batchings (a single row, a tile boundary, a remainder) and another order.
    for (start, len) in [(0, 1), (1, 1023), (1000, 1100), (2000, 100), (3, 17)] {
        let part = model
            .infer(
                &x.narrow(0, start, len).unwrap(),
                &levels.narrow(0, start, len).unwrap(),
            )
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (i, row) in part.iter().enumerate() {
            assert_eq!(
                row,
                &all[start + i],
                "row {} batched from {start}",
                start + i
            );
        }
    }
    let order: Vec<u32> = (0..rows as u32).rev().collect();
    let order = Tensor::new(order.as_slice(), &Device::Cpu).unwrap();
    let reversed = model
        .infer(
            &x.index_select(&order, 0).unwrap(),
            &levels.index_select(&order, 0).unwrap(),
        )
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (i, row) in reversed.iter().enumerate() {
        assert_eq!(row, &all[rows - 1 - i], "row {} reversed", rows - 1 - i);
    }
}

#[test]
fn inference_at_several_levels_equals_inference_at_each() {
    let layout = FeatureLayout::new(2, vec![3, 4, 5]).unwrap();
    // Two tiles and a remainder; a repeated level; one block and three.
    let rows = 2100;
    let x = input(rows, 14, 0.25);
    let host = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let levels = [19usize, 0, 7, 0];
    for depth in [1, 3] {
        let model = TabResNetModel::new(small(32, depth), layout.clone(), &Device::Cpu).unwrap();
        let mut shared = vec![vec![0f32; rows * 14]; levels.len()];
        let mut calls = Vec::new();
        model
            .infer_levels(&host, &levels, |j, first, out| {
                calls.push((j, first));
                shared[j][first * 14..first * 14 + out.len()].copy_from_slice(out);
            })
            .unwrap();
        // Tile by tile, every level of a tile before the next.
        let expected: Vec<(usize, usize)> = [0, 1024, 2048]
            .iter()
            .flat_map(|&f| (0..levels.len()).map(move |j| (j, f)))
            .collect();
        assert_eq!(calls, expected);
        for (j, &level) in levels.iter().enumerate() {
            let l = Tensor::new(vec![level as u32; rows].as_slice(), &Device::Cpu).unwrap();
            let each = model.infer(&x, &l).unwrap().flatten_all().unwrap();
            assert_eq!(
                each.to_vec1::<f32>().unwrap(),
                shared[j],
                "depth {depth}, level {level}: shared work must not change a bit"
            );
        }
    }
    let model = TabResNetModel::new(small(32, 1), layout, &Device::Cpu).unwrap();
    let err = model
        .infer_levels(&host[..13], &[0], |_, _, _| {})
        .unwrap_err();
    assert!(matches!(err, ModelError::Shape { .. }), "{err}");
}
