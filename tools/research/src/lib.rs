//! Shared pieces of the research binaries.
use candle_core::Device;
use gnsm::data::{default_data_dir, PaperDataset};
use gnsm::eval::Protocol;
use gnsm::{FitSummary, Gnsm, GnsmConfig};

/// Fit `config` on the protocol's train rows, validated on its val rows, on the CPU.
pub fn fit_on_split(
    protocol: &Protocol<'_>,
    config: &GnsmConfig,
) -> anyhow::Result<(Gnsm, FitSummary)> {
    let split = protocol.split();
    Ok(Gnsm::fit_rows(
        config,
        protocol.schema().clone(),
        protocol.table(),
        &split.train,
        &split.val,
        &Device::Cpu,
        &mut |_| {},
    )?)
}

/// One fit's line after `what`: best validation loss, where it fell, time, and the
/// detector's AP and ROC-AUC × 100 on the protocol's test rows.
pub fn fit_line(
    what: &str,
    protocol: &Protocol<'_>,
    detector: &Gnsm,
    summary: &FitSummary,
) -> anyhow::Result<String> {
    let scores = detector.score_table(protocol.table(), Some(&protocol.split().test))?;
    let labels = protocol.test_labels();
    let t = &summary.training;
    Ok(format!(
        "{what}: best val {:.6} at {} of {} ({:.0} s) AP {:.2} AUC {:.2}",
        t.best_val_loss,
        t.best_step,
        t.steps,
        t.seconds,
        gnsm::msma::average_precision(&labels, &scores)? * 100.0,
        gnsm::msma::roc_auc(&labels, &scores)? * 100.0,
    ))
}

/// The validation curve as `step:train/val` pairs.
pub fn curve_line(summary: &FitSummary) -> String {
    let points: Vec<String> = summary
        .training
        .curve
        .iter()
        .map(|c| format!("{}:{:.3}/{:.3}", c.step, c.train_loss, c.val_loss))
        .collect();
    points.join(" ")
}

/// Run `each(dataset name, seed, protocol)` for every dataset of the comma-separated
/// `datasets` and every seed of the comma-separated `seeds` (the binaries' two arguments).
pub fn for_each_split(
    datasets: &str,
    seeds: &str,
    mut each: impl FnMut(&str, u64, &Protocol<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let seeds: Vec<u64> = seeds.split(',').map(str::parse).collect::<Result<_, _>>()?;
    for name in datasets.split(',') {
        let dataset = PaperDataset::from_name(name)
            .ok_or_else(|| anyhow::anyhow!("unknown dataset {name}"))?;
        let dir = default_data_dir().ok_or_else(|| anyhow::anyhow!("no data directory"))?;
        let data = dataset.load(&dir)?;
        for &seed in &seeds {
            let protocol = Protocol::new(&data.schema, &data.table, seed, dataset.vocabulary())?;
            each(name, seed, &protocol)?;
        }
    }
    Ok(())
}
