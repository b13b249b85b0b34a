//! Ensembles over network seeds on the paper protocol: per seed, fit the library default
//! `members` times (member 0 is the protocol's own network; member m > 0 changes only the
//! network and trainer seeds), sum the test scores, and print the AP of the first 1..=members.
//!
//! `target/release/ensemble cmc 42,43,44,45,46 3`
use gnsm::data::{default_data_dir, PaperDataset};
use gnsm::eval::Protocol;
use gnsm::GnsmConfig;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let name = &a[1];
    let seeds: Vec<u64> = a[2].split(',').map(|s| s.parse().unwrap()).collect();
    let members: usize = a[3].parse()?;
    let dataset = PaperDataset::from_name(name).unwrap();
    let data = dataset.load(&default_data_dir().unwrap())?;
    for seed in seeds {
        let protocol = Protocol::new(&data.schema, &data.table, seed, dataset.vocabulary())?;
        let split = protocol.split();
        let labels = protocol.test_labels();
        let mut sum = vec![0.0; split.test.len()];
        let mut line = format!("{name} seed {seed}:");
        for m in 0..members {
            let mut config = GnsmConfig::default().with_seed(seed);
            if m > 0 {
                config.network.seed = seed * 1000 + m as u64;
                config.trainer.seed = seed * 1000 + m as u64;
            }
            let start = std::time::Instant::now();
            let (detector, _) = gnsm_research::fit_on_split(&protocol, &config)?;
            let scores = detector.score_table(protocol.table(), Some(&split.test))?;
            let single = gnsm::msma::average_precision(&labels, &scores)? * 100.0;
            sum.iter_mut().zip(&scores).for_each(|(s, v)| *s += v);
            let ens = gnsm::msma::average_precision(&labels, &sum)? * 100.0;
            line += &format!(
                " | m{m} {single:.2} ens{} {ens:.2} ({:.0} s)",
                m + 1,
                start.elapsed().as_secs_f64()
            );
            println!("{line}");
        }
    }
    Ok(())
}
