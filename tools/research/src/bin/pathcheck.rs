//! The default trained through the fused host step (host loss) and through candle's
//! autograd path (candle loss), same seed and split: best validation loss, AP and ROC-AUC.
//!
//! `target/release/pathcheck chess 45` (a third argument: only the fused step, with that EMA
//! decay, e.g. `target/release/pathcheck chess 45 0.99`)
use gnsm::data::{default_data_dir, PaperDataset};
use gnsm::eval::Protocol;
use gnsm::GnsmConfig;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let dataset = PaperDataset::from_name(&a[1]).unwrap();
    let seeds: Vec<u64> = a[2].split(',').map(|s| s.parse().unwrap()).collect();
    let ema: Option<f64> = a.get(3).map(|s| s.parse().unwrap());
    let paths: &[bool] = if ema.is_some() {
        &[true]
    } else {
        &[true, false]
    };
    let data = dataset.load(&default_data_dir().unwrap())?;
    for seed in seeds {
        let protocol = Protocol::new(&data.schema, &data.table, seed, dataset.vocabulary())?;
        for &fused in paths {
            let mut config = GnsmConfig::default().with_seed(seed);
            config.trainer.fused_cpu_step = fused;
            if let Some(d) = ema {
                config.trainer.ema_decay = d;
            }
            config.trainer.max_minutes = None;
            let (det, summary) = gnsm_research::fit_on_split(&protocol, &config)?;
            let what = format!("{} seed {seed} fused {fused}", a[1]);
            let line = gnsm_research::fit_line(&what, &protocol, &det, &summary)?;
            println!("{line}\n  {}", gnsm_research::curve_line(&summary));
        }
    }
    Ok(())
}
