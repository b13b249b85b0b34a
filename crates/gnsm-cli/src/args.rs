//! Options shared by the commands, and turning them into a checked configuration before any
//! data is read.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use gnsm::data::{CsvOptions, MissingContinuous, SchemaOptions, UnseenPolicy};
use gnsm::{GnsmConfig, ScoreMethod, TrainOverrides};

/// How the file's columns are read.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Label column (1 / the anomaly value marks anomalies).
    #[arg(long)]
    pub label: Option<String>,
    /// The label value that marks an anomaly (inferred for 0/1 labels).
    #[arg(long)]
    pub anomaly_value: Option<String>,
    /// Columns to treat as continuous, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub continuous: Vec<String>,
    /// Columns to ignore, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Columns to keep as categorical although nearly every value is distinct (an
    /// identifier-like column is refused otherwise), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Cells that mean "missing", comma-separated (default: empty, ?, NA); an empty list
    /// entry stands for the empty cell.
    #[arg(long, value_delimiter = ',')]
    pub missing: Option<Vec<String>>,
    /// Fill missing values of continuous columns with the training mean (default: error).
    #[arg(long)]
    pub impute_mean: bool,
    /// A category not seen in fitting: a reserved slot (default, reads as unlikely), all
    /// cold (ignore), or an error naming column, value and line.
    #[arg(long, value_enum)]
    pub unseen: Option<Unseen>,
    /// Refuse a categorical column with more distinct values than this (default 1000).
    #[arg(long)]
    pub max_categories: Option<usize>,
    /// Field delimiter (one ASCII character).
    #[arg(long, default_value = ",")]
    pub delimiter: char,
}

/// `--unseen` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Unseen {
    /// One extra slot per column that training never marks.
    Reserve,
    /// Every entry of the column cold.
    Ignore,
    /// Refuse the row.
    Error,
}

impl From<Unseen> for UnseenPolicy {
    fn from(u: Unseen) -> Self {
        match u {
            Unseen::Reserve => UnseenPolicy::Reserve,
            Unseen::Ignore => UnseenPolicy::Ignore,
            Unseen::Error => UnseenPolicy::Error,
        }
    }
}

impl DataArgs {
    /// The reader's options.
    pub fn csv(&self) -> Result<CsvOptions> {
        csv_options(self.delimiter)
    }

    /// These options on top of a configuration's schema options (a flag given replaces the
    /// configuration's value; one left out keeps it).
    pub fn schema(&self, base: SchemaOptions) -> SchemaOptions {
        let or = |flag: &Vec<String>, base: Vec<String>| {
            if flag.is_empty() {
                base
            } else {
                flag.clone()
            }
        };
        SchemaOptions {
            continuous: or(&self.continuous, base.continuous),
            ignored: or(&self.ignore, base.ignored),
            categorical: or(&self.categorical, base.categorical),
            label: self.label.clone().or(base.label),
            anomaly_value: self.anomaly_value.clone().or(base.anomaly_value),
            missing_values: self.missing.clone().unwrap_or(base.missing_values),
            missing_continuous: if self.impute_mean {
                MissingContinuous::ImputeMean
            } else {
                base.missing_continuous
            },
            unseen: self.unseen.map_or(base.unseen, UnseenPolicy::from),
            max_categories: self.max_categories.unwrap_or(base.max_categories),
        }
    }
}

/// The reader's options for a delimiter given on the command line.
pub fn csv_options(delimiter: char) -> Result<CsvOptions> {
    if !delimiter.is_ascii() {
        bail!("--delimiter must be a single ASCII character, got {delimiter:?}");
    }
    Ok(CsvOptions {
        delimiter: delimiter as u8,
        ..CsvOptions::default()
    })
}

/// A named starting configuration.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Preset {
    /// The library default (`GnsmConfig::default`).
    #[default]
    Default,
    /// The reference pipeline as the Table 2 reproduction runs it (`GnsmConfig::paper`).
    Paper,
}

