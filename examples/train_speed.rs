//! Training and inference speed of the tab-ResNet on CPU against PyTorch, same shapes and
//! thread count, in the same run (`docs/benchmarks.md`).
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release --example train_speed [-- --quick | --large] [--fused-only]
//! ```
//! Shapes: (a) width 256, depth 4; (b) the paper's width 1024, depth 20; batch 256 on a
//! bank-shaped input (10 groups, 53 one-hot columns). One step = perturb + forward + KL loss +
//! backward + clip + AdamW + EMA (the library's `Trainer`). The PyTorch side runs
//! `benches/tab_resnet_torch.py` (needs `pip install torch`) with torch.set_num_threads equal
//! to RAYON_NUM_THREADS; it is skipped with a note when torch is missing.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::Command;
use std::time::Instant;

use candle_core::{Device, Tensor};
use gnsm::models::{ScoreModel, TabResNetConfig, TrainEvent, Trainer, TrainerConfig};
use gnsm::noise::{FeatureLayout, LOG_ONE_HOT_COLD};
use rand::{Rng, SeedableRng};

const BANK_GROUPS: [usize; 10] = [12, 4, 8, 3, 3, 3, 2, 10, 5, 3];

fn rows(layout: &FeatureLayout, n: usize) -> Vec<f32> {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0);
    let mut data = Vec::with_capacity(n * layout.width());
    for _ in 0..n {
        for &k in layout.groups() {
            let hot = rng.random_range(0..k);
            data.extend((0..k).map(|j| if j == hot { 0.0 } else { LOG_ONE_HOT_COLD }));
        }
    }
    data
}

/// Mean milliseconds per training step after 3 warm-up steps.
fn time_steps(
    net: &TabResNetConfig,
    layout: &FeatureLayout,
    data: &[f32],
    batch: usize,
    steps: usize,
    fused_cpu_step: bool,
) -> anyhow::Result<f64> {
    let config = TrainerConfig {
        steps: steps + 3,
        batch_size: batch,
        eval_every: 1_000_000,
        fused_cpu_step,
        ..Default::default()
    };
    let val = &data[..batch * layout.width()];
    let mut trainer = Trainer::new(net.clone(), layout.clone(), config, &Device::Cpu)?;
    trainer.fit_until(3, data, val, &mut |_| {})?;
    // Time between consecutive step events: the step itself, without the validation pass
    // that `fit_until` runs at its end.
    let mut stamps = Vec::with_capacity(steps + 1);
    let mut last = Instant::now();
    trainer.fit_until(steps + 3, data, val, &mut |event| {
        if let TrainEvent::Step { .. } = event {
            let now = Instant::now();
            stamps.push((now - last).as_secs_f64());
            last = now;
        }
    })?;
    Ok(stamps.iter().sum::<f64>() / stamps.len().max(1) as f64 * 1e3)
}

fn main() -> anyhow::Result<()> {
    // --quick: the small shape only; --large: the paper shape only (for profiling).
    let quick = std::env::args().any(|a| a == "--quick");
    let large = std::env::args().any(|a| a == "--large");
    // --fused-only: skip the candle-autograd comparison (for profiling the default path).
    let fused_only = std::env::args().any(|a| a == "--fused-only");
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let layout = FeatureLayout::categorical(BANK_GROUPS.to_vec())?;
    let data = rows(&layout, 4096);
    let batch = 256;
    println!(
        "bank-shaped input ({} columns), batch {batch}, {threads} threads",
        layout.width()
    );
    let shapes: &[(usize, usize, usize)] = if quick {
        &[(256, 4, 30)]
    } else if large {
        &[(1024, 20, 6)]
    } else {
        &[(256, 4, 60), (1024, 20, 6)]
    };
    let mut ours = Vec::new();
    for &(width, depth, steps) in shapes {
        let net = TabResNetConfig {
            width,
            depth,
            ..Default::default()
        };
        // The fused CPU step (the default) and candle's autograd, same run.
        let step_ms = time_steps(&net, &layout, &data, batch, steps, true)?;
        let autograd_ms = if fused_only {
            f64::NAN
        } else {
            time_steps(&net, &layout, &data, batch, steps, false)?
        };

        let model = ScoreModel::new(net, layout.clone(), &Device::Cpu)?;
        let x = Tensor::from_slice(
            &data[..4096 * layout.width()],
            (4096, layout.width()),
            &Device::Cpu,
        )?;
        let levels = Tensor::from_vec(vec![3u32; 4096], 4096, &Device::Cpu)?;
        model.infer(&x, &levels)?;
        let start = Instant::now();
        let reps = if width > 512 { 1 } else { 5 };
        for _ in 0..reps {
            model.infer(&x, &levels)?;
        }
        let rows_per_s = (4096 * reps) as f64 / start.elapsed().as_secs_f64();
        println!(
            "gnsm   width {width:4} depth {depth:2}: train step {step_ms:8.1} ms (candle autograd {autograd_ms:.1} ms)   inference {rows_per_s:9.0} rows/s   ({} parameters)",
            model.num_parameters()
        );
        ours.push((width, depth, step_ms, rows_per_s));
    }

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/tab_resnet_torch.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(threads.to_string());
    if quick {
        cmd.arg("--quick");
    } else if large {
        cmd.arg("--large");
    }
    match cmd
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            print!("{text}");
            for (width, depth, step_ms, rows_per_s) in ours {
                let key = format!("torch_{width}_{depth}");
                if let Some(line) = text.lines().find(|l| l.starts_with(&key)) {
                    let v: Vec<f64> = line
                        .split_whitespace()
                        .skip(1)
                        .filter_map(|s| s.parse().ok())
                        .collect();
                    if let [t_ms, t_rows] = v[..] {
                        println!(
                            "width {width} depth {depth}: training {:.2}× PyTorch's speed, inference {:.2}×",
                            t_ms / step_ms,
                            rows_per_s / t_rows
                        );
                    }
                }
            }
        }
        Ok(out) => println!(
            "PyTorch side failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => println!("PyTorch side skipped: {e}"),
    }
    Ok(())
}
