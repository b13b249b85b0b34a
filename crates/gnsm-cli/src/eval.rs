//! `gnsm eval`: the paper's protocol over seeds, on a labelled file or the bundled cmc data.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use gnsm::data::{Schema, Table, VocabularyRule};
use gnsm::eval::{summarize_baselines, Baseline, BaselineResult, EvalSummary, Protocol};
use gnsm::msma::DecisionMetrics;
use gnsm::DecisionRule;

use crate::args::{build_config, device, DataArgs, TrainArgs};
use crate::io::{read_table, Destination};
use crate::score::describe;

/// The bundled demo dataset (UCI Contraceptive Method Choice as the paper uses it), built
/// into the binary so `gnsm eval` runs wherever the binary is.
const BUNDLED_CMC: &[u8] = include_bytes!("../data/cmc.csv");

/// `gnsm eval` options.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// CSV, CSV.gz or Parquet with a label column (`-` for standard input; default: the bundled cmc
    /// dataset).
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub data_args: DataArgs,
    #[command(flatten)]
    pub train: TrainArgs,
    /// Number of seeds, starting at 42 as the paper (at least 1).
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// Rows the encoder's vocabulary is fitted on: train-val (the fitting rows), all-inliers
    /// or all-rows (the reference's rules).
    #[arg(long, default_value = "train-val")]
    pub vocabulary: VocabularyRule,
    /// Write a JSON report here (`-` for standard output).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Most anomalous test rows of the last seed to show, with explanations.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Also run IsolationForest, ECOD and a one-hot GMM on the same seeds and splits, and
    /// print them beside GNSM.
    #[arg(long)]
    pub compare: bool,
}

/// Run `gnsm eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    if args.seeds == 0 {
        bail!("--seeds 0: an evaluation needs at least one seed");
    }
    let mut inputs: Vec<PathBuf> = args.data.iter().cloned().collect();
    inputs.extend(args.train.inputs());
    let report = match &args.report {
        Some(path) => Some(Destination::check(path, &inputs, "report")?),
        None => None,
    };
    let mut config = build_config(&args.data_args, &args.train, 0)?;
    let device = device(&args.train.device)?;
    let options = args.data_args.csv()?;
    let (table, name) = match &args.data {
        Some(path) => (
            read_table(path, &options)?,
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "<stdin>".into()),
        ),
        None => (
            Table::from_reader(BUNDLED_CMC, "cmc.csv (bundled)", &options)?,
            "cmc.csv".to_string(),
        ),
    };
    if config.schema.label.is_none() {
        if table.column_index("label").is_some() {
            config.schema.label = Some("label".into());
        } else {
            bail!(
                "{}: name the label column with --label (evaluation needs labels)",
                table.source()
            );
        }
    }
    let schema = Schema::infer(&table, &config.schema)?;
    let rule = args.vocabulary;
    // Human output goes to stderr when the report takes standard output.
    let mut say: Box<dyn Write> = if report.as_ref().is_some_and(Destination::is_stdout) {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    if !args.train.quiet {
        writeln!(
            say,
            "{name}: {} rows; network width {} depth {}, {} steps of {} rows per seed (at least {} passes over the training rows)",
            table.rows(),
            config.network.width,
            config.network.depth,
            config.trainer.steps,
            config.trainer.batch_size,
            config.min_epochs
        )?;
    }
    let mut results = Vec::new();
    let mut baseline_results: Vec<BaselineResult> = Vec::new();
    let mut last = None;
    for seed in 42..42 + args.seeds {
        let protocol = Protocol::new(&schema, &table, seed, rule)?;
        let bar = if args.train.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            let steps = config.training_steps(protocol.split().train.len());
            let bar = indicatif::ProgressBar::new(steps as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "seed {seed} {{bar:30}} {{pos}}/{{len}} steps {{per_sec}} eta {{eta}}"
                ))
                .expect("valid template"),
            );
            bar
        };
        let run = protocol.fit(&config, &device, &mut |e| {
            if let gnsm::models::TrainEvent::Step { step, .. } = e {
                bar.set_position(*step as u64);
            }
        })?;
        bar.finish_and_clear();
        let r = &run.result;
        let components = match (&r.one_hot, r.components) {
            (_, k) if k > 0 => format!(", {k} MSMA components"),
            (Some(t), _) if t.used => format!(
                ", plus a {}-component one-hot mixture (gap {:.2})",
                t.components,
                t.gap.unwrap_or(f64::NAN)
            ),
            (Some(t), _) => match t.gap {
                Some(gap) => format!(", loss alone (one-hot gap {gap:.2})"),
                None => ", loss alone".into(),
            },
            (None, _) => String::new(),
        };
        writeln!(
            say,
            "seed {seed}: AP {:6.2}  ROC-AUC {:6.2}  (random ranking AP {:.2}; {} steps, best val loss {:.4}{components}, fit {:.1} s)",
            r.ap, r.roc_auc, r.random_ap(), r.steps, r.best_val_loss, r.fit_seconds
        )?;
        if let Some(d) = &r.decisions {
            writeln!(say, "         GNSM         {}", decisions(d))?;
        }
        results.push(run.result.clone());
        last = Some(run);
        if args.compare {
            for b in protocol.baselines(&Baseline::ALL)? {
                writeln!(
                    say,
                    "         {:<12} AP {:6.2}  ROC-AUC {:6.2}  (fit {:.2} s, score {:.2} s)",
                    b.baseline.name(),
                    b.ap,
                    b.roc_auc,
                    b.fit_seconds,
                    b.score_seconds
                )?;
                if let Some(d) = &b.decisions {
                    writeln!(say, "         {:<12} {}", "", decisions(d))?;
                }
                baseline_results.push(b);
            }
        }
    }
    let summary = EvalSummary::new(name, results);
    if args.compare {
        write!(say, "{}", compare_table(&summary, &baseline_results))?;
    } else {
        writeln!(
            say,
            "AP {:.2} ± {:.2}   ROC-AUC {:.2} ± {:.2}   over {} seeds",
            summary.ap_mean,
            summary.ap_std,
            summary.roc_auc_mean,
            summary.roc_auc_std,
            summary.seeds.len()
        )?;
    }
    if let Some(run) = last.filter(|_| args.top > 0) {
        let mut order: Vec<usize> = (0..run.scores.len()).collect();
        order.sort_by(|&a, &b| run.scores[b].total_cmp(&run.scores[a]));
        let top: Vec<usize> = order
            .iter()
            .take(args.top)
            .map(|&i| run.test_rows[i])
            .collect();
        let explanations = run.detector.explain(&table, &top)?;
        writeln!(say, "most anomalous test rows (seed {}):", run.result.seed)?;
        for (e, &i) in explanations.iter().zip(&order) {
            let tag = if run.labels[i] { "anomaly" } else { "inlier " };
            writeln!(
                say,
                "  line {:>6} [{tag}] score {:>9.3}  {}",
                e.line,
                e.score,
                describe(&e.contributions, 3)
            )?;
        }
    }
    if let Some(report) = report {
        let mut value = serde_json::to_value(&summary)?;
        if args.compare {
            value["baselines"] = serde_json::to_value(&baseline_results)?;
            value["baseline_summaries"] =
                serde_json::to_value(summarize_baselines(&baseline_results))?;
        }
        let mut sink = report.open()?;
        sink.write_all(&serde_json::to_vec_pretty(&value)?)?;
        sink.write_all(b"\n")?;
        sink.finish()?;
        writeln!(say, "report written to {report}")?;
    }
    Ok(())
}

