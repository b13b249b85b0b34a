//! The GNSM objectives against hand computations, a naive f64 reference, and finite
//! differences, on the mixed layout of the issue (groups of 2, 5 and 17 plus 4 continuous).

use candle_core::{DType, Device, Tensor, Var};
use gnsm_losses::{CategoricalObjective, GnsmLoss, GroupStrategy, LossConfig};
use gnsm_noise::{perturb_batch, FeatureLayout, NoiseRng, NoiseSchedule, Perturbation};
use rand::{Rng, SeedableRng};

const STRATEGIES: [GroupStrategy; 2] = [GroupStrategy::Padded, GroupStrategy::Narrow];
const OBJECTIVES: [CategoricalObjective; 2] = [CategoricalObjective::Kl, CategoricalObjective::Mse];

fn mixed() -> FeatureLayout {
    FeatureLayout::new(4, vec![2, 5, 17]).unwrap()
}

fn perturbed(layout: &FeatureLayout, rows: usize, seed: u64) -> Perturbation {
    let mut rng = NoiseRng::seed_from_u64(seed);
    let mut clean = Vec::new();
    for _ in 0..rows {
        for _ in 0..layout.continuous() {
            clean.push(rng.random_range(-2.0f32..2.0));
        }
        for &k in layout.groups() {
            let hot = rng.random_range(0..k);
            clean.extend((0..k).map(|j| {
                if j == hot {
                    0.0
                } else {
                    gnsm_noise::LOG_ONE_HOT_COLD
                }
            }));
        }
    }
    let levels: Vec<usize> = (0..rows).map(|_| rng.random_range(0..20)).collect();
    let mut out = Perturbation::default();
    perturb_batch(
        &clean,
        layout,
        &NoiseSchedule::default(),
        &levels,
        &mut rng,
        &mut out,
    )
    .unwrap();
    out
}