/// What the network is and how long it trains.
#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// The configuration to start from (a --config file replaces it).
    #[arg(long, value_enum, default_value_t = Preset::Default)]
    pub preset: Preset,
    /// Training steps, exactly (the default 4000 is raised to 24 passes over a large table).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Wall-clock training budget in minutes (per fit).
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// Train the network on a seeded sample of at most N training rows; the scoring stage,
    /// validation and calibration still see every row (for files too large to train on in
    /// full within the time budget).
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// Network width.
    #[arg(long)]
    pub width: Option<usize>,
    /// Residual blocks.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Rows per training step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Score clean rows as they are, without the reference's one denoising step.
    #[arg(long)]
    pub no_denoise: bool,
    /// Mixture sizes the density stage chooses among, comma-separated (default 3,5,7,9);
    /// one value fixes the size.
    #[arg(long, value_delimiter = ',')]
    pub components: Vec<usize>,
    /// A configuration as JSON (GnsmConfig; keys left out take the defaults); flags
    /// override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to train and score: cpu, cuda, cuda:N or metal (the GPU backends need the
    /// binary built with the `cuda` / `metal` feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars, only results.
    #[arg(long, short)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The files these options read.
    pub fn inputs(&self) -> Vec<PathBuf> {
        self.config.iter().cloned().collect()
    }

    /// The overrides on top of the configuration file (or the defaults).
    fn overrides(&self) -> TrainOverrides {
        TrainOverrides {
            steps: self.steps,
            max_minutes: self.max_minutes,
            width: self.width,
            depth: self.depth,
            batch_size: self.batch_size,
            lr: self.lr,
            denoise: self.no_denoise.then_some(false),
            components: self.components.clone(),
            ..TrainOverrides::default()
        }
    }
}

/// The configuration the options describe, checked (every range, every key of a config
/// file) before any data is read.
pub fn build_config(data: &DataArgs, train: &TrainArgs, seed: u64) -> Result<GnsmConfig> {
    let base = match &train.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read the configuration", path.display()))?;
            GnsmConfig::from_json(&text).with_context(|| format!("{}", path.display()))?
        }
        None => match train.preset {
            Preset::Default => GnsmConfig::default(),
            Preset::Paper => GnsmConfig::paper(),
        },
    };
    if !train.components.is_empty() && !matches!(base.score, ScoreMethod::Msma) {
        bail!(
            "--components sizes the MSMA mixture, and this configuration scores by the \
             denoising loss; add --preset paper (or a --config with \"score\": \"msma\")"
        );
    }
    let mut config = train.overrides().apply(base);
    config.schema = data.schema(config.schema);
    if train.sample.is_some() {
        config.train_sample = train.sample;
    }
    let config = config.with_seed(seed);
    config.validate().context("invalid options")?;
    Ok(config)
}

/// The device named on the command line: `cpu`, `cuda`, `cuda:N` or `metal`; one this binary
/// was not built for is an error naming the cargo feature that adds it.
pub fn device(name: &str) -> Result<gnsm::Device> {
    let (kind, ordinal) = match name.split_once(':') {
        Some((kind, n)) => (
            kind,
            n.parse::<usize>()
                .with_context(|| format!("--device {name}: {n:?} is not a device number"))?,
        ),
        None => (name, 0),
    };
    let missing = |feature: &str| {
        anyhow::anyhow!(
            "--device {name}: this gnsm was built without {feature} support; rebuild with \
             `cargo install --path crates/gnsm-cli --features {feature}`"
        )
    };
    match kind {
        "cpu" => Ok(gnsm::Device::Cpu),
        "cuda" if cfg!(feature = "cuda") => gnsm::Device::new_cuda(ordinal)
            .with_context(|| format!("--device {name}: no such CUDA device")),
        "cuda" => Err(missing("cuda")),
        "metal" if cfg!(feature = "metal") => gnsm::Device::new_metal(ordinal)
            .with_context(|| format!("--device {name}: no such Metal device")),
        "metal" => Err(missing("metal")),
        other => bail!("--device {other:?}: expected cpu, cuda, cuda:N or metal"),
    }
}

/// A progress bar on standard error fed by the trainer's events (hidden with `quiet`).
pub fn training_bar(
    quiet: bool,
    label: &str,
) -> (
    indicatif::ProgressBar,
    impl FnMut(&gnsm::models::TrainEvent),
) {
    use gnsm::models::TrainEvent;
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{label} {{bar:30}} {{pos}}/{{len}} steps  {{per_sec}}  eta {{eta}}  {{msg}}"
        ))
        .expect("a valid template"),
    );
    let handle = bar.clone();
    let on_event = move |event: &TrainEvent| match event {
        TrainEvent::Started { step, steps } => {
            handle.set_length(*steps as u64);
            handle.set_position(*step as u64);
        }
        TrainEvent::Step { step, .. } => handle.set_position(*step as u64),
        TrainEvent::Validation { val_loss, .. } => {
            handle.set_message(format!("val loss {val_loss:.4}"))
        }
        _ => {}
    };
    (bar, on_event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_missing_backends_name_their_feature() {
        assert!(device("cpu").unwrap().is_cpu());
        let err = device("gpu").unwrap_err().to_string();
        assert!(err.contains("expected cpu, cuda"), "{err}");
        let err = device("cuda:x").unwrap_err().to_string();
        assert!(err.contains("not a device number"), "{err}");
        if !cfg!(feature = "cuda") {
            let err = device("cuda:1").unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
        if !cfg!(feature = "metal") {
            let err = device("metal").unwrap_err().to_string();
            assert!(err.contains("--features metal"), "{err}");
        }
    }
}
