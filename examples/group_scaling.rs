//! How a training step's cost grows with the number of categorical groups at a fixed one-hot
//! width (2,000 columns): 10 groups of 200, 100 of 20, 1,000 binary groups. Beside each, the
//! loss and its gradient alone, one-pass host (`gnsm_losses::loss_and_grad`, what the CPU
//! training step uses) against candle's per-group ops (`GnsmLoss` + autograd), in the same
//! run.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release --example group_scaling
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/host.rs"]
mod host;

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use gnsm::losses::{CategoricalObjective, GnsmLoss, LossConfig};
use gnsm::models::{TabResNetConfig, TrainEvent, Trainer, TrainerConfig};
use gnsm::noise::LOG_ONE_HOT_COLD;
use gnsm::noise::{perturb_batch, FeatureLayout, NoiseRng, NoiseSchedule, Perturbation};
use rand::{Rng, SeedableRng};

fn rows(layout: &FeatureLayout, n: usize, rng: &mut NoiseRng) -> Vec<f32> {
    let mut data = Vec::with_capacity(n * layout.width());
    for _ in 0..n {
        for &k in layout.groups() {
            let hot = rng.random_range(0..k);
            data.extend((0..k).map(|j| if j == hot { 0.0 } else { LOG_ONE_HOT_COLD }));
        }
    }
    data
}

/// Median milliseconds per training step (width 256, depth 4, batch 256) over `steps`.
fn step_ms(layout: &FeatureLayout, data: &[f32], steps: usize) -> anyhow::Result<f64> {
    let net = TabResNetConfig {
        width: 256,
        depth: 4,
        ..Default::default()
    };
    let config = TrainerConfig {
        steps: steps + 3,
        batch_size: 256,
        eval_every: 1_000_000,
        ..Default::default()
    };
    let val = &data[..256 * layout.width()];
    let mut trainer = Trainer::new(net, layout.clone(), config, &Device::Cpu)?;
    trainer.fit_until(3, data, val, &mut |_| {})?;
    let mut stamps = Vec::with_capacity(steps + 1);
    stamps.push(Instant::now());
    trainer.fit_until(steps + 3, data, val, &mut |e| {
        if matches!(e, TrainEvent::Step { .. }) {
            stamps.push(Instant::now());
        }
    })?;
    let mut ms: Vec<f64> = stamps
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1e3)
        .collect();
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

/// Milliseconds of one loss + gradient, host one-pass and candle per-group, on a batch.
fn loss_ms(
    layout: &FeatureLayout,
    noise: &Perturbation,
    output: &[f32],
) -> anyhow::Result<(f64, f64)> {
    let w = layout.width();
    let loss = GnsmLoss::new(layout, LossConfig::default(), &Device::Cpu)?;
    let mut grad = vec![0f32; output.len()];
    let t = Instant::now();
    gnsm::losses::loss_and_grad(layout, CategoricalObjective::Kl, noise, output, &mut grad)?;
    let host = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let var = Var::from_tensor(&Tensor::from_slice(output, (noise.rows, w), &Device::Cpu)?)?;
    let targets = loss.targets(noise, DType::F32)?;
    let parts = loss.forward(var.as_tensor(), &targets)?;
    let grads = parts.total.backward()?;
    let _g: Vec<f32> = grads
        .get(var.as_tensor())
        .expect("a gradient")
        .flatten_all()?
        .to_vec1()?;
    Ok((host, t.elapsed().as_secs_f64() * 1e3))
}

/// Median and range of a sample.
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() -> anyhow::Result<()> {
    const ROUNDS: usize = 5;
    println!(
        "CPU: {}; RAYON_NUM_THREADS={}; width 256, depth 4, batch 256; 2,000 one-hot columns; \
         {ROUNDS} rounds alternating the layouts (and host / candle within each)",
        host::cpu_model(),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    struct Case {
        name: String,
        layout: FeatureLayout,
        data: Vec<f32>,
        noise: Perturbation,
        output: Vec<f32>,
        steps: Vec<f64>,
        host: Vec<f64>,
        candle: Vec<f64>,
    }
    let mut cases = Vec::new();
    for (groups, k) in [(10usize, 200usize), (100, 20), (1000, 2)] {
        let layout = FeatureLayout::categorical(vec![k; groups])?;
        let mut rng = NoiseRng::seed_from_u64(0);
        let data = rows(&layout, 2048, &mut rng);
        let levels: Vec<usize> = (0..256).map(|i| i % 20).collect();
        let mut noise = Perturbation::default();
        perturb_batch(
            &data[..256 * layout.width()],
            &layout,
            &NoiseSchedule::default(),
            &levels,
            &mut rng,
            &mut noise,
        )?;
        let output = (0..256 * layout.width())
            .map(|_| rng.random_range(-2.0f32..2.0))
            .collect();
        cases.push(Case {
            name: format!("{groups} × {k}"),
            layout,
            data,
            noise,
            output,
            steps: Vec::new(),
            host: Vec::new(),
            candle: Vec::new(),
        });
    }
    for _ in 0..ROUNDS {
        for c in &mut cases {
            c.steps.push(step_ms(&c.layout, &c.data, 20)?);
            for _ in 0..3 {
                let (host, candle) = loss_ms(&c.layout, &c.noise, &c.output)?;
                c.host.push(host);
                c.candle.push(candle);
            }
        }
    }
    println!("| layout | train step ms, median (range) | vs 10 groups | loss+grad host ms | candle ms | host speed-up |");
    println!("|---|---|---|---|---|---|");
    let base = stats(cases[0].steps.clone()).0;
    for c in cases {
        let (step, lo, hi) = stats(c.steps);
        let (host, _, _) = stats(c.host);
        let (candle, _, _) = stats(c.candle);
        println!(
            "| {} | {step:.1} ({lo:.1}–{hi:.1}) | {:.2}× | {host:.2} | {candle:.1} | {:.0}× |",
            c.name,
            step / base,
            candle / host
        );
    }
    Ok(())
}
