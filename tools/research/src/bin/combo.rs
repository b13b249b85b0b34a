//! Scores for combining the library default with the one-hot GMM on the paper protocol: per
//! seed, fit the default and the GMM baseline on the same split, and dump both detectors'
//! scores on the validation and test rows (plus a GMM refitted on train alone with the chosen
//! size, whose validation scores are out of sample) with the test labels, to
//! `research/combo/<dataset>-<seed>.json`.
//!
//! `target/release/combo cmc 42,43,44,45,46`
use gnsm::baselines::GmmDetectorParams;
use gnsm::data::{default_data_dir, Encoding, PaperDataset, Schema, Table};
use gnsm::eval::Protocol;
use gnsm::msma::{Detector, GmmParams, Matrix};
use gnsm::GnsmConfig;

/// The baselines' plain one-hot rows: the same encoding as the private `one_hot` in
/// `src/eval/baselines.rs` (which `Protocol::baselines` uses but does not export).
fn one_hot(schema: &Schema, table: &Table, rows: &[usize]) -> anyhow::Result<Matrix> {
    let e = schema.encode_rows(table, rows, Encoding::OneHot)?;
    let w = e.layout.width();
    Ok(Matrix::new(
        e.rows,
        w,
        e.data.iter().map(|&v| f64::from(v)).collect(),
    )?)
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let name = &a[1];
    let seeds: Vec<u64> = a[2].split(',').map(|s| s.parse().unwrap()).collect();
    let dataset = PaperDataset::from_name(name).unwrap();
    let data = dataset.load(&default_data_dir().unwrap())?;
    std::fs::create_dir_all("research/combo")?;
    for seed in seeds {
        let protocol = Protocol::new(&data.schema, &data.table, seed, dataset.vocabulary())?;
        let split = protocol.split();
        let labels = protocol.test_labels();
        let start = std::time::Instant::now();
        let config = GnsmConfig::default().with_seed(seed);
        let (detector, _) = gnsm_research::fit_on_split(&protocol, &config)?;
        let net_fit = start.elapsed().as_secs_f64();
        let net_val = detector.score_table(protocol.table(), Some(&split.val))?;
        let net_test = detector.score_table(protocol.table(), Some(&split.test))?;
        let (schema, table) = (protocol.schema(), protocol.table());
        let train = one_hot(schema, table, &split.train)?;
        let val = one_hot(schema, table, &split.val)?;
        let test = one_hot(schema, table, &split.test)?;
        let start = std::time::Instant::now();
        let gmm = GmmDetectorParams::default()
            .seed(seed)
            .fit_split(&train, &val)?;
        let gmm_fit = start.elapsed().as_secs_f64();
        let k = gmm.mixture().n_components();
        let gmm_val = gmm.score(&val)?;
        let gmm_test = gmm.score(&test)?;
        // The chosen size refitted on train alone: out-of-sample validation scores.
        let held = GmmParams {
            n_components: k,
            seed,
            ..GmmDetectorParams::default().gmm
        }
        .fit(&train)?;
        let neg = |v: Vec<f64>| v.into_iter().map(|x| -x).collect::<Vec<f64>>();
        let held_val = neg(held.score_samples(&val)?);
        let held_test = neg(held.score_samples(&test)?);
        let ap = |s: &[f64]| gnsm::msma::average_precision(&labels, s).unwrap() * 100.0;
        println!(
            "{name} seed {seed}: default {:.2} ({net_fit:.0} s) gmm k={k} {:.2} ({gmm_fit:.0} s) held {:.2}",
            ap(&net_test),
            ap(&gmm_test),
            ap(&held_test)
        );
        let out = serde_json::json!({
            "labels": labels, "k": k,
            "net_val": net_val, "net_test": net_test,
            "gmm_val": gmm_val, "gmm_test": gmm_test,
            "held_val": held_val, "held_test": held_test,
        });
        std::fs::write(
            format!("research/combo/{name}-{seed}.json"),
            serde_json::to_string(&out)?,
        )?;
    }
    Ok(())
}
