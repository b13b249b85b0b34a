//! Training step of the segmentation study's conditional UNet on CPU against PyTorch, same
//! shape and thread count, in alternating rounds of one run (`docs/benchmarks.md`).
//!
//! ```sh
//! RAYON_NUM_THREADS=2 GNSM_PYTHON=python3 cargo run --release --example unet_speed \
//!     [-- --height 48 --width 64 --rounds 5 --steps 10]
//! ```
//! The model is `MaskScoreConfig::default()` (16 channels, multipliers 1, 2, 2, attention at
//! the lowest resolution, 10 levels, 11 classes); one step = Gumbel perturbation of 8 masks
//! and forward, KL loss, backward, clip and AdamW (`MaskScorer::train`). Every round times
//! our side, then runs `benches/unet_torch.py` (the same network in PyTorch; skipped with a
//! note when torch is missing).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/host.rs"]
mod host;
#[path = "support/torch.rs"]
mod torch;

use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use clap::Parser;
use gnsm_segmentation::{LoopConfig, MaskScoreConfig, MaskScorer, SegmentationPair};

#[derive(Parser)]
struct Args {
    /// Image height.
    #[arg(long, default_value_t = 48)]
    height: usize,
    /// Image width.
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Alternating rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Timed steps per round (after 3 warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
}

/// Median milliseconds per step of `steps` after 3 warm-up steps.
fn our_step_ms(pairs: &[SegmentationPair], steps: usize) -> Result<f64> {
    let scorer = MaskScorer::new(&MaskScoreConfig::default(), &Device::Cpu)?;
    let settings = LoopConfig {
        steps: steps + 3,
        batch_size: 8,
        lr: 2e-3,
        seed: 0,
        crop: None,
    };
    let mut times = Vec::with_capacity(steps);
    let mut last = Instant::now();
    scorer.train(pairs, &settings, 0, &mut |step, _, _| {
        if step > 3 {
            times.push(last.elapsed().as_secs_f64() * 1e3);
        }
        last = Instant::now();
        Ok(())
    })?;
    Ok(torch::spread(times).0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (h, w) = (args.height, args.width);
    let pairs: Vec<SegmentationPair> = (0..16)
        .map(|i| SegmentationPair {
            name: format!("p{i}"),
            height: h,
            width: w,
            image: (0..3 * h * w)
                .map(|v| ((v * 7 + i) % 13) as f32 / 13.0)
                .collect(),
            mask: (0..h * w).map(|v| ((v / 7 + i) % 11) as u8).collect(),
        })
        .collect();
    let threads = rayon::current_num_threads().to_string();
    let (hs, ws, steps) = (h.to_string(), w.to_string(), args.steps.to_string());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let ms = our_step_ms(&pairs, args.steps)?;
        ours.push(ms);
        match torch::run_script("unet_torch.py", &[&threads, &hs, &ws, &steps]) {
            Ok(text) => theirs.extend(torch::values(&text, "torch_unet").unwrap_or_default()),
            Err(why) if round == 0 => println!("PyTorch side skipped: {why}"),
            Err(_) => {}
        }
        println!("round {}: ours {ms:.1} ms", round + 1);
    }
    println!(
        "\nCPU: {}, {threads} threads; UNet training step at {h}×{w}, batch 8, median over {} \
         rounds (range)",
        host::cpu_model(),
        args.rounds
    );
    let (m, lo, hi) = torch::spread(ours.clone());
    println!(
        "| side | step ms |\n|---|---|\n| gnsm (candle + host conv) | {m:.1} ({lo:.1}–{hi:.1}) |"
    );
    if !theirs.is_empty() {
        let (tm, tlo, thi) = torch::spread(theirs.clone());
        let ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(o, t)| t / o).collect();
        let (r, rlo, rhi) = torch::spread(ratios);
        println!("| PyTorch | {tm:.1} ({tlo:.1}–{thi:.1}) |");
        println!(
            "\nour speed / PyTorch's, median of per-round ratios: {r:.2}× ({rlo:.2}–{rhi:.2})"
        );
    }
    Ok(())
}
