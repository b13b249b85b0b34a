//! The `gnsm` command-line tool: fit, score and evaluate GNSM anomaly detectors on CSV files.
//!
//! The pipeline behind it is not built yet; until it is, every subcommand says so clearly
//! and exits with status 2.

use std::process::ExitCode;

const USAGE: &str = "usage: gnsm <fit|score|eval> [ARGS...]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fit" | "score" | "eval") => {
            eprintln!(
                "gnsm {}: not yet — the end-to-end pipeline (encoding, training, MSMA scoring) \
                 has not landed. The building blocks are available as libraries: see README.md.",
                args[0]
            );
            ExitCode::from(2)
        }
        Some("--version" | "-V") => {
            println!("gnsm {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
