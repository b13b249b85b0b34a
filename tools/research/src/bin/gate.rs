//! The one-hot term's gate of the library default, per (dataset, seed) of the paper protocol:
//! the mixture size chosen, the generalisation gap and whether the default score uses the
//! term. The gate looks at the one-hot rows alone, so a one-step, width-16 network gives the
//! very report a default fit gives (same rows, seed, sample and mixtures); the network only
//! scores the validation rows, which the gate does not read.
//!
//! `target/release/gate cmc,solar 42,43,44,45,46`
use gnsm::models::TabResNetConfig;
use gnsm::GnsmConfig;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    gnsm_research::for_each_split(&a[1], &a[2], |name, seed, protocol| {
        let mut config = GnsmConfig {
            network: TabResNetConfig {
                width: 16,
                depth: 1,
                embedding_size: 16,
                ..TabResNetConfig::default()
            },
            ..GnsmConfig::default()
        }
        .with_seed(seed);
        config.trainer.steps = 1;
        config.min_epochs = 0.0;
        let start = std::time::Instant::now();
        let (_, summary) = gnsm_research::fit_on_split(protocol, &config)?;
        let r = summary.one_hot.expect("the default fits the one-hot term");
        println!(
            "{name} seed {seed}: k {} on {} rows (val {}), gap {}, used {}{} ({:.0} s)",
            r.components,
            r.fit_rows,
            r.val_rows,
            r.gap.map_or("-".into(), |g| format!("{g:.3}")),
            r.used,
            r.error.map_or(String::new(), |e| format!(", error: {e}")),
            start.elapsed().as_secs_f64()
        );
        Ok(())
    })
}