/// Independent f64 reference: loops over rows and groups, straight from the formulas.
fn naive_loss(
    layout: &FeatureLayout,
    noise: &Perturbation,
    output: &[f64],
    objective: CategoricalObjective,
) -> f64 {
    let w = layout.width();
    let cw = layout.categorical_width();
    let c = layout.continuous();
    let softmax = |v: &[f64]| {
        let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = v.iter().map(|x| (x - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|x| x / s).collect::<Vec<_>>()
    };
    let mut total = 0.0;
    for b in 0..noise.rows {
        let tau = f64::from(noise.temperatures[b]);
        for r in layout.group_ranges() {
            // The target softmax(ε) as the perturbation delivers it (gnsm-noise tests check it
            // against softmax of the logit noise).
            let p: Vec<f64> = noise.target_probs[b * cw + r.start - c..b * cw + r.end - c]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let q = softmax(&output[b * w + r.start..b * w + r.end]);
            let k = r.len() as f64;
            total += match objective {
                CategoricalObjective::Kl => p
                    .iter()
                    .zip(&q)
                    .map(|(p, q)| if *p > 0.0 { p * (p / q).ln() } else { 0.0 })
                    .sum::<f64>(),
                CategoricalObjective::Mse => {
                    0.5 * tau
                        * tau
                        * k
                        * k
                        * p.iter().zip(&q).map(|(p, q)| (q - p).powi(2)).sum::<f64>()
                }
            };
        }
        for j in 0..c {
            let s = output[b * w + j];
            let t = f64::from(noise.continuous_target[b * c + j]);
            total += 0.5 * (s - t).powi(2);
        }
    }
    total / noise.rows as f64
}

fn loss_value(loss: &GnsmLoss, noise: &Perturbation, output: &[f64], dtype: DType) -> f64 {
    let w = loss.layout().width();
    let t = Tensor::from_slice(output, (noise.rows, w), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
    let targets = loss.targets(noise, dtype).unwrap();
    loss.forward(&t, &targets)
        .unwrap()
        .total
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

fn perfect_output(layout: &FeatureLayout, noise: &Perturbation) -> Vec<f64> {
    let (c, cw) = (layout.continuous(), layout.categorical_width());
    (0..noise.rows)
        .flat_map(|b| {
            noise.continuous_target[b * c..(b + 1) * c]
                .iter()
                .chain(&noise.logit_noise[b * cw..(b + 1) * cw])
                .map(|&v| f64::from(v))
        })
        .collect()
}

#[test]
fn zero_loss_at_the_target() {
    let layout = mixed();
    let noise = perturbed(&layout, 32, 1);
    let perfect = perfect_output(&layout, &noise);
    for strategy in STRATEGIES {
        for objective in OBJECTIVES {
            let loss = GnsmLoss::new(
                &layout,
                LossConfig {
                    objective,
                    strategy,
                },
                &Device::Cpu,
            )
            .unwrap();
            let v = loss_value(&loss, &noise, &perfect, DType::F32);
            assert!(v.abs() < 1e-4, "{strategy:?} {objective:?}: {v}");
            // Targets are f32 probabilities, hence 1e-6 and not 1e-12 in f64 below.
            // Shifting every group's logits by a constant changes nothing (softmax invariance).
            let mut shifted = perfect.clone();
            for row in shifted.chunks_mut(layout.width()) {
                for (g, r) in layout.group_ranges().enumerate() {
                    row[r].iter_mut().for_each(|v| *v += 3.0 * g as f64 - 1.0);
                }
            }
            let v = loss_value(&loss, &noise, &shifted, DType::F64);
            assert!(v.abs() < 1e-6, "{strategy:?} {objective:?} shifted: {v}");
        }
    }
}

#[test]
fn hand_computed_values() {
    // One row, one group of K = 2 at τ = 2 with ε = (0, 0), so p = (1/2, 1/2), and one
    // continuous feature with target -n/σ = 1.5. Output: continuous score 0.5, logits
    // (0, ln 3), so q = (1/4, 3/4).
    //   KL  = ½ ln(½/¼) + ½ ln(½/¾) = ½ ln(4/3) = 0.143841036225890
    //   MSE = ½ · τ²K² · ((¼-½)² + (¾-½)²) = ½ · 16 · ⅛ = 1
    //   DSM = ½ (0.5 - 1.5)² = 0.5
    let layout = FeatureLayout::new(1, vec![2]).unwrap();
    let noise = Perturbation {
        rows: 1,
        noisy: vec![0.0; 3],
        logit_noise: vec![0.0, 0.0],
        target_probs: vec![0.5, 0.5],
        target_neg_entropy: vec![0.5f64.ln()],
        continuous_target: vec![1.5],
        temperatures: vec![2.0],
        sigmas: vec![0.5],
        levels: vec![19],
    };
    let output = [0.5, 0.0, 3f64.ln()];
    for strategy in STRATEGIES {
        let kl = GnsmLoss::new(
            &layout,
            LossConfig {
                objective: CategoricalObjective::Kl,
                strategy,
            },
            &Device::Cpu,
        )
        .unwrap();
        let mse = GnsmLoss::new(
            &layout,
            LossConfig {
                objective: CategoricalObjective::Mse,
                strategy,
            },
            &Device::Cpu,
        )
        .unwrap();
        approx::assert_relative_eq!(
            loss_value(&kl, &noise, &output, DType::F64),
            0.143_841_036_225_890 + 0.5,
            epsilon = 1e-12
        );
        approx::assert_relative_eq!(
            loss_value(&mse, &noise, &output, DType::F64),
            1.0 + 0.5,
            epsilon = 1e-12
        );
    }
}

#[test]
fn matches_naive_reference_and_strategies_agree() {
    let layout = mixed();
    let noise = perturbed(&layout, 16, 7);
    let mut rng = NoiseRng::seed_from_u64(70);
    let output: Vec<f64> = (0..16 * layout.width())
        .map(|_| rng.random_range(-4.0..4.0))
        .collect();
    for objective in OBJECTIVES {
        let reference = naive_loss(&layout, &noise, &output, objective);
        assert!(reference > 0.1);
        for strategy in STRATEGIES {
            let loss = GnsmLoss::new(
                &layout,
                LossConfig {
                    objective,
                    strategy,
                },
                &Device::Cpu,
            )
            .unwrap();
            let v64 = loss_value(&loss, &noise, &output, DType::F64);
            approx::assert_relative_eq!(v64, reference, max_relative = 1e-6);
            let v32 = loss_value(&loss, &noise, &output, DType::F32);
            approx::assert_relative_eq!(v32, reference, max_relative = 1e-4);
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let layout = mixed();
    let rows = 3;
    let noise = perturbed(&layout, rows, 11);
    let mut rng = NoiseRng::seed_from_u64(110);
    let output: Vec<f64> = (0..rows * layout.width())
        .map(|_| rng.random_range(-3.0..3.0))
        .collect();
    for objective in OBJECTIVES {
        for strategy in STRATEGIES {
            let loss = GnsmLoss::new(
                &layout,
                LossConfig {
                    objective,
                    strategy,
                },
                &Device::Cpu,
            )
            .unwrap();
            let targets = loss.targets(&noise, DType::F64).unwrap();
            let var = Var::from_tensor(
                &Tensor::from_slice(&output, (rows, layout.width()), &Device::Cpu).unwrap(),
            )
            .unwrap();
            let parts = loss.forward(var.as_tensor(), &targets).unwrap();
            let grads = parts.total.backward().unwrap();
            let grad: Vec<f64> = grads
                .get(&var)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let h = 1e-6;
            for i in 0..output.len() {
                let mut plus = output.clone();
                let mut minus = output.clone();
                plus[i] += h;
                minus[i] -= h;
                let fd = (naive_loss(&layout, &noise, &plus, objective)
                    - naive_loss(&layout, &noise, &minus, objective))
                    / (2.0 * h);
                assert!(
                    (grad[i] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{objective:?} {strategy:?} entry {i}: {} vs {fd}",
                    grad[i]
                );
            }
            // The logit gradient of each group sums to zero (softmax is shift-invariant).
            for row in grad.chunks(layout.width()) {
                for r in layout.group_ranges() {
                    let s: f64 = row[r].iter().sum();
                    assert!(
                        s.abs() < 1e-9,
                        "{objective:?} {strategy:?}: group gradient sums to {s}"
                    );
                }
            }
        }
    }
}

#[test]
fn purely_categorical_and_purely_continuous_layouts() {
    for layout in [
        FeatureLayout::categorical(vec![3, 4]).unwrap(),
        FeatureLayout::new(3, vec![]).unwrap(),
    ] {
        let noise = perturbed(&layout, 5, 3);
        let perfect = perfect_output(&layout, &noise);
        for strategy in STRATEGIES {
            for objective in OBJECTIVES {
                let loss = GnsmLoss::new(
                    &layout,
                    LossConfig {
                        objective,
                        strategy,
                    },
                    &Device::Cpu,
                )
                .unwrap();
                assert!(loss_value(&loss, &noise, &perfect, DType::F64).abs() < 1e-6);
                let mut off = perfect.clone();
                off[0] += 1.0;
                let expected = naive_loss(&layout, &noise, &off, objective);
                approx::assert_relative_eq!(
                    loss_value(&loss, &noise, &off, DType::F64),
                    expected,
                    max_relative = 1e-5
                );
            }
        }
    }
}

#[test]
fn mismatched_shapes_are_errors() {
    let layout = mixed();
    let noise = perturbed(&layout, 4, 0);
    let loss = GnsmLoss::new(&layout, LossConfig::default(), &Device::Cpu).unwrap();
    let targets = loss.targets(&noise, DType::F32).unwrap();
    let wrong_width = Tensor::zeros((4, layout.width() + 1), DType::F32, &Device::Cpu).unwrap();
    assert!(loss.forward(&wrong_width, &targets).is_err());
    let wrong_rows = Tensor::zeros((3, layout.width()), DType::F32, &Device::Cpu).unwrap();
    assert!(loss.forward(&wrong_rows, &targets).is_err());
    let other = perturbed(&FeatureLayout::categorical(vec![2]).unwrap(), 4, 0);
    assert!(loss.targets(&other, DType::F32).is_err());
    // Targets built for KL cannot feed an MSE loss.
    let mse = GnsmLoss::new(
        &layout,
        LossConfig {
            objective: CategoricalObjective::Mse,
            ..Default::default()
        },
        &Device::Cpu,
    )
    .unwrap();
    let zeros = Tensor::zeros((4, layout.width()), DType::F32, &Device::Cpu).unwrap();
    assert!(mse.forward(&zeros, &targets).is_err());
}

/// The one-pass host loss: its value equals the naive f64 reference and the candle path, its
/// gradient equals candle's autograd and central differences of the f64 reference.
#[test]
fn host_loss_matches_candle_and_finite_differences() {
    let layout = mixed();
    let w = layout.width();
    for objective in OBJECTIVES {
        let noise = perturbed(&layout, 6, 11);
        let mut rng = NoiseRng::seed_from_u64(5);
        let output: Vec<f64> = (0..noise.rows * w)
            .map(|_| rng.random_range(-3.0f64..3.0))
            .collect();
        let out32: Vec<f32> = output.iter().map(|&v| v as f32).collect();
        let mut grad = vec![0f32; out32.len()];
        let (cat, cont) =
            gnsm_losses::loss_and_grad(&layout, objective, &noise, &out32, &mut grad).unwrap();
        let naive = naive_loss(&layout, &noise, &output, objective);
        assert!(
            ((cat + cont) - naive).abs() <= 1e-5 * (1.0 + naive.abs()),
            "{objective:?}: host {} vs naive {naive}",
            cat + cont
        );

        // Candle: value and autograd gradient, Narrow strategy (the trainer's default).
        let loss = GnsmLoss::new(
            &layout,
            LossConfig {
                objective,
                strategy: GroupStrategy::Narrow,
            },
            &Device::Cpu,
        )
        .unwrap();
        let var =
            Var::from_tensor(&Tensor::from_slice(&out32, (noise.rows, w), &Device::Cpu).unwrap())
                .unwrap();
        let targets = loss.targets(&noise, DType::F32).unwrap();
        let parts = loss.forward(var.as_tensor(), &targets).unwrap();
        let total = f64::from(parts.total.to_scalar::<f32>().unwrap());
        assert!(
            ((cat + cont) - total).abs() <= 1e-5 * (1.0 + total.abs()),
            "{objective:?}"
        );
        let candle_grad: Vec<f32> = parts
            .total
            .backward()
            .unwrap()
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (i, (a, b)) in grad.iter().zip(&candle_grad).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 + 1e-4 * b.abs(),
                "{objective:?} [{i}]: {a} vs {b}"
            );
        }

        // Central differences of the f64 reference.
        let h = 1e-5;
        for i in (0..output.len()).step_by(7) {
            let mut up = output.clone();
            up[i] += h;
            let mut down = output.clone();
            down[i] -= h;
            let fd = (naive_loss(&layout, &noise, &up, objective)
                - naive_loss(&layout, &noise, &down, objective))
                / (2.0 * h);
            assert!(
                (f64::from(grad[i]) - fd).abs() <= 1e-5 + 1e-3 * fd.abs(),
                "{objective:?} [{i}]: {} vs {fd}",
                grad[i]
            );
        }
    }
    // A mismatched output is a shape error, not a panic.
    let noise = perturbed(&layout, 2, 1);
    let mut grad = vec![0f32; 3];
    assert!(gnsm_losses::loss_and_grad(
        &layout,
        CategoricalObjective::Kl,
        &noise,
        &[0.0; 3],
        &mut grad
    )
    .is_err());
}
