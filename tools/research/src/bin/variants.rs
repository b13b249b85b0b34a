//! Scoring variants of the library default on the very same trained networks: per (dataset,
//! seed), the default is trained once on the protocol's split (or loaded from
//! `research/models/`), then its scoring stage is refitted on train + validation with each
//! variant of the one-hot term, and the test AP printed. The first line per seed is the
//! direct fit (what the report measures); a refit with the default's own settings gives the
//! same scores.
//!
//! `target/release/variants cmc 42,43,44,45,46 9,16,32,64`: each value is the largest
//! candidate component count of a variant (the grid 3, 5, 7, 9, 12, 16, 24, 32, 48, 64, 96,
//! 128 up to it); 0 is the loss alone.
use candle_core::Device;
use gnsm::data::{default_data_dir, PaperDataset};
use gnsm::eval::Protocol;
use gnsm::{DenoisingParams, Gnsm, GnsmConfig, OneHotDensityParams, ScoreMethod};

const GRID: [usize; 12] = [3, 5, 7, 9, 12, 16, 24, 32, 48, 64, 96, 128];

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let dataset = PaperDataset::from_name(&a[1]).unwrap();
    let seeds: Vec<u64> = a[2].split(',').map(|s| s.parse().unwrap()).collect();
    let tops: Vec<usize> = a[3].split(',').map(|s| s.parse().unwrap()).collect();
    let data = dataset.load(&default_data_dir().unwrap())?;
    std::fs::create_dir_all("research/models")?;
    for seed in seeds {
        let protocol = Protocol::new(&data.schema, &data.table, seed, dataset.vocabulary())?;
        let path = format!("research/models/{}-{seed}.gnsm", a[1]);
        let config = GnsmConfig::default().with_seed(seed);
        if !std::path::Path::new(&path).exists() {
            let run = protocol.fit(&config, &Device::Cpu, &mut |_| {})?;
            run.detector.save(&path)?;
            println!(
                "{} seed {seed} direct fit: AP {:.2} ({:.0} s; {:?})",
                a[1], run.result.ap, run.result.fit_seconds, run.result.one_hot
            );
        }
        for &top in &tops {
            let mut variant = config.clone();
            variant.score = ScoreMethod::DenoisingLoss(DenoisingParams {
                one_hot: (top > 0).then(|| OneHotDensityParams {
                    candidates: GRID.iter().copied().filter(|&k| k <= top).collect(),
                    ..OneHotDensityParams::default()
                }),
                ..DenoisingParams::default()
            });
            let start = std::time::Instant::now();
            let run = protocol.refit(Gnsm::load(&path, &Device::Cpu)?, &variant)?;
            let term = run
                .result
                .one_hot
                .as_ref()
                .map_or("loss alone".into(), |t| {
                    format!(
                        "k {} gap {} used {}",
                        t.components,
                        t.gap.map_or("-".into(), |g| format!("{g:.2}")),
                        t.used
                    )
                });
            println!(
                "{} seed {seed} top {top}: AP {:.2} AUC {:.2} ({term}; {:.0} s)",
                a[1],
                run.result.ap,
                run.result.roc_auc,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
