//! The default under a different EMA decay and step budget, same seeds and splits: best
//! validation loss and where it fell, AP and ROC-AUC, and the validation curve.
//!
//! `target/release/schedule chess 42,43 0.99 8000` (EMA decay, steps; no time budget)
use gnsm::data::{default_data_dir, PaperDataset};
use gnsm::eval::Protocol;
use gnsm::GnsmConfig;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let dataset = PaperDataset::from_name(&a[1]).unwrap();
    let seeds: Vec<u64> = a[2].split(',').map(|s| s.parse().unwrap()).collect();
    let ema: f64 = a[3].parse()?;
    let steps: usize = a[4].parse()?;
    let data = dataset.load(&default_data_dir().unwrap())?;
    for seed in seeds {
        let protocol = Protocol::new(&data.schema, &data.table, seed, dataset.vocabulary())?;
        let mut config = GnsmConfig::default().with_seed(seed);
        config.trainer.ema_decay = ema;
        config.trainer.steps = steps;
        config.trainer.max_minutes = None;
        let (det, summary) = gnsm_research::fit_on_split(&protocol, &config)?;
        let what = format!("{} seed {seed} ema {ema} steps {steps}", a[1]);
        let line = gnsm_research::fit_line(&what, &protocol, &det, &summary)?;
        println!("{line}\n  {}", gnsm_research::curve_line(&summary));
    }
    Ok(())
}
