//! The one-hot GMM baseline alone with other candidate component counts, same splits: the
//! size chosen by validation likelihood and the test AP, per seed.
//!
//! `target/release/gmmk chess 42,43,44,45,46 3,5,7,9,12,16`
use gnsm::baselines::GmmDetectorParams;
use gnsm::data::{default_data_dir, Encoding, PaperDataset};
use gnsm::eval::Protocol;
use gnsm::msma::{Detector, Matrix};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let dataset = PaperDataset::from_name(&a[1]).unwrap();
    let seeds: Vec<u64> = a[2].split(',').map(|s| s.parse().unwrap()).collect();
    let candidates: Vec<usize> = a[3].split(',').map(|s| s.parse().unwrap()).collect();
    let data = dataset.load(&default_data_dir().unwrap())?;
    let mut aps = Vec::new();
    for seed in seeds {
        let protocol = Protocol::new(&data.schema, &data.table, seed, dataset.vocabulary())?;
        let split = protocol.split();
        let one_hot = |rows: &[usize]| -> anyhow::Result<Matrix> {
            let e = protocol
                .schema()
                .encode_rows(protocol.table(), rows, Encoding::OneHot)?;
            let w = e.layout.width();
            Ok(Matrix::new(
                e.rows,
                w,
                e.data.iter().map(|&v| f64::from(v)).collect(),
            )?)
        };
        let (train, val, test) = (
            one_hot(&split.train)?,
            one_hot(&split.val)?,
            one_hot(&split.test)?,
        );
        let start = std::time::Instant::now();
        let gmm = GmmDetectorParams {
            candidates: candidates.clone(),
            ..GmmDetectorParams::default()
        }
        .seed(seed)
        .fit_split(&train, &val)?;
        let scores = gmm.score(&test)?;
        // The library's gate: held-out minus in-sample mean score of the validation rows,
        // in in-sample standard deviations.
        let in_sample = gmm.score(&val)?;
        let n = in_sample.len() as f64;
        let mean = in_sample.iter().sum::<f64>() / n;
        let std = (in_sample.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let gap = gmm.held_out().map_or(f64::NAN, |h| (h.mean - mean) / std);
        let ap = gnsm::msma::average_precision(&protocol.test_labels(), &scores)? * 100.0;
        aps.push(ap);
        println!(
            "{} seed {seed}: k {} AP {ap:.2} gap {gap:.2} ({:.0} s)",
            a[1],
            gmm.mixture().n_components(),
            start.elapsed().as_secs_f64()
        );
    }
    let mean = aps.iter().sum::<f64>() / aps.len() as f64;
    println!("{} mean AP {mean:.2}", a[1]);
    Ok(())
}
