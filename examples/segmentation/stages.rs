//! The study's resumable training stages: the segmenter and the score model (stage 3,
//! scoring, is in `scoring.rs`).

use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use gnsm::data::OutputFile;
use gnsm::models::UNetModel;
use gnsm_segmentation::metrics::{dice, ClassOverlap};
use gnsm_segmentation::{
    fill_void, LoopConfig, MaskScoreConfig, MaskScorer, SegmentationPair, Segmenter,
    SegmenterConfig,
};

use crate::{bar, read_json, record_time, Args};

/// Pairs with their void pixels filled (what the score model learns and is fitted on).
pub(crate) fn filled(pairs: &[SegmentationPair], void: u8) -> Vec<SegmentationPair> {
    pairs
        .iter()
        .map(|p| SegmentationPair {
            mask: fill_void(&p.mask, p.height, p.width, void),
            ..p.clone()
        })
        .collect()
}

/// Stage 1: the segmenter, trained once and reused from `work/segmenter.safetensors`.
pub(crate) fn segmenter(
    args: &Args,
    train: &[SegmentationPair],
    void: u8,
    classes: usize,
    device: &Device,
) -> Result<Segmenter> {
    let config = SegmenterConfig {
        classes,
        channels: args.seg_channels,
        depth: args.seg_depth,
        groups: args.seg_groups,
        class_balance: args.seg_balance,
        jitter: args.seg_jitter,
        seed: args.seed,
    };
    let path = args
        .work
        .join(format!("segmenter_{}.safetensors", args.segmenter_tag()));
    if let Ok(seg) = Segmenter::load(&path, device) {
        if seg.config() == &config {
            return Ok(seg);
        }
    }
    let start = Instant::now();
    let seg = Segmenter::new(config, device)?;
    let progress = bar(args.seg_steps, "segmenter");
    let settings = LoopConfig {
        steps: args.seg_steps,
        batch_size: 8,
        lr: args.seg_lr,
        seed: args.seed,
        crop: args.crop(),
    };
    let mut recent = Vec::new();
    seg.train(train, void, &settings, &mut |step, loss, _| {
        recent.push(loss);
        progress.set_position(step as u64);
        if step % 20 == 0 {
            let mean = recent.iter().sum::<f64>() / recent.len() as f64;
            progress.set_message(format!("loss {mean:.3}"));
            recent.clear();
        }
        Ok(())
    })?;
    progress.finish_and_clear();
    seg.save(&path)?;
    let seconds = start.elapsed().as_secs_f64();
    record_time(&args.work, "1 segmenter", seconds)?;
    println!("segmenter: {} steps in {seconds:.0} s", args.seg_steps);
    Ok(seg)
}

/// Mean per-frame Dice (classes present) and the class overlaps of the segmenter on pairs.
pub(crate) fn quality(
    segmenter: &Segmenter,
    pairs: &[&SegmentationPair],
    classes: usize,
    void: u8,
) -> Result<(f64, ClassOverlap)> {
    let mut overlap = ClassOverlap::new(classes);
    let mut dice_sum = 0.0;
    for (p, pred) in pairs.iter().zip(segmenter.predict(pairs, 16)?) {
        overlap.add(&pred.mask, &p.mask, void)?;
        dice_sum += dice(&pred.mask, &p.mask, p.height, p.width, classes, void)?;
    }
    Ok((dice_sum / pairs.len().max(1) as f64, overlap))
}

/// Stage 2: the score model on (train image, ground truth with void filled), resumable.
pub(crate) fn score_model(
    args: &Args,
    train: &[SegmentationPair],
    void: u8,
    classes: usize,
    device: &Device,
) -> Result<MaskScorer> {
    let mut config = MaskScoreConfig::default();
    config.unet.classes = classes;
    config.unet.channels = args.channels;
    config.unet.seed = args.seed;
    config.noise.levels = args.levels;
    let tag = args.scorer_tag();
    let weights = args.work.join(format!("scorer_{tag}.safetensors"));
    let state = args.work.join(format!("scorer_{tag}.json"));
    let done: usize = read_json(&state).unwrap_or(0);
    let scorer = if done > 0 && weights.exists() {
        MaskScorer::from_model(UNetModel::load(&weights, device)?, &config)?
    } else {
        MaskScorer::new(&config, device)?
    };
    if done >= args.steps {
        return Ok(scorer);
    }
    let start = Instant::now();
    let progress = bar(args.steps, "score model");
    progress.set_position(done as u64);
    let settings = LoopConfig {
        steps: args.steps,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        crop: args.crop(),
    };
    let mut recent = Vec::new();
    scorer.train(
        &filled(train, void),
        &settings,
        done,
        &mut |step, loss, s| {
            recent.push(loss);
            progress.set_position(step as u64);
            if step % 10 == 0 {
                let mean = recent.iter().sum::<f64>() / recent.len() as f64;
                progress.set_message(format!("loss {mean:.4}"));
                recent.clear();
            }
            if step % args.save_every == 0 || step == args.steps {
                s.model().save(&weights)?;
                OutputFile::write_bytes(&state, step.to_string().as_bytes())?;
            }
            Ok(())
        },
    )?;
    progress.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    record_time(
        &args.work,
        &format!("2 score model (steps {done}..{})", args.steps),
        seconds,
    )?;
    println!(
        "score model: steps {done}..{} in {seconds:.0} s ({} levels, {} channels, batch {})",
        args.steps, args.levels, args.channels, args.batch_size
    );
    Ok(scorer)
}
