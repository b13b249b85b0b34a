//! Stage 3: scoring the segmenter's predictions in each test condition.

use std::time::Instant;

use anyhow::Result;
use gnsm::msma::{Detector, Fit, MsmaParams, SelectionParams};
use gnsm_segmentation::metrics::{dice, surface_metrics};
use gnsm_segmentation::{MaskScorer, SegmentationPair, Segmenter};

use crate::stages::filled;
use crate::{read_json, record_time, write_json, Args, Classes, Condition, Scored};

/// Stage 3: MSMA on the val ground truths' score norms; every condition's (test image,
/// prediction) pairs scored beside their quality and the segmenter's own uncertainty.
pub(crate) fn score(
    args: &Args,
    segmenter: &Segmenter,
    scorer: &MaskScorer,
    val: &[SegmentationPair],
    conditions: &[Condition],
    classes: &Classes,
) -> Result<Vec<Vec<Scored>>> {
    let path = args.work.join(format!(
        "scored_{}_{}.json",
        args.segmenter_tag(),
        args.scorer_tag()
    ));
    if let Some(scored) = read_json(&path) {
        return Ok(scored);
    }
    let start = Instant::now();
    let (k, void) = (classes.num_classes, classes.void_index);
    let val = filled(val, void);
    let val_refs: Vec<&SegmentationPair> = val.iter().collect();
    let val_masks: Vec<&[u8]> = val.iter().map(|p| p.mask.as_slice()).collect();
    let msma = MsmaParams {
        selection: Some(SelectionParams {
            candidates: vec![1, 2, 3],
            ..SelectionParams::default()
        }),
        ..MsmaParams::default()
    }
    .fit(&scorer.score_norms(&val_refs, &val_masks, 16)?)?;
    let mut all = Vec::new();
    for (name, pairs) in conditions {
        let refs: Vec<&SegmentationPair> = pairs.iter().map(|(_, p)| p).collect();
        let predictions = segmenter.predict(&refs, 16)?;
        let masks: Vec<&[u8]> = predictions.iter().map(|p| p.mask.as_slice()).collect();
        let scores = msma.score(&scorer.score_norms(&refs, &masks, 16)?)?;
        let mut scored = Vec::with_capacity(pairs.len());
        for (((shift, pair), prediction), score) in pairs.iter().zip(&predictions).zip(scores) {
            let (h, w) = (pair.height, pair.width);
            let surface = surface_metrics(&prediction.mask, &pair.mask, h, w, k, void)?;
            scored.push(Scored {
                name: pair.name.clone(),
                shift: shift.clone(),
                score,
                entropy: prediction.entropy,
                confidence: prediction.confidence,
                dice: dice(&prediction.mask, &pair.mask, h, w, k, void)?,
                msd: surface.msd,
                hd95: surface.hd95,
            });
        }
        println!("scored {} {name} pairs", scored.len());
        all.push(scored);
    }
    let seconds = start.elapsed().as_secs_f64();
    record_time(&args.work, "3 score norms, MSMA, metrics", seconds)?;
    println!(
        "MSMA on {} val ground truths ({} components); scoring took {seconds:.0} s",
        val.len(),
        msma.gmm().n_components()
    );
    write_json(&path, &all)?;
    Ok(all)
}
