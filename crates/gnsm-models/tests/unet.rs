//! The conv UNet: gradients reach every variable, shapes, up-sampling backward, a finite-
//! difference check through a stride-2 convolution, save/load.

use candle_core::{Device, Tensor, Var};
use gnsm_models::{upsample2, ModelError, UNetConfig, UNetModel};

fn tiny() -> UNetConfig {
    UNetConfig {
        image_channels: 3,
        classes: 4,
        channels: 8,
        channel_mults: vec![1, 2, 2],
        res_blocks: 1,
        attention: true,
        embedding_size: 16,
        groups: 4,
        seed: 2,
        ..Default::default()
    }
}

fn input(b: usize, c: usize, h: usize, w: usize) -> Tensor {
    let data: Vec<f32> = (0..b * c * h * w)
        .map(|i| ((i as f32) * 0.113).sin())
        .collect();
    Tensor::from_vec(data, (b, c, h, w), &Device::Cpu).unwrap()
}

#[test]
fn every_variable_gets_a_gradient_and_shapes_hold() {
    let model = UNetModel::new(tiny(), &Device::Cpu).unwrap();
    let x = input(3, 7, 12, 20);
    let levels = Tensor::new(&[0u32, 9, 19], &Device::Cpu).unwrap();
    let out = model.forward(&x, &levels).unwrap();
    assert_eq!(out.dims(), &[3, 4, 12, 20]);
    let grads = out.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    for (name, var) in model.named_vars() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
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
    // Sizes that do not divide by 4, and wrong channel counts, are errors.
    assert!(model
        .forward(
            &input(1, 7, 10, 20),
            &Tensor::new(&[0u32], &Device::Cpu).unwrap()
        )
        .is_err());
    assert!(model
        .forward(
            &input(1, 6, 12, 20),
            &Tensor::new(&[0u32], &Device::Cpu).unwrap()
        )
        .is_err());
    let bad = UNetConfig {
        groups: 3,
        ..tiny()
    };
    assert!(matches!(
        UNetModel::new(bad, &Device::Cpu),
        Err(ModelError::InvalidConfig { .. })
    ));
}

#[test]
fn upsampling_backward_sums_each_block() {
    let x = Var::from_tensor(&Tensor::new(&[[[[1f32, 2.0], [3.0, 4.0]]]], &Device::Cpu).unwrap())
        .unwrap();
    let up = upsample2(x.as_tensor()).unwrap();
    assert_eq!(up.dims(), &[1, 1, 4, 4]);
    let rows: Vec<Vec<f32>> = up
        .squeeze(0)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(rows[0], vec![1.0, 1.0, 2.0, 2.0]);
    assert_eq!(rows[3], vec![3.0, 3.0, 4.0, 4.0]);
    let weights: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let weights = Tensor::from_vec(weights, (1, 1, 4, 4), &Device::Cpu).unwrap();
    let grads = up
        .mul(&weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g: Vec<f32> = grads
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    // Block sums of 0..16 laid out 4×4: (0+1+4+5, 2+3+6+7, 8+9+12+13, 10+11+14+15).
    assert_eq!(g, vec![10.0, 18.0, 42.0, 50.0]);
}

#[test]
fn stride_two_convolution_gradient_matches_finite_differences() {
    let model = UNetModel::new(
        UNetConfig {
            attention: false,
            ..tiny()
        },
        &Device::Cpu,
    )
    .unwrap();
    let x = input(2, 7, 8, 8);
    let levels = Tensor::new(&[3u32, 15], &Device::Cpu).unwrap();
    let loss = |m: &UNetModel| -> f64 {
        let out = m.forward(&x, &levels).unwrap();
        f64::from(
            (out.sqr().unwrap().sum_all().unwrap() / 100.0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
        )
    };
    let out = model.forward(&x, &levels).unwrap();
    let grads = (out.sqr().unwrap().sum_all().unwrap() / 100.0)
        .unwrap()
        .backward()
        .unwrap();
    let (_, var) = model
        .named_vars()
        .into_iter()
        .find(|(n, _)| n == "downsample.0.weight")
        .expect("a stride-2 convolution");
    let g: Vec<f32> = grads
        .get(var.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let base: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    let dims = var.dims().to_vec();
    for &i in &[0usize, 17, 101, 250] {
        let h = 1e-2f32;
        let mut plus = base.clone();
        plus[i] += h;
        var.set(&Tensor::from_vec(plus, dims.as_slice(), &Device::Cpu).unwrap())
            .unwrap();
        let lp = loss(&model);
        let mut minus = base.clone();
        minus[i] -= h;
        var.set(&Tensor::from_vec(minus, dims.as_slice(), &Device::Cpu).unwrap())
            .unwrap();
        let lm = loss(&model);
        var.set(&Tensor::from_vec(base.clone(), dims.as_slice(), &Device::Cpu).unwrap())
            .unwrap();
        let fd = (lp - lm) / (2.0 * f64::from(h));
        let an = f64::from(g[i]);
        assert!(
            (an - fd).abs() <= 0.05 * fd.abs().max(an.abs()) + 1e-3,
            "entry {i}: {an} vs {fd}"
        );
    }
}

#[test]
fn save_and_load() {
    let model = UNetModel::new(tiny(), &Device::Cpu).unwrap();
    let dir = std::env::temp_dir().join(format!("gnsm-unet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("unet.safetensors");
    model.save(&path).unwrap();
    let back = UNetModel::load(&path, &Device::Cpu).unwrap();
    let x = input(1, 7, 8, 8);
    let l = Tensor::new(&[5u32], &Device::Cpu).unwrap();
    let a: Vec<f32> = model
        .forward(&x, &l)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let b: Vec<f32> = back
        .forward(&x, &l)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(a, b);
    std::fs::write(&path, b"garbage").unwrap();
    assert!(UNetModel::load(&path, &Device::Cpu).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
