//! `gnsm fit`: train a detector on a file and save it.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use gnsm::Gnsm;

use crate::args::{build_config, device, training_bar, DataArgs, TrainArgs};
use crate::io::{read_table, Destination, STDIO};

/// `gnsm fit` options.
#[derive(Args, Debug)]
pub struct FitArgs {
    /// CSV or CSV.gz file with a header row, or a Parquet file (`-` for standard input).
    pub data: PathBuf,
    /// Where to write the model (a file: models are binary).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub data_args: DataArgs,
    #[command(flatten)]
    pub train: TrainArgs,
    /// Seed of the split, the weights and the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Run `gnsm fit`.
pub fn run(args: FitArgs) -> Result<()> {
    if args.out.as_os_str() == STDIO {
        bail!("--out -: a model is a binary file; name a file to write it to");
    }
    let mut inputs = vec![args.data.clone()];
    inputs.extend(args.train.inputs());
    let out = Destination::check(&args.out, &inputs, "model")?;
    let config = build_config(&args.data_args, &args.train, args.seed)?;
    let device = device(&args.train.device)?;
    let table = read_table(&args.data, &args.data_args.csv()?)?;
    let (bar, mut on_event) = training_bar(args.train.quiet, "training");
    let (detector, summary) = Gnsm::fit_observed(&config, &table, &device, &mut on_event)?;
    bar.finish_and_clear();
    detector.save(&args.out)?;
    let scoring = match detector.msma() {
        Some(msma) => format!("{} MSMA components", msma.gmm().n_components()),
        None => match detector.one_hot_report() {
            Some(r) if r.used => format!(
                "denoising-loss scores plus a {}-component one-hot mixture",
                r.components
            ),
            _ => "denoising-loss scores".to_string(),
        },
    };
    println!(
        "fitted on {} rows ({} validation, {} held out to calibrate p-values) of {}: {} steps in {:.1} s, best validation loss {:.5}, {scoring}; model written to {out}",
        summary.train_rows,
        summary.val_rows,
        summary.calibration_rows,
        args.data.display(),
        summary.training.steps,
        summary.seconds,
        summary.training.best_val_loss,
    );
    Ok(())
}
