//! `gnsm info`: what a saved model holds, after verifying it.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use gnsm::data::ColumnKind;
use gnsm::{Device, Gnsm, ScoreMethod};
use sha2::{Digest, Sha256};

use crate::io::terminal_safe;

/// `gnsm info` options.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// A model written by `gnsm fit`.
    pub model: PathBuf,
    /// List every column's categories (the first 10 otherwise).
    #[arg(long)]
    pub all: bool,
}

/// The SHA-256 of a file, streamed.
fn file_sha256(path: &std::path::Path) -> Result<(String, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        bytes,
    ))
}

pub fn run(args: InfoArgs) -> Result<()> {
    let path = &args.model;
    // Loading verifies the checksum and that every part fits before anything is printed.
    let detector = Gnsm::load(path, &Device::Cpu)?;
    let version = Gnsm::file_version(path)?;
    let (sha, bytes) = file_sha256(path)?;
    let config = detector.config();
    let schema = detector.schema();
    let mut out = String::new();
    let say = |out: &mut String, line: String| {
        out.push_str(&terminal_safe(&line));
        out.push('\n');
    };
    say(
        &mut out,
        format!(
            "model {}: {bytes} bytes, format version {version}, file sha256 {sha}",
            path.display()
        ),
    );
    let count = |kind: ColumnKind| schema.columns.iter().filter(|c| c.kind == kind).count();
    say(
        &mut out,
        format!(
            "schema: {} columns ({} categorical, {} continuous, {} ignored){}; unseen values: {:?}; missing markers {:?}",
            schema.columns.len(),
            count(ColumnKind::Categorical),
            count(ColumnKind::Continuous),
            count(ColumnKind::Ignored),
            schema.label.as_ref().map_or(String::new(), |l| format!(
                ", label {:?} (anomaly {:?})",
                l.column, l.anomaly_value
            )),
            schema.unseen,
            schema.missing_values,
        ),
    );
    for column in &schema.columns {
        let what = match column.kind {
            ColumnKind::Categorical => {
                let shown = if args.all { usize::MAX } else { 10 };
                let mut list: Vec<&str> = column
                    .categories
                    .iter()
                    .take(shown)
                    .map(String::as_str)
                    .collect();
                if column.categories.len() > list.len() {
                    list.push("…");
                }
                format!(
                    "categorical, {} values: {}",
                    column.categories.len(),
                    list.join(", ")
                )
            }
            ColumnKind::Continuous => {
                format!("continuous, mean {:.6} std {:.6}", column.mean, column.std)
            }
            ColumnKind::Ignored => "ignored".into(),
            ColumnKind::Label => "label".into(),
        };
        say(&mut out, format!("  {:?}: {what}", column.name));
    }
    let net = &config.network;
    let noise = &config.trainer.noise;
    say(
        &mut out,
        format!(
            "network: tab-ResNet width {}, depth {}, dropout {}; {} noise levels (tau {} to {}, sigma {} to {})",
            net.width, net.depth, net.dropout, noise.levels, noise.tau_max, noise.tau_min,
            noise.sigma_max, noise.sigma_min
        ),
    );
    match detector.training() {
        Some(t) => say(
            &mut out,
            format!(
                "training: {} steps of {} rows in {:.1} s, best validation loss {:.5} at step {}, stopped by {}",
                t.steps, config.trainer.batch_size, t.seconds, t.best_val_loss, t.best_step, t.stopped_by
            ),
        ),
        None => say(&mut out, "training: not recorded (an older file)".into()),
    }
    let score = match (&config.score, detector.msma()) {
        (ScoreMethod::DenoisingLoss(p), _) => format!(
            "expected denoising loss over {} fixed draws per level (seed {}){}{}",
            p.draws,
            p.seed,
            if p.frequency_prior {
                ", with the frequency prior"
            } else {
                ""
            },
            one_hot_term(detector.one_hot_report())
        ),
        (ScoreMethod::Msma, Some(msma)) => format!(
            "MSMA: a {}-component Gaussian mixture on the score norms (weights {:?}){}",
            msma.gmm().n_components(),
            msma.gmm()
                .weights()
                .iter()
                .map(|w| (w * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>(),
            if config.denoise {
                ", after the denoising step"
            } else {
                ""
            }
        ),
        (ScoreMethod::Msma, None) => "MSMA".into(),
    };
    say(&mut out, format!("score: {score}"));
    match detector.calibration() {
        Some(c) => say(
            &mut out,
            format!(
                "calibration: {} held-out inlier scores (smallest p-value {:.4}; threshold at alpha 0.01: {:.4})",
                c.len(),
                1.0 / (c.len() + 1) as f64,
                c.threshold(gnsm::DecisionRule::Alpha(0.01))?
            ),
        ),
        None => say(&mut out, "calibration: none (no p-values)".into()),
    }
    print!("{out}");
    Ok(())
}

/// How the one-hot mixture term of the default score came out, for `gnsm info`.
fn one_hot_term(report: Option<&gnsm::OneHotReport>) -> String {
    match report {
        None => String::new(),
        Some(r) if r.used => format!(
            "; plus a {}-component one-hot mixture (fitted on {} rows; generalisation gap {:.2} sd)",
            r.components,
            r.fit_rows,
            r.gap.unwrap_or(f64::NAN)
        ),
        Some(r) => match (r.gap, &r.error) {
            (Some(gap), None) => format!(
                "; the one-hot mixture was left out (generalisation gap {gap:.2} sd, at least the limit)"
            ),
            (_, Some(e)) => format!("; the one-hot mixture was left out ({e})"),
            (None, None) => "; the one-hot mixture was left out".into(),
        },
    }
}
