//! Research dump: per-row, per-level, per-feature expected denoising loss (M noise draws).
use candle_core::{Device, Tensor};
use gnsm::data::{default_data_dir, Encoding, PaperDataset};
use gnsm::noise::{perturb_batch, NoiseRng, Perturbation};
use gnsm::Gnsm;
use rand::SeedableRng;
use std::io::Write;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let name = &a[1];
    let seeds: Vec<u64> = a[2].split(',').map(|s| s.parse().unwrap()).collect();
    let tag = &a[3];
    let draws: usize = a[4].parse()?;
    let crn = a.get(5).is_some_and(|v| v == "crn");
    let model_name = a.get(6).cloned().unwrap_or_else(|| "model".into());
    let dataset = PaperDataset::from_name(name).unwrap();
    let data = dataset.load(&default_data_dir().unwrap())?;
    for seed in seeds {
        let dir = std::path::PathBuf::from(format!("research/feat/{name}-{seed}-{tag}"));
        let det = Gnsm::load(dir.join(format!("{model_name}.gnsm")), &Device::Cpu)?;
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json"))?)?;
        let layout = det.model().layout().clone();
        let sched = det.config().trainer.noise.build()?;
        let levels = sched.levels();
        let nc = layout.continuous();
        let nf = nc + layout.n_groups();
        let w = layout.width();
        let t0 = std::time::Instant::now();
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join(format!(
            "loss{draws}{}{}.f32",
            if crn { "c" } else { "" },
            if model_name == "model" {
                String::new()
            } else {
                format!("_{model_name}")
            }
        )))?);
        let mut rng = NoiseRng::seed_from_u64(1234);
        let mut pert = Perturbation::default();
        for part in meta["parts"].as_array().unwrap() {
            let rows: Vec<usize> = part["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            for chunk in rows.chunks(512) {
                let enc = det
                    .schema()
                    .encode_rows(&data.table, chunk, Encoding::LogOneHot)?;
                let n = chunk.len();
                let mut loss = vec![0f32; n * levels * nf];
                // rows repeated: each row x levels x draws
                let mut clean = Vec::with_capacity(n * levels * draws * w);
                let mut lv = Vec::with_capacity(n * levels * draws);
                for r in 0..n {
                    for l in 0..levels {
                        for _ in 0..draws {
                            clean.extend_from_slice(&enc.data[r * w..(r + 1) * w]);
                            lv.push(l);
                        }
                    }
                }
                if crn {
                    // The same draws for every row: each row's block re-seeds the generator.
                    let per = levels * draws;
                    let mut all = Perturbation::default();
                    let mut parts: Vec<Perturbation> = Vec::new();
                    for r in 0..n {
                        let mut rr = NoiseRng::seed_from_u64(99);
                        let mut p1 = Perturbation::default();
                        perturb_batch(
                            &clean[r * per * w..(r + 1) * per * w],
                            &layout,
                            &sched,
                            &lv[r * per..(r + 1) * per],
                            &mut rr,
                            &mut p1,
                        )?;
                        parts.push(p1);
                    }
                    all.rows = lv.len();
                    for p1 in &parts {
                        all.noisy.extend_from_slice(&p1.noisy);
                        all.target_probs.extend_from_slice(&p1.target_probs);
                        all.continuous_target
                            .extend_from_slice(&p1.continuous_target);
                    }
                    pert = all;
                } else {
                    perturb_batch(&clean, &layout, &sched, &lv, &mut rng, &mut pert)?;
                }
                let m = lv.len();
                let xt = Tensor::from_slice(&pert.noisy, (m, w), &Device::Cpu)?;
                let lt = Tensor::from_vec(
                    lv.iter().map(|&l| l as u32).collect::<Vec<_>>(),
                    m,
                    &Device::Cpu,
                )?;
                let out: Vec<f32> = det.model().infer(&xt, &lt)?.flatten_all()?.to_vec1()?;
                let cw = layout.categorical_width();
                for i in 0..m {
                    let r = i / (levels * draws);
                    let l = (i / draws) % levels;
                    let o = &out[i * w..(i + 1) * w];
                    let b = (r * levels + l) * nf;
                    for c in 0..nc {
                        let t = pert.continuous_target[i * nc + c];
                        loss[b + c] += 0.5 * (o[c] - t).powi(2) / draws as f32;
                    }
                    for (g, rg) in layout.group_ranges().enumerate() {
                        let lg = &o[rg.clone()];
                        let mx = lg.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                        let lse = mx + lg.iter().map(|v| (v - mx).exp()).sum::<f32>().ln();
                        let base = rg.start - nc;
                        let mut kl = 0f64;
                        for (k, j) in rg.clone().enumerate() {
                            let p = pert.target_probs[i * cw + base + k] as f64;
                            if p > 0.0 {
                                kl += p * (p.ln() - (lg[k] - lse) as f64);
                            }
                            let _ = j;
                        }
                        loss[b + nc + g] += (kl / draws as f64) as f32;
                    }
                }
                for v in &loss {
                    f.write_all(&v.to_le_bytes())?;
                }
            }
        }
        println!(
            "{name} {seed}: loss dump in {:.0}s",
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
