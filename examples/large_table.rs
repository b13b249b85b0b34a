//! Fit and score a generated table too large for a dense one-hot matrix: by default 10
//! million rows of 30 categorical columns of 10 categories (each column mostly follows one
//! hidden category), in this process, printing the bytes per encoded row (dense and compact),
//! the stage times, scoring rows/s and the peak resident memory.
//!
//! The network is small (width 64, 2 blocks, 5 noise levels, 1 draw per level, trained for 2
//! minutes on a 200,000-row sample) so that scoring 10 million rows takes minutes on 2
//! cores; memory, not accuracy, is what this measures.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release --example large_table -- --rows 10000000
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/host.rs"]
mod host;

use std::time::Instant;

use clap::Parser;
use gnsm::data::Table;
use gnsm::{Device, Gnsm, GnsmConfig, TrainOverrides};
use rand::{Rng, SeedableRng};

#[derive(Parser)]
struct Args {
    /// Rows to generate.
    #[arg(long, default_value_t = 10_000_000)]
    rows: usize,
    /// Categorical columns.
    #[arg(long, default_value_t = 30)]
    columns: usize,
    /// Categories per column.
    #[arg(long, default_value_t = 10)]
    categories: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "{}, {} threads",
        host::cpu_model(),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into())
    );
    let started = Instant::now();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    let names: Vec<String> = (0..args.categories).map(|k| format!("v{k}")).collect();
    let hidden: Vec<usize> = (0..args.rows)
        .map(|_| rng.random_range(0..args.categories))
        .collect();
    let columns = (0..args.columns).map(|j| {
        let cells: Vec<&str> = hidden
            .iter()
            .map(|&h| {
                let k = if rng.random::<f64>() < 0.85 {
                    (h + j) % args.categories
                } else {
                    rng.random_range(0..args.categories)
                };
                names[k].as_str()
            })
            .collect();
        (format!("c{j}"), cells)
    });
    // One column's cells at a time (lazily): the table holds 4 bytes per cell.
    let table = Table::from_columns("generated", columns)?;
    drop(hidden);
    let generated = started.elapsed().as_secs_f64();
    println!(
        "{} rows × {} columns generated in {generated:.1} s; peak RSS {:.2} GB",
        table.rows(),
        args.columns,
        host::peak_gb()
    );

    let mut config = TrainOverrides {
        width: Some(64),
        depth: Some(2),
        max_minutes: Some(2.0),
        ..Default::default()
    }
    .apply(GnsmConfig::default());
    config.trainer.noise.levels = 5;
    if let gnsm::ScoreMethod::DenoisingLoss(p) = &mut config.score {
        p.draws = 1;
    }
    config.train_sample = Some(200_000);
    let fit_start = Instant::now();
    let (detector, summary) = Gnsm::fit(&config, &table, &Device::Cpu)?;
    let fit_seconds = fit_start.elapsed().as_secs_f64();
    let width = detector.schema().layout()?.width();
    println!(
        "encoded row: dense {} bytes (one-hot width {width}), compact {} bytes",
        4 * width,
        4 * args.columns
    );
    println!(
        "fit in {fit_seconds:.0} s: {} steps on a {}-row sample, scoring stage on {} rows, {} calibration rows; peak RSS {:.2} GB",
        summary.training.steps,
        summary.train_rows,
        summary.density_rows,
        summary.calibration_rows,
        host::peak_gb()
    );

    let score_start = Instant::now();
    let scores = detector.score_table(&table, None)?;
    let score_seconds = score_start.elapsed().as_secs_f64();
    println!(
        "scored {} rows in {score_seconds:.0} s: {:.0} rows/s; peak RSS {:.2} GB",
        scores.len(),
        scores.len() as f64 / score_seconds,
        host::peak_gb()
    );
    println!("total {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
