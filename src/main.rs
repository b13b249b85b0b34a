//! `gnsm`: fit, score and evaluate GNSM anomaly detectors on CSV files.
//!
//! ```text
//! gnsm fit DATA.csv[.gz] --out MODEL [--label COL --anomaly-value V] [--continuous a,b] ...
//! gnsm score MODEL DATA.csv --out scores.csv [--format json]
//! gnsm eval [DATA.csv] [--label COL] [--seeds 5] [--report report.json]
//! ```
//! Exit status: 0 on success, 1 when the work failed (bad file, bad value: the message says
//! where), 2 for a command line that does not parse.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::{Args, Parser, Subcommand, ValueEnum};
use gnsm::data::{CsvOptions, Schema, SchemaOptions, Table};
use gnsm::eval::{
    evaluate_baselines, evaluate_seed, summarize_baselines, Baseline, BaselineResult, EvalSummary,
    VocabularyRule,
};
use gnsm::{Explanation, Gnsm, GnsmConfig};

#[derive(Parser)]
#[command(
    name = "gnsm",
    version,
    about = "Anomaly detection in categorical and mixed tabular data with Gumbel Noise Score Matching"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit a detector on a CSV file (rows labelled anomalous are left out) and save it.
    Fit(FitArgs),
    /// Score every row of a CSV file with a saved detector.
    Score(ScoreArgs),
    /// Run the paper's protocol over seeds (80/10/10 inlier split, test = test inliers + all
    /// anomalies) and report AP and ROC-AUC. Without DATA, uses the bundled cmc dataset.
    Eval(EvalArgs),
}

#[derive(Args, Clone)]
struct DataArgs {
    /// Label column (1 / the anomaly value marks anomalies).
    #[arg(long)]
    label: Option<String>,
    /// The label value that marks an anomaly (inferred for 0/1 labels).
    #[arg(long)]
    anomaly_value: Option<String>,
    /// Columns to treat as continuous, comma-separated.
    #[arg(long, value_delimiter = ',')]
    continuous: Vec<String>,
    /// Columns to ignore, comma-separated.
    #[arg(long, value_delimiter = ',')]
    ignore: Vec<String>,
    /// Field delimiter.
    #[arg(long, default_value = ",")]
    delimiter: char,
}

#[derive(Args, Clone)]
struct TrainArgs {
    /// Training steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Wall-clock training budget in minutes (per fit).
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Network width.
    #[arg(long)]
    width: Option<usize>,
    /// Residual blocks.
    #[arg(long)]
    depth: Option<usize>,
    /// Rows per training step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Score clean rows as they are, without the reference's one denoising step.
    #[arg(long)]
    no_denoise: bool,
    /// Mixture sizes the density stage chooses among, comma-separated (default 3,5,7,9);
    /// one value fixes the size.
    #[arg(long, value_delimiter = ',')]
    components: Vec<usize>,
    /// A full configuration as JSON (GnsmConfig); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// No progress bars, only results.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct FitArgs {
    /// CSV or CSV.gz file with a header row.
    data: PathBuf,
    /// Where to write the model.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    data_args: DataArgs,
    #[command(flatten)]
    train: TrainArgs,
    /// Seed of the split, the weights and the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Json,
}

#[derive(Args)]
struct ScoreArgs {
    /// A model written by `gnsm fit`.
    model: PathBuf,
    /// CSV or CSV.gz file to score.
    data: PathBuf,
    /// Where to write the scores.
    #[arg(long)]
    out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// How many of the most anomalous rows to summarise on stdout.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Contributing columns listed per row.
    #[arg(long, default_value_t = 3)]
    columns: usize,
    /// Field delimiter.
    #[arg(long, default_value = ",")]
    delimiter: char,
    /// No summary on stdout.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Vocabulary {
    TrainVal,
    AllInliers,
    AllRows,
}