/// Precision, recall and F1 at the default rule, on one line.
fn decisions(d: &DecisionMetrics) -> String {
    format!(
        "at p <= {}: precision {:.2}  recall {:.2}  F1 {:.2}  ({} flagged, inlier FPR {:.3}; the test inliers calibrate)",
        d.alpha, d.precision, d.recall, d.f1, d.flagged, d.false_positive_rate
    )
}

/// Mean F1 at the default rule over the results that report it.
fn mean_f1<'a>(decisions: impl Iterator<Item = Option<&'a DecisionMetrics>>) -> f64 {
    let f1: Vec<f64> = decisions.flatten().map(|d| d.f1).collect();
    f1.iter().sum::<f64>() / f1.len().max(1) as f64
}

/// Mean ± std of each detector over the seeds, GNSM first.
fn compare_table(summary: &EvalSummary, baselines: &[BaselineResult]) -> String {
    let n = summary.seeds.len().max(1) as f64;
    let fit = summary.seeds.iter().map(|s| s.fit_seconds).sum::<f64>() / n;
    let score = summary.seeds.iter().map(|s| s.score_seconds).sum::<f64>() / n;
    let alpha = DecisionRule::DEFAULT_ALPHA;
    let mut out = format!(
        "{:<12} {:>15} {:>15} {:>9} {:>9} {:>9}   over {} seeds\n",
        "detector",
        "AP",
        "ROC-AUC",
        format!("F1@{alpha}"),
        "fit s",
        "score s",
        summary.seeds.len()
    );
    let mut line = |name: &str, ap: (f64, f64), auc: (f64, f64), f1: f64, fit: f64, score: f64| {
        out.push_str(&format!(
            "{name:<12} {:>6.2} ± {:<6.2} {:>6.2} ± {:<6.2} {f1:>9.2} {fit:>9.2} {score:>9.2}\n",
            ap.0, ap.1, auc.0, auc.1
        ));
    };
    line(
        "GNSM",
        (summary.ap_mean, summary.ap_std),
        (summary.roc_auc_mean, summary.roc_auc_std),
        mean_f1(summary.seeds.iter().map(|s| s.decisions.as_ref())),
        fit,
        score,
    );
    for b in summarize_baselines(baselines) {
        let f1 = mean_f1(
            baselines
                .iter()
                .filter(|r| r.baseline == b.baseline)
                .map(|r| r.decisions.as_ref()),
        );
        line(
            b.baseline.name(),
            (b.ap_mean, b.ap_std),
            (b.roc_auc_mean, b.roc_auc_std),
            f1,
            b.fit_seconds,
            b.score_seconds,
        );
    }
    out
}
