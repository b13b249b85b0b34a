use gnsm::data::{default_data_dir, labels_of, paper_split, PaperDataset};
fn main() -> anyhow::Result<()> {
    let dir = default_data_dir().unwrap();
    let out = std::path::Path::new("research/splits");
    std::fs::create_dir_all(out)?;
    for d in PaperDataset::ALL {
        let data = d.load(&dir)?;
        let labels = labels_of(&data.schema, &data.table)?;
        for seed in 42..47u64 {
            let s = paper_split(&labels, seed);
            let j = serde_json::json!({"train": s.train, "val": s.val, "test": s.test,
               "lines": (0..data.table.rows()).map(|r| data.table.line(r)).collect::<Vec<_>>()});
            std::fs::write(out.join(format!("{}-{seed}.json", d.name())), j.to_string())?;
        }
        println!("{} {:?} {:?}", d.name(), d.vocabulary(), d.continuous());
    }
    Ok(())
}
