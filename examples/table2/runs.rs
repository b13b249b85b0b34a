//! One (dataset, seed) of the study: the baselines not run before, and the GNSM runs (the
//! paper preset with overrides, or the default beside MSMA on the same network), each
//! appended to its results log as soon as it is done.

use anyhow::Result;
use candle_core::Device;
use gnsm::data::PaperDataset;
use gnsm::eval::{Baseline, Protocol, ResultsLog};
use gnsm::{Gnsm, GnsmConfig, ScoreMethod, TrainOverrides};

use crate::{report, Args, BaselineEntry, Entry};

/// The GNSM runs of one (dataset, seed): (settings key, configuration).
fn configs(args: &Args, dataset: PaperDataset) -> Vec<(String, GnsmConfig)> {
    let components = if args.components.is_empty() {
        dataset.gmm_components().to_vec()
    } else {
        args.components.clone()
    };
    if args.defaults {
        let default = GnsmConfig::default();
        let mut msma = default.clone();
        msma.score = ScoreMethod::Msma;
        msma.msma = msma.msma.with_components(&components);
        return vec![("default".into(), default), ("default msma".into(), msma)];
    }
    let overrides = TrainOverrides {
        steps: args.steps,
        max_minutes: args.max_minutes,
        width: args.width,
        depth: args.depth,
        dropout: args.dropout,
        batch_size: args.batch_size,
        lr: args.lr,
        constant_lr: args.constant_lr,
        eval_every: args.eval_every,
        denoise: args.no_denoise.then_some(false),
        components,
    };
    let config = overrides.apply(GnsmConfig::paper());
    vec![(report::settings_key(&config, dataset), config)]
}

/// The baselines of `which` that `log` does not hold yet for (dataset, seed).
pub(crate) fn baselines(
    protocol: &Protocol<'_>,
    dataset: PaperDataset,
    seed: u64,
    which: &[Baseline],
    log: &ResultsLog,
) -> Result<()> {
    let done: Vec<BaselineEntry> = log.read()?;
    let todo: Vec<Baseline> = which
        .iter()
        .copied()
        .filter(|&b| {
            !done.iter().any(|e| {
                e.dataset == dataset.name() && e.result.seed == seed && e.result.baseline == b
            })
        })
        .collect();
    for b in protocol.baselines(&todo)? {
        println!(
            "{} seed {seed}: {} AP {:.2}",
            dataset.name(),
            b.baseline.name(),
            b.ap
        );
        log.append(&BaselineEntry {
            dataset: dataset.name().into(),
            result: b,
        })?;
    }
    Ok(())
}

/// The GNSM runs of (dataset, seed) that `log` does not hold yet. Runs after the first
/// share its network (same training settings): only the scoring stage is fitted again.
pub(crate) fn gnsm(
    args: &Args,
    protocol: &Protocol<'_>,
    dataset: PaperDataset,
    seed: u64,
    log: &ResultsLog,
) -> Result<()> {
    let mut trained: Option<Gnsm> = None;
    for (settings, config) in configs(args, dataset) {
        let done: Vec<Entry> = log.read()?;
        if done
            .iter()
            .any(|e| e.dataset == dataset.name() && e.settings == settings && e.result.seed == seed)
        {
            println!(
                "{} seed {seed} {settings}: done before, skipped",
                dataset.name()
            );
            continue;
        }
        let saved = args.models.as_ref().map(|dir| {
            dir.join(format!(
                "{}-{seed}-{}.gnsm",
                dataset.name(),
                report::training_key(&config).replace(' ', "_")
            ))
        });
        let cached = match (&trained, &saved) {
            (Some(d), _) if report::training_key(d.config()) == report::training_key(&config) => {
                Some(clone_detector(d, saved.as_deref())?)
            }
            (_, Some(path)) if path.exists() => Some(Gnsm::load(path, &Device::Cpu)?),
            _ => None,
        };
        let run = match cached {
            Some(detector) => protocol.refit(detector, &config)?,
            None => {
                let run = protocol.fit(&config, &Device::Cpu, &mut |_| {})?;
                if let Some(path) = &saved {
                    run.detector.save(path)?;
                }
                run
            }
        };
        let r = &run.result;
        println!(
            "{} seed {seed} {settings}: AP {:.2} ROC-AUC {:.2} ({} steps, fit {:.0} s, score {:.0} s)",
            dataset.name(), r.ap, r.roc_auc, r.steps, r.fit_seconds, r.score_seconds
        );
        log.append(&Entry {
            dataset: dataset.name().into(),
            settings,
            result: run.result,
        })?;
        trained = Some(run.detector);
    }
    Ok(())
}

/// A second copy of a trained detector (through its file: the network's variables are
/// not shared between the two).
fn clone_detector(detector: &Gnsm, saved: Option<&std::path::Path>) -> Result<Gnsm> {
    if let Some(path) = saved.filter(|p| p.exists()) {
        return Ok(Gnsm::load(path, &Device::Cpu)?);
    }
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("copy.gnsm");
    detector.save(&path)?;
    Ok(Gnsm::load(&path, &Device::Cpu)?)
}
