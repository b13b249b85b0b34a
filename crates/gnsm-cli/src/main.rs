//! `gnsm`: fit, score and evaluate GNSM anomaly detectors on CSV files.
//!
//! ```text
//! gnsm fit DATA.csv[.gz]|DATA.parquet --out MODEL [--label COL --anomaly-value V] [--continuous a,b] ...
//! gnsm score MODEL DATA.csv --out scores.csv [--format csv|json|jsonl]
//! gnsm eval [DATA.csv] [--label COL] [--seeds 5] [--report report.json] [--compare]
//! gnsm info MODEL
//! ```
//! `-` reads standard input or writes standard output. Outputs are checked before any work
//! (an output naming an input is refused), and files are replaced atomically.
//!
//! Exit status: 0 on success, 1 when the work failed (bad file, bad value: the message says
//! where), 2 for a command line that does not parse.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod eval;
mod fit;
mod info;
mod io;
#[cfg(feature = "parquet")]
mod parquet_out;
mod score;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Fit(fit::FitArgs),
    /// Score every row of a CSV file with a saved detector.
    Score(score::ScoreArgs),
    /// Run the paper's protocol over seeds (80/10/10 inlier split, test = test inliers + all
    /// anomalies) and report AP and ROC-AUC. Without DATA, uses the bundled cmc dataset.
    Eval(eval::EvalArgs),
    /// Verify a saved model and print what it holds: schema, network, training, score.
    Info(info::InfoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fit(a) => fit::run(a),
        Command::Score(a) => score::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Info(a) => info::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", io::terminal_safe(&message(&e)));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: library errors already include their cause's
/// text (`path: reason`), which `{:#}` would repeat.
fn message(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}
