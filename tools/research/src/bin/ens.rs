//! Extra networks on the same split (other network / noise seeds), for ensembling tests.
use candle_core::Device;
use gnsm::data::{default_data_dir, labels_of, paper_split, PaperDataset};
use gnsm::{Gnsm, GnsmConfig};
fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let name = &a[1];
    let seeds: Vec<u64> = a[2].split(',').map(|s| s.parse().unwrap()).collect();
    let offsets: Vec<u64> = a[3].split(',').map(|s| s.parse().unwrap()).collect();
    let steps: usize = a[4].parse()?;
    let tag = &a[5];
    let dataset = PaperDataset::from_name(name).unwrap();
    let data = dataset.load(&default_data_dir().unwrap())?;
    let labels = labels_of(&data.schema, &data.table)?;
    for seed in seeds {
        let split = paper_split(&labels, seed);
        let mut schema = data.schema.clone();
        let inl: Vec<usize> = (0..labels.len()).filter(|&i| !labels[i]).collect();
        schema.fit_with(&data.table, &dataset.vocabulary().rows(&labels, &inl), &inl)?;
        for &off in &offsets {
            let mut config = GnsmConfig::paper().with_seed(seed);
            config.trainer.batch_size = 256;
            config.trainer.steps = steps;
            config.network.seed = seed * 1000 + off;
            config.trainer.seed = seed * 1000 + off;
            let (det, _) = Gnsm::fit_rows(
                &config,
                schema.clone(),
                &data.table,
                &split.train,
                &split.val,
                &Device::Cpu,
                &mut |_| {},
            )?;
            let dir = std::path::PathBuf::from(format!("research/feat/{name}-{seed}-{tag}"));
            det.save(dir.join(format!("model_o{off}.gnsm")))?;
            println!("{name} {seed} off {off} done");
        }
    }
    Ok(())
}