#[derive(Args)]
struct EvalArgs {
    /// CSV or CSV.gz with a label column (default: the bundled data/cmc.csv).
    data: Option<PathBuf>,
    #[command(flatten)]
    data_args: DataArgs,
    #[command(flatten)]
    train: TrainArgs,
    /// Number of seeds, starting at 42 as the paper.
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Rows the encoder's vocabulary is fitted on.
    #[arg(long, value_enum, default_value_t = Vocabulary::TrainVal)]
    vocabulary: Vocabulary,
    /// Write a JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Most anomalous test rows of the last seed to show, with explanations.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Also run IsolationForest, ECOD and a one-hot GMM on the same seeds and splits, and
    /// print them beside GNSM.
    #[arg(long)]
    compare: bool,
}

fn csv_options(delimiter: char) -> Result<CsvOptions> {
    if !delimiter.is_ascii() {
        bail!("the delimiter must be a single ASCII character, got {delimiter:?}");
    }
    Ok(CsvOptions {
        delimiter: delimiter as u8,
        ..CsvOptions::default()
    })
}

fn read_table(path: &Path, delimiter: char) -> Result<Table> {
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    Ok(Table::read(path, &csv_options(delimiter)?)?)
}

fn build_config(data: &DataArgs, train: &TrainArgs, seed: u64) -> Result<GnsmConfig> {
    let mut config = match &train.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not a GNSM configuration", path.display()))?
        }
        None => GnsmConfig::default(),
    };
    config.schema = SchemaOptions {
        continuous: data.continuous.clone(),
        ignored: data.ignore.clone(),
        label: data.label.clone(),
        anomaly_value: data.anomaly_value.clone(),
        ..config.schema
    };
    if let Some(steps) = train.steps {
        config.trainer.steps = steps;
    }
    if train.max_minutes.is_some() {
        config.trainer.max_minutes = train.max_minutes;
        if train.steps.is_none() {
            // A time budget alone: let time decide (the cosine schedule spans the budget).
            config.trainer.steps = config.trainer.steps.max(1_000_000);
        }
    }
    if let Some(w) = train.width {
        config.network.width = w;
    }
    if let Some(d) = train.depth {
        config.network.depth = d;
    }
    if let Some(b) = train.batch_size {
        config.trainer.batch_size = b;
    }
    if let Some(lr) = train.lr {
        config.trainer.lr = lr;
        if let gnsm::models::LrSchedule::Cosine { min_lr } = config.trainer.schedule {
            config.trainer.schedule = gnsm::models::LrSchedule::Cosine {
                min_lr: min_lr.min(lr),
            };
        }
    }
    if train.no_denoise {
        config.denoise = false;
    }
    if !train.components.is_empty() {
        config.msma = config.msma.with_components(&train.components);
    }
    config.trainer.progress = !train.quiet;
    Ok(config.with_seed(seed))
}

