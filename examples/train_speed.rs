//! Training and inference speed of the tab-ResNet on CPU against PyTorch, same shapes and
//! thread count, in alternating rounds of one run (`docs/benchmarks.md`).
//!
//! ```sh
//! RAYON_NUM_THREADS=2 GNSM_PYTHON=python3 cargo run --release --example train_speed \
//!     [-- --quick | --large] [--rounds N] [--fused-only]
//! ```
//! Shapes: (a) width 256, depth 4; (b) the paper's width 1024, depth 20; batch 256 on a
//! bank-shaped input (10 groups, 53 one-hot columns). One step = perturb + forward + KL loss +
//! backward + clip + AdamW + EMA (the library's `Trainer`). Every round times our side, then
//! runs `benches/tab_resnet_torch.py` (torch.set_num_threads = RAYON_NUM_THREADS; the
//! interpreter is `$GNSM_PYTHON`, skipped with a note when torch is missing); the table gives
//! medians over the rounds with their range, and the median of the per-round ratios.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/host.rs"]
mod host;
#[path = "support/rows.rs"]
mod rows;
#[path = "support/torch.rs"]
mod torch;

use std::time::Instant;

use candle_core::{Device, Tensor};
use gnsm::models::{TabResNetConfig, TabResNetModel, TrainEvent, Trainer, TrainerConfig};
use gnsm::noise::FeatureLayout;
use rand::SeedableRng;

const BANK_GROUPS: [usize; 10] = [12, 4, 8, 3, 3, 3, 2, 10, 5, 3];

/// Median milliseconds per training step after 3 warm-up steps.
fn time_steps(
    net: &TabResNetConfig,
    layout: &FeatureLayout,
    data: &[f32],
    steps: usize,
    fused_cpu_step: bool,
) -> anyhow::Result<f64> {
    let config = TrainerConfig {
        steps: steps + 3,
        batch_size: 256,
        eval_every: 1_000_000,
        fused_cpu_step,
        ..Default::default()
    };
    let val = &data[..256 * layout.width()];
    let mut trainer = Trainer::new(net.clone(), layout.clone(), config, &Device::Cpu)?;
    trainer.fit_until(3, data, val, &mut |_| {})?;
    // Time between consecutive step events: the step itself, without the validation pass
    // that `fit_until` runs at its end.
    let mut stamps = Vec::with_capacity(steps);
    let mut last = Instant::now();
    trainer.fit_until(steps + 3, data, val, &mut |event| {
        if let TrainEvent::Step { .. } = event {
            let now = Instant::now();
            stamps.push((now - last).as_secs_f64() * 1e3);
            last = now;
        }
    })?;
    Ok(torch::spread(stamps).0)
}

/// Inference rows/s of 4,096 rows at one level.
fn infer_rows_per_s(model: &TabResNetModel, data: &[f32], reps: usize) -> anyhow::Result<f64> {
    let width = model.layout().width();
    let x = Tensor::from_slice(&data[..4096 * width], (4096, width), &Device::Cpu)?;
    let levels = Tensor::from_vec(vec![3u32; 4096], 4096, &Device::Cpu)?;
    model.infer(&x, &levels)?;
    let start = Instant::now();
    for _ in 0..reps {
        model.infer(&x, &levels)?;
    }
    Ok((4096 * reps) as f64 / start.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let large = args.iter().any(|a| a == "--large");
    let fused_only = args.iter().any(|a| a == "--fused-only");
    let rounds: usize = match args.iter().position(|a| a == "--rounds") {
        Some(i) => args.get(i + 1).map_or(Ok(5), |v| v.parse())?,
        None => 5,
    };
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into());
    let layout = FeatureLayout::categorical(BANK_GROUPS.to_vec())?;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0);
    let data = rows::one_hot_rows(&layout, 4096, &mut rng);
    println!(
        "CPU: {}; RAYON_NUM_THREADS={threads}; bank-shaped input ({} columns), batch 256; \
         {rounds} rounds alternating gnsm and PyTorch",
        host::cpu_model(),
        layout.width()
    );
    let (shapes, mode): (&[(usize, usize, usize)], &str) = if quick {
        (&[(256, 4, 30)], "--quick")
    } else if large {
        (&[(1024, 20, 6)], "--large")
    } else {
        (&[(256, 4, 30), (1024, 20, 6)], "")
    };
    // Per shape: our step ms, our rows/s, PyTorch's step ms and rows/s, one per round.
    let mut samples = vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; shapes.len()];
    for round in 0..rounds {
        for (s, &(width, depth, steps)) in shapes.iter().enumerate() {
            let net = TabResNetConfig {
                width,
                depth,
                ..Default::default()
            };
            let step_ms = time_steps(&net, &layout, &data, steps, true)?;
            if round == 0 && !fused_only {
                let autograd = time_steps(&net, &layout, &data, steps, false)?;
                println!("width {width} depth {depth}: candle autograd step {autograd:.1} ms");
            }
            let model = TabResNetModel::new(net, layout.clone(), &Device::Cpu)?;
            let rows_per_s = infer_rows_per_s(&model, &data, if width > 512 { 1 } else { 5 })?;
            samples[s][0].push(step_ms);
            samples[s][1].push(rows_per_s);
        }
        let args: Vec<&str> = [threads.as_str(), mode]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        match torch::run(&args) {
            Ok(text) => {
                for (s, &(width, depth, _)) in shapes.iter().enumerate() {
                    if let Some([ms, rows]) =
                        torch::values(&text, &format!("torch_{width}_{depth}"))
                            .as_deref()
                            .and_then(|v| <&[f64; 2]>::try_from(v).ok())
                    {
                        samples[s][2].push(*ms);
                        samples[s][3].push(*rows);
                    }
                }
            }
            Err(why) => println!("PyTorch side skipped: {why}"),
        }
        println!("round {} done", round + 1);
    }
    println!("| shape | gnsm step ms | PyTorch step ms | training speed vs PyTorch | gnsm inference rows/s | PyTorch rows/s | inference vs PyTorch |");
    println!("|---|---|---|---|---|---|---|");
    for (&(width, depth, _), [ours, ours_rows, theirs, their_rows]) in shapes.iter().zip(samples) {
        let ratio = |a: &[f64], b: &[f64], inverse: bool| {
            let r = a
                .iter()
                .zip(b)
                .map(|(x, y)| if inverse { y / x } else { x / y })
                .collect();
            torch::spread(r)
        };
        let fmt = |(m, lo, hi): (f64, f64, f64), p: usize| format!("{m:.p$} ({lo:.p$}–{hi:.p$})");
        println!(
            "| width {width}, depth {depth} | {} | {} | {} | {} | {} | {} |",
            fmt(torch::spread(ours.clone()), 1),
            fmt(torch::spread(theirs.clone()), 1),
            fmt(ratio(&ours, &theirs, true), 2),
            fmt(torch::spread(ours_rows.clone()), 0),
            fmt(torch::spread(their_rows.clone()), 0),
            fmt(ratio(&ours_rows, &their_rows, false), 2),
        );
    }
    Ok(())
}
