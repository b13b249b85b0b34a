//! Fit + score time of each baseline against pyod / scikit-learn on the same rows, same run.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p gnsm-baselines --example baseline_timing -- bank
//! RAYON_NUM_THREADS=2 cargo run --release -p gnsm-baselines --example baseline_timing -- census --dense-iters 3
//! ```
//! Loads a Table 2 dataset from `GNSM_DATA_DIR` (default `../shared/data`), takes the paper
//! split of seed 42, one-hot encodes it, times IsolationForest (fit on train + val, score
//! test), ECOD (pooled, as pyod), a 5-component full-covariance GMM run for exactly 20 EM
//! iterations (a fixed amount of work on both sides; the library's kernel choice), the same
//! GMM on the dense kernel for `--dense-iters` iterations (default 20; the dense/sparse ratio
//! per iteration is printed), and the GMM baseline as the evaluation fits it (component count
//! chosen among 3/5/7/9 on the validation rows, then refitted on train + val); then writes
//! the same matrices to a temporary folder and runs `benches/baselines_pyod.py` on them with
//! the same thread count.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use gnsm_baselines::{EcodParams, EcodTails, GmmDetectorParams, IsolationForestParams};
use gnsm_data::{default_data_dir, paper_split, Encoding, PaperDataset};
use msma::{average_precision, Detector, Fit, GmmKernel, GmmParams, Matrix};

fn write_f64(path: &Path, values: impl Iterator<Item = f64>) -> Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for v in values {
        file.write_all(&v.to_le_bytes())?;
    }
    file.flush()?;
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let start = Instant::now();
    let value = f()?;
    Ok((value, start.elapsed().as_secs_f64()))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().cloned().unwrap_or_else(|| "bank".into());
    let dense_iters: usize = match args.iter().position(|a| a == "--dense-iters") {
        Some(i) => args
            .get(i + 1)
            .context("--dense-iters needs a number")?
            .parse()?,
        None => 20,
    };
    let dataset = PaperDataset::from_name(&name).with_context(|| format!("unknown {name:?}"))?;
    let dir = default_data_dir().context("no data directory: set GNSM_DATA_DIR")?;
    let data = dataset.load(&dir)?;
    let split = paper_split(&data.labels, 42);
    let encode = |rows: &[usize]| -> Result<Matrix> {
        let e = data
            .schema
            .encode_rows(&data.table, rows, Encoding::OneHot)?;
        Ok(Matrix::new(
            e.rows,
            e.layout.width(),
            e.data.iter().map(|&v| f64::from(v)).collect(),
        )?)
    };
    let both: Vec<usize> = split.train.iter().chain(&split.val).copied().collect();
    let train_val = encode(&both)?;
    let (train, val) = (encode(&split.train)?, encode(&split.val)?);
    let test = encode(&split.test)?;
    let labels: Vec<bool> = split.test.iter().map(|&i| data.labels[i]).collect();
    let threads = rayon::current_num_threads();
    println!(
        "{name}: fit on {} × {}, score {} rows, {threads} threads",
        train_val.rows(),
        train_val.cols(),
        test.rows()
    );

    let mut ours = Vec::new();
    let (forest, fit) = timed(|| Ok(IsolationForestParams::default().seed(42).fit(&train_val)?))?;
    let (scores, score) = timed(|| Ok(forest.score(&test)?))?;
    ours.push(("iforest", fit, score, average_precision(&labels, &scores)?));
    let pooled = EcodParams {
        tails: EcodTails::Pooled,
    };
    let (ecod, fit) = timed(|| Ok(pooled.fit(&train_val)?))?;
    let (scores, score) = timed(|| Ok(ecod.score(&test)?))?;
    ours.push(("ecod", fit, score, average_precision(&labels, &scores)?));
    let params = GmmParams::new(5).seed(42).max_iter(20).tol(0.0);
    let (gmm, fit) = timed(|| Ok(params.fit(&train_val)?))?;
    let (ll, score) = timed(|| Ok(gmm.score_samples(&test)?))?;
    let scores: Vec<f64> = ll.iter().map(|v| -v).collect();
    ours.push(("gmm5x20", fit, score, average_precision(&labels, &scores)?));
    let dense = GmmParams::new(5)
        .seed(42)
        .max_iter(dense_iters)
        .tol(0.0)
        .kernel(GmmKernel::Dense);
    let (gmm, fit_dense) = timed(|| Ok(dense.fit(&train_val)?))?;
    let (ll, score_dense) = timed(|| Ok(gmm.score_samples(&test)?))?;
    let scores: Vec<f64> = ll.iter().map(|v| -v).collect();
    ours.push((
        "gmm5dense",
        fit_dense,
        score_dense,
        average_precision(&labels, &scores)?,
    ));
    let (detector, select) = timed(|| {
        Ok(GmmDetectorParams::default()
            .seed(42)
            .fit_split(&train, &val)?)
    })?;
    let (scores, score) = timed(|| Ok(detector.score(&test)?))?;
    ours.push((
        "gmm-eval",
        select,
        score,
        average_precision(&labels, &scores)?,
    ));
    for (what, fit, score, ap) in &ours {
        println!(
            "rust   {what:<8} fit {fit:8.3} s  score {score:8.3} s  AP {:.2}",
            ap * 100.0
        );
    }
    let per_iter = |(_, fit, _, _): &(&str, f64, f64, f64), iters: usize| fit / iters as f64;
    println!(
        "gmm5: {:.3} s per EM iteration with the library's kernel, {:.3} s dense ({:.1}×); \
         the evaluation's GMM chose {} components",
        per_iter(&ours[2], 20),
        per_iter(&ours[3], dense_iters),
        per_iter(&ours[3], dense_iters) / per_iter(&ours[2], 20),
        detector.mixture().n_components()
    );

    let tmp = tempfile::tempdir()?;
    write_f64(
        &tmp.path().join("train.f64"),
        train_val.as_slice().iter().copied(),
    )?;
    write_f64(
        &tmp.path().join("test.f64"),
        test.as_slice().iter().copied(),
    )?;
    write_f64(
        &tmp.path().join("labels.f64"),
        labels.iter().map(|&l| f64::from(u8::from(l))),
    )?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../benches/baselines_pyod.py"
    );
    let output = Command::new("python3")
        .arg(script)
        .arg(tmp.path())
        .arg(train_val.cols().to_string())
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string())
        .env("NUMBA_NUM_THREADS", threads.to_string())
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            print!("{text}");
            for (what, fit, score, _) in &ours {
                let theirs = text
                    .lines()
                    .find(|l| l.split_whitespace().nth(1) == Some(what))
                    .and_then(|l| {
                        let v: Vec<f64> = l
                            .split_whitespace()
                            .filter_map(|w| w.parse().ok())
                            .collect();
                        (v.len() >= 2).then(|| v[0] + v[1])
                    });
                if let Some(t) = theirs {
                    println!(
                        "speed-up {what:<8} (fit + score): {:.2}×",
                        t / (fit + score)
                    );
                }
            }
        }
        Ok(out) => println!(
            "python side failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => println!("python side skipped: python3 not runnable ({e})"),
    }
    Ok(())
}