fn describe(explanation: &Explanation, columns: usize) -> String {
    explanation
        .contributions
        .iter()
        .take(columns)
        .map(|c| {
            if c.value == c.expected {
                format!("{}={} ({:.0}%)", c.feature, c.value, 100.0 * c.share)
            } else {
                format!(
                    "{}={} (expected {}, {:.0}%)",
                    c.feature,
                    c.value,
                    c.expected,
                    100.0 * c.share
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn fit(args: FitArgs) -> Result<()> {
    let table = read_table(&args.data, args.data_args.delimiter)?;
    let config = build_config(&args.data_args, &args.train, args.seed)?;
    let (detector, report) = Gnsm::fit(&config, &table, &Device::Cpu)?;
    detector.save(&args.out)?;
    println!(
        "fitted on {} rows ({} validation) of {}: {} steps in {:.1} s, best validation loss {:.5}, {} MSMA components; model written to {}",
        report.train_rows,
        report.val_rows,
        args.data.display(),
        report.training.steps,
        report.seconds,
        report.training.best_val_loss,
        detector.msma().gmm().n_components(),
        args.out.display()
    );
    Ok(())
}

fn score(args: ScoreArgs) -> Result<()> {
    if !args.model.exists() {
        bail!("{}: no such model file", args.model.display());
    }
    let detector = Gnsm::load(&args.model, &Device::Cpu)?;
    let table = read_table(&args.data, args.delimiter)?;
    // Scores and explanations in one pass over batches of rows (bounded memory: only the
    // top contributing columns of each row are kept).
    let rows: Vec<usize> = (0..table.rows()).collect();
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(rows.len() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "scoring {bar:30} {pos}/{len} rows {per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    // Per row only what the output needs: score, line and the top columns (a short string,
    // or the truncated contributions for JSON).
    let mut scores = Vec::with_capacity(rows.len());
    let mut lines = Vec::with_capacity(rows.len());
    let mut described = Vec::with_capacity(rows.len());
    let mut contributions = Vec::new();
    for chunk in rows.chunks(2048) {
        for mut e in detector.explain(&table, chunk)? {
            e.contributions.truncate(args.columns);
            scores.push(e.score);
            lines.push(e.line);
            described.push(describe(&e, args.columns));
            if matches!(args.format, Format::Json) {
                contributions.push(e.contributions);
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut rank = vec![0usize; scores.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r + 1;
    }
    // Stream to a temporary file beside the output, then rename: atomic, and no second copy
    // of the output in memory.
    let tmp = args
        .out
        .with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        match args.format {
            Format::Csv => {
                writeln!(out, "row,line,score,rank,top_columns")?;
                for i in 0..scores.len() {
                    let cols = described[i].replace('"', "\"\"");
                    writeln!(
                        out,
                        "{},{},{},{},\"{cols}\"",
                        i + 1,
                        lines[i],
                        scores[i],
                        rank[i]
                    )?;
                }
            }
            Format::Json => {
                writeln!(out, "[")?;
                for i in 0..scores.len() {
                    let item = serde_json::json!({
                        "row": i + 1, "line": lines[i], "score": scores[i], "rank": rank[i],
                        "contributions": contributions[i],
                    });
                    let sep = if i + 1 < scores.len() { "," } else { "" };
                    writeln!(out, "  {item}{sep}")?;
                }
                writeln!(out, "]")?;
            }
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &args.out)?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("{}: cannot write the scores", args.out.display())));
    }
    if !args.quiet {
        println!(
            "scored {} rows of {}; scores written to {}",
            scores.len(),
            args.data.display(),
            args.out.display()
        );
        println!("most anomalous:");
        for &i in order.iter().take(args.top) {
            println!(
                "  line {:>7}  score {:>10.3}  {}",
                lines[i], scores[i], described[i]
            );
        }
    }
    Ok(())
}

fn eval(args: EvalArgs) -> Result<()> {
    let path = args
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/cmc.csv")));
    let table = read_table(&path, args.data_args.delimiter)?;
    let mut data_args = args.data_args.clone();
    if data_args.label.is_none() {
        if table.column_index("label").is_some() {
            data_args.label = Some("label".into());
        } else {
            bail!(
                "{}: name the label column with --label (evaluation needs labels)",
                path.display()
            );
        }
    }
    let mut config = build_config(&data_args, &args.train, 0)?;
    config.trainer.progress = false;
    let schema = Schema::infer(&table, &config.schema)?;
    let rule = match args.vocabulary {
        Vocabulary::TrainVal => VocabularyRule::TrainVal,
        Vocabulary::AllInliers => VocabularyRule::AllInliers,
        Vocabulary::AllRows => VocabularyRule::AllRows,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !args.train.quiet {
        println!(
            "{name}: {} rows; network width {} depth {}, {} steps of {} rows per seed",
            table.rows(),
            config.network.width,
            config.network.depth,
            config.trainer.steps,
            config.trainer.batch_size
        );
    }
    let mut results = Vec::new();
    let mut baseline_results: Vec<BaselineResult> = Vec::new();
    let mut last = None;
    for seed in 42..42 + args.seeds {
        let bar = if args.train.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::new(config.trainer.steps as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "seed {seed} {{bar:30}} {{pos}}/{{len}} steps {{per_sec}} eta {{eta}}"
                ))
                .expect("valid template"),
            );
            bar
        };
        let run = evaluate_seed(
            &config,
            &schema,
            &table,
            seed,
            rule,
            &Device::Cpu,
            &mut |e| {
                if let gnsm::models::TrainEvent::Step { step, .. } = e {
                    bar.set_position(*step as u64);
                }
            },
        )?;
        bar.finish_and_clear();
        let r = &run.result;
        println!(
            "seed {seed}: AP {:6.2}  ROC-AUC {:6.2}  ({} steps, best val loss {:.4}, {} components, fit {:.1} s)",
            r.ap, r.roc_auc, r.steps, r.best_val_loss, r.components, r.fit_seconds
        );
        results.push(run.result.clone());
        last = Some(run);
        if args.compare {
            for b in evaluate_baselines(&schema, &table, seed, rule, &Baseline::ALL)? {
                println!(
                    "         {:<12} AP {:6.2}  ROC-AUC {:6.2}  (fit {:.2} s, score {:.2} s)",
                    b.baseline.name(),
                    b.ap,
                    b.roc_auc,
                    b.fit_seconds,
                    b.score_seconds
                );
                baseline_results.push(b);
            }
        }
    }
    let summary = EvalSummary::new(name, results);
    let comparison = compare_table(&summary, &baseline_results);
    if args.compare {
        print!("{comparison}");
    } else {
        println!(
            "AP {:.2} ± {:.2}   ROC-AUC {:.2} ± {:.2}   over {} seeds",
            summary.ap_mean,
            summary.ap_std,
            summary.roc_auc_mean,
            summary.roc_auc_std,
            summary.seeds.len()
        );
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
        println!("most anomalous test rows (seed {}):", run.result.seed);
        for (e, &i) in explanations.iter().zip(&order) {
            let tag = if run.labels[i] { "anomaly" } else { "inlier " };
            println!(
                "  line {:>6} [{tag}] score {:>9.3}  {}",
                e.line,
                e.score,
                describe(e, 3)
            );
        }
    }
    if let Some(report) = &args.report {
        let mut value = serde_json::to_value(&summary)?;
        if args.compare {
            value["baselines"] = serde_json::to_value(&baseline_results)?;
            value["baseline_summaries"] =
                serde_json::to_value(summarize_baselines(&baseline_results))?;
        }
        let json = serde_json::to_vec_pretty(&value)?;
        gnsm::data::write_atomic(report, &json)?;
        println!("report written to {}", report.display());
    }
    Ok(())
}

/// Mean ± std of each detector over the seeds, GNSM first.
fn compare_table(summary: &EvalSummary, baselines: &[BaselineResult]) -> String {
    let n = summary.seeds.len().max(1) as f64;
    let fit = summary.seeds.iter().map(|s| s.fit_seconds).sum::<f64>() / n;
    let score = summary.seeds.iter().map(|s| s.score_seconds).sum::<f64>() / n;
    let mut out = format!(
        "{:<12} {:>15} {:>15} {:>9} {:>9}   over {} seeds\n",
        "detector",
        "AP",
        "ROC-AUC",
        "fit s",
        "score s",
        summary.seeds.len()
    );
    let mut line = |name: &str,
                    ap: f64,
                    ap_sd: f64,
                    auc: f64,
                    auc_sd: f64,
                    fit: f64,
                    score: f64| {
        out.push_str(&format!(
            "{name:<12} {ap:>6.2} ± {ap_sd:<6.2} {auc:>6.2} ± {auc_sd:<6.2} {fit:>9.2} {score:>9.2}\n"
        ));
    };
    line(
        "GNSM",
        summary.ap_mean,
        summary.ap_std,
        summary.roc_auc_mean,
        summary.roc_auc_std,
        fit,
        score,
    );
    for b in summarize_baselines(baselines) {
        line(
            b.baseline.name(),
            b.ap_mean,
            b.ap_std,
            b.roc_auc_mean,
            b.roc_auc_std,
            b.fit_seconds,
            b.score_seconds,
        );
    }
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fit(a) => fit(a),
        Command::Score(a) => score(a),
        Command::Eval(a) => eval(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
