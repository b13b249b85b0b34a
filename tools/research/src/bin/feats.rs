//! Research dump: per-level per-feature squared score norms + hot-entry scores.
use candle_core::{Device, Tensor};
use gnsm::data::{default_data_dir, labels_of, paper_split, Encoding, PaperDataset};
use gnsm::eval::Protocol;
use gnsm::losses::{GroupSoftmax, GroupStrategy};
use gnsm::{Gnsm, GnsmConfig};
use std::io::Write;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let name = &a[1];
    let seeds: Vec<u64> = a[2].split(',').map(|s| s.parse().unwrap()).collect();
    let width: usize = a[3].parse()?;
    let depth: usize = a[4].parse()?;
    let steps: usize = a[5].parse()?;
    let batch: usize = a[6].parse()?;
    let lr: f64 = a[7].parse()?;
    let tag = &a[8];
    let maxrows: usize = a.get(9).map(|s| s.parse().unwrap()).unwrap_or(usize::MAX);
    let dataset = PaperDataset::from_name(name).unwrap();
    let data = dataset.load(&default_data_dir().unwrap())?;
    let rule = dataset.vocabulary();
    let mut config = GnsmConfig::default();
    config.network.width = width;
    config.network.depth = depth;
    config.trainer.steps = steps;
    config.trainer.batch_size = batch;
    config.trainer.lr = lr;
    config.trainer.eval_every = 500;
    config.trainer.max_minutes = Some(30.0);
    for seed in seeds {
        let dir = std::path::PathBuf::from(format!("research/feat/{name}-{seed}-{tag}"));
        std::fs::create_dir_all(&dir)?;
        let mpath = dir.join("model.gnsm");
        let t0 = std::time::Instant::now();
        let det = if mpath.exists() {
            Gnsm::load(&mpath, &Device::Cpu)?
        } else {
            let run = Protocol::new(&data.schema, &data.table, seed, rule)?.fit(
                &config,
                &Device::Cpu,
                &mut |_| {},
            )?;
            println!(
                "{name} {seed} {tag}: AP {:.2} AUC {:.2} steps {} fit {:.0}s",
                run.result.ap, run.result.roc_auc, run.result.steps, run.result.fit_seconds
            );
            run.detector.save(&mpath)?;
            run.detector
        };
        let labels = labels_of(&data.schema, &data.table)?;
        let split = paper_split(&labels, seed);
        let layout = det.model().layout().clone();
        let groups = GroupSoftmax::new(&layout, GroupStrategy::Narrow, &Device::Cpu)?;
        let sched = det.config().trainer.noise.build()?;
        let levels = sched.levels();
        let nf = layout.continuous() + layout.n_groups();
        let w = layout.width();
        let mut meta = serde_json::json!({"levels": levels, "features": nf, "names": det.schema().feature_names(), "groups": layout.groups(), "continuous": layout.continuous()});
        let mut fsq = std::io::BufWriter::new(std::fs::File::create(dir.join("sq.f32"))?);
        let mut fhot = std::io::BufWriter::new(std::fs::File::create(dir.join("hot.f32"))?);
        let mut rowsout = Vec::new();
        for (part, rows) in [
            ("train", &split.train),
            ("val", &split.val),
            ("test", &split.test),
        ] {
            let rows: Vec<usize> = if part == "train" && rows.len() > maxrows {
                rows[..maxrows].to_vec()
            } else {
                rows.clone()
            };
            for chunk in rows.chunks(2048) {
                let enc = det
                    .schema()
                    .encode_rows(&data.table, chunk, Encoding::LogOneHot)?;
                let n = chunk.len();
                let x0 = enc.data.clone();
                let mut x = x0.clone();
                let scores_at = |x: &[f32], level: usize| -> anyhow::Result<Vec<f32>> {
                    let xt = Tensor::from_slice(x, (n, w), &Device::Cpu)?;
                    let lv = Tensor::from_vec(vec![level as u32; n], n, &Device::Cpu)?;
                    let out = det.model().infer(&xt, &lv)?;
                    let tau = sched.temperature(level)? as f32;
                    let taus = Tensor::from_vec(vec![tau; n], n, &Device::Cpu)?;
                    Ok(groups.scores(&out, &taus)?.flatten_all()?.to_vec1()?)
                };
                if det.config().denoise {
                    let s = scores_at(&x, levels - 1)?;
                    gnsm::noise::denoise_step(&layout, &mut x, &s)?;
                }
                let mut sq = vec![0f32; n * levels * nf];
                let mut hot = vec![0f32; n * levels * nf];
                for l in 0..levels {
                    let s = scores_at(&x, l)?;
                    for r in 0..n {
                        let row = &s[r * w..(r + 1) * w];
                        let xr = &x0[r * w..(r + 1) * w];
                        let b = (r * levels + l) * nf;
                        for c in 0..layout.continuous() {
                            sq[b + c] = row[c] * row[c];
                            hot[b + c] = row[c];
                        }
                        for (g, rg) in layout.group_ranges().enumerate() {
                            sq[b + layout.continuous() + g] =
                                row[rg.clone()].iter().map(|v| v * v).sum();
                            let h = rg.clone().max_by(|&i, &j| xr[i].total_cmp(&xr[j])).unwrap();
                            hot[b + layout.continuous() + g] = row[h];
                        }
                    }
                }
                for v in &sq {
                    fsq.write_all(&v.to_le_bytes())?;
                }
                for v in &hot {
                    fhot.write_all(&v.to_le_bytes())?;
                }
            }
            rowsout.push(serde_json::json!({"part": part, "rows": rows, "labels": rows.iter().map(|&r| labels[r]).collect::<Vec<_>>()}));
        }
        meta["parts"] = serde_json::Value::Array(rowsout);
        std::fs::write(dir.join("meta.json"), meta.to_string())?;
        println!(
            "{name} {seed} {tag}: dumped in {:.0}s",
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
