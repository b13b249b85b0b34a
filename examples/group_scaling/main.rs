//! How a training step's and scoring's cost grow with the number of categorical groups at a
//! fixed one-hot width (2,000 columns): 10 groups of 200, 100 of 20, 1,000 binary groups, with
//! PyTorch on the same shapes (`benches/tab_resnet_torch.py --growth`, interpreter
//! `$GNSM_PYTHON`). Beside each: the loss and its gradient alone, one-pass host
//! (`gnsm_losses::loss_and_grad`, what the CPU training step uses) against candle's per-group
//! ops (`GnsmLoss` + autograd); and the score-norm pass (20 levels, per-group scores, squared
//! norm per group) as the library runs it (`TabResNetModel::infer_levels` +
//! `gnsm_losses::score_transform`) against the per-level path it replaced (`infer` per level
//! + candle's `GroupSoftmax::scores`). Rounds alternate the layouts and the two sides.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 GNSM_PYTHON=python3 cargo run --release --example group_scaling
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../support/host.rs"]
mod host;
mod measure;
#[path = "../support/rows.rs"]
mod rows;
#[path = "../support/torch.rs"]
mod torch;

use candle_core::Device;
use gnsm::models::{TabResNetConfig, TabResNetModel};
use gnsm::noise::{perturb_batch, FeatureLayout, NoiseRng, NoiseSchedule, Perturbation};
use measure::{loss_ms, scoring_rows_per_s, step_ms};
use rand::{Rng, SeedableRng};
use rows::one_hot_rows;

fn main() -> anyhow::Result<()> {
    const ROUNDS: usize = 5;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into());
    println!(
        "CPU: {}; RAYON_NUM_THREADS={threads}; width 256, depth 4, batch 256; 2,000 one-hot \
         columns; {ROUNDS} rounds alternating the layouts, the two scoring paths and PyTorch",
        host::cpu_model(),
    );
    #[derive(Default)]
    struct Samples {
        steps: Vec<f64>,
        host: Vec<f64>,
        candle: Vec<f64>,
        shared: Vec<f64>,
        per_level: Vec<f64>,
        torch_step: Vec<f64>,
        torch_score: Vec<f64>,
    }
    struct Case {
        groups: usize,
        k: usize,
        layout: FeatureLayout,
        data: Vec<f32>,
        noise: Perturbation,
        output: Vec<f32>,
        model: TabResNetModel,
        s: Samples,
    }
    let mut cases = Vec::new();
    for (groups, k) in [(10usize, 200usize), (100, 20), (1000, 2)] {
        let layout = FeatureLayout::categorical(vec![k; groups])?;
        let mut rng = NoiseRng::seed_from_u64(0);
        let data = one_hot_rows(&layout, 2048, &mut rng);
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
        let net = TabResNetConfig {
            width: 256,
            depth: 4,
            ..Default::default()
        };
        let model = TabResNetModel::new(net, layout.clone(), &Device::Cpu)?;
        cases.push(Case {
            groups,
            k,
            layout,
            data,
            noise,
            output,
            model,
            s: Samples::default(),
        });
    }
    for round in 0..ROUNDS {
        for c in &mut cases {
            c.s.steps.push(step_ms(&c.layout, &c.data, 20)?);
            for _ in 0..3 {
                let (host, candle) = loss_ms(&c.layout, &c.noise, &c.output)?;
                c.s.host.push(host);
                c.s.candle.push(candle);
            }
            let (shared, per_level) = scoring_rows_per_s(&c.model, &c.data)?;
            c.s.shared.push(shared);
            c.s.per_level.push(per_level);
        }
        match torch::run(&[threads.as_str(), "--growth"]) {
            Ok(text) => {
                for c in &mut cases {
                    if let Some(v) = torch::values(&text, &format!("growth_{}_{}", c.groups, c.k)) {
                        c.s.torch_step.push(v[0]);
                        c.s.torch_score.push(v[1]);
                    }
                }
            }
            Err(why) => println!("PyTorch side skipped: {why}"),
        }
        println!("round {} done", round + 1);
    }
    println!("| layout | train step ms | vs 10 groups | PyTorch step ms | training vs PyTorch | loss+grad host ms | candle ms | scoring rows/s | vs 10 groups | per-level path rows/s | PyTorch scoring rows/s | scoring vs PyTorch |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let fmt = |(m, lo, hi): (f64, f64, f64), p: usize| format!("{m:.p$} ({lo:.p$}–{hi:.p$})");
    let base_step = torch::spread(cases[0].s.steps.clone()).0;
    let base_score = torch::spread(cases[0].s.shared.clone()).0;
    for c in cases {
        let s = c.s;
        let step = torch::spread(s.steps.clone());
        let score = torch::spread(s.shared.clone());
        let torch_step = torch::spread(s.torch_step.clone());
        let torch_score = torch::spread(s.torch_score.clone());
        println!(
            "| {} × {} | {} | {:.2}× | {} | {:.2}× | {:.2} | {:.1} | {} | {:.2}× | {} | {} | {:.2}× |",
            c.groups,
            c.k,
            fmt(step, 1),
            step.0 / base_step,
            fmt(torch_step, 1),
            torch_step.0 / step.0,
            torch::spread(s.host).0,
            torch::spread(s.candle).0,
            fmt(score, 0),
            score.0 / base_score,
            fmt(torch::spread(s.per_level), 0),
            fmt(torch_score, 0),
            score.0 / torch_score.0,
        );
    }
    Ok(())
}
