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

/// Median milliseconds of loss + gradient, host one-pass and candle per-group, on a batch.
fn loss_ms(
    layout: &FeatureLayout,
    noise: &Perturbation,
    reps: usize,
) -> anyhow::Result<(f64, f64)> {
    let w = layout.width();
    let mut rng = NoiseRng::seed_from_u64(1);
    let output: Vec<f32> = (0..noise.rows * w)
        .map(|_| rng.random_range(-2.0f32..2.0))
        .collect();
    let loss = GnsmLoss::new(layout, LossConfig::default(), &Device::Cpu)?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut host = Vec::new();
    let mut grad = vec![0f32; output.len()];
    for _ in 0..reps {
        let t = Instant::now();
        gnsm::losses::loss_and_grad(layout, CategoricalObjective::Kl, noise, &output, &mut grad)?;
        host.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut candle = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let var = Var::from_tensor(&Tensor::from_slice(&output, (noise.rows, w), &Device::Cpu)?)?;
        let targets = loss.targets(noise, DType::F32)?;
        let parts = loss.forward(var.as_tensor(), &targets)?;
        let grads = parts.total.backward()?;
        let _g: Vec<f32> = grads
            .get(var.as_tensor())
            .expect("a gradient")
            .flatten_all()?
            .to_vec1()?;
        candle.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((median(host), median(candle)))
}

fn main() -> anyhow::Result<()> {
    println!(
        "RAYON_NUM_THREADS={}; width 256, depth 4, batch 256; 2,000 one-hot columns",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    println!("| layout | train step ms (median) | vs 10 groups | loss+grad host ms | candle ms | host speed-up |");
    println!("|---|---|---|---|---|---|");
    let mut base = None;
    for (groups, k) in [(10usize, 200usize), (100, 20), (1000, 2)] {
        let layout = FeatureLayout::categorical(vec![k; groups])?;
        let mut rng = NoiseRng::seed_from_u64(0);
        let data = rows(&layout, 2048, &mut rng);
        let step = step_ms(&layout, &data, 20)?;
        let base_ms = *base.get_or_insert(step);
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
        let (host, candle) = loss_ms(&layout, &noise, 10)?;
        println!(
            "| {groups} × {k} | {step:.1} | {:.2}× | {host:.2} | {candle:.1} | {:.0}× |",
            step / base_ms,
            candle / host
        );
    }
    Ok(())
}
