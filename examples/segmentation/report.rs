//! The report: the segmenter's quality, how each score tracks its failures in each
//! condition, the stage times, and the figure of the most and least anomalous pairs.

use anyhow::Result;
use gnsm::data::OutputFile;
use gnsm_segmentation::metrics::{spearman, top_pearson};
use gnsm_segmentation::{SegmentationPair, Segmenter};

use crate::figure::figure;
use crate::stages::quality;
use crate::{read_json, Args, Classes, Condition, Scored};

/// An anomaly score of a pair (higher: more anomalous).
type ScoreOf = dyn Fn(&Scored) -> f64;

/// Pearson r over the `top` most anomalous and Spearman ρ over all pairs, of an anomaly
/// score with Dice, MSD and 95-HD; then the mean Dice of the `top` most anomalous.
fn correlations(scored: &[Scored], by: &ScoreOf, top: usize) -> String {
    let score: Vec<f64> = scored.iter().map(by).collect();
    let metric = |f: fn(&Scored) -> f64| scored.iter().map(f).collect::<Vec<f64>>();
    let metrics = [metric(|s| s.dice), metric(|s| s.msd), metric(|s| s.hd95)];
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let top_dice = order.iter().take(top).map(|&i| scored[i].dice).sum::<f64>()
        / top.min(scored.len()).max(1) as f64;
    let mut row = String::new();
    for m in &metrics {
        row.push_str(&format!(" {:.2} |", top_pearson(&score, m, top)));
    }
    for m in &metrics {
        row.push_str(&format!(" {:.2} |", spearman(&score, m)));
    }
    row.push_str(&format!(" {top_dice:.3} |"));
    row
}

pub(crate) fn write(
    args: &Args,
    segmenter: &Segmenter,
    val: &[SegmentationPair],
    conditions: &[Condition],
    scored: &[Vec<Scored>],
    classes: &Classes,
) -> Result<()> {
    let (k, void) = (classes.num_classes, classes.void_index);
    let window = match args.crop() {
        Some([h, w]) => format!("random {h}×{w} windows"),
        None => "whole frames".to_string(),
    };
    let blocks = if args.seg_groups > 0 {
        format!(
            "GroupNorm ({} groups) + SiLU after each 3×3 conv",
            args.seg_groups
        )
    } else {
        "ReLU after each 3×3 conv".to_string()
    };
    let mut md = format!(
        "# Segmentation case study (CamVid): quality control of one segmenter\n\n\
         Produced by `RAYON_NUM_THREADS=2 cargo run --release --example segmentation` \
         (`examples/segmentation/`) on this project's 2-core CPU machine. Resolution {h}×{w} \
         (CamVid as shipped); both networks train on {window} of the train pairs and \
         predict or score whole frames. Segmenter: a UNet-style network ({} channels, {} \
         down-samplings, {blocks}), {} steps of 8 pairs, cosine lr from {}, horizontal \
         flips, cross-entropy with class balance {}. Score model: conditional UNet, {} \
         channels, {} levels (τ geometric 20 → 2), KL objective, {} steps of {} pairs, lr {} \
         cosine; MSMA on the score norms of the val ground-truth pairs (k from {{1, 2, 3}}). \
         The shifted condition puts every test frame under one seeded corruption of random \
         kind and strength (darkened ×0.1–0.6, box-blurred radius 1–4, Gaussian noise σ \
         0.05–0.35, or cropped to 45–85 % of each side and resized back, truth cropped \
         alike).\n\n",
        args.seg_channels,
        args.seg_depth,
        args.seg_steps,
        args.seg_lr,
        args.seg_balance,
        args.channels,
        args.levels,
        args.steps,
        args.batch_size,
        args.lr,
        h = args.height,
        w = args.width,
    );
    md.push_str("## The segmenter\n\n| split | pairs | mean Dice | mean IoU |");
    let names: Vec<&str> = (0..k)
        .map(|c| classes.names.get(c).map_or("?", String::as_str))
        .collect();
    for name in &names {
        md.push_str(&format!(" {name} IoU |"));
    }
    md.push_str(&format!("\n|---|---|---|---|{}\n", "---|".repeat(k)));
    let mut splits = vec![("val (clean)".to_string(), val.iter().collect::<Vec<_>>())];
    for (name, pairs) in conditions {
        let refs: Vec<&SegmentationPair> = pairs.iter().map(|(_, p)| p).collect();
        splits.push((format!("test, {name}"), refs));
    }
    for (name, refs) in &splits {
        let (dice, overlap) = quality(segmenter, refs, k, void)?;
        md.push_str(&format!(
            "| {name} | {} | {dice:.3} | {:.3} |",
            refs.len(),
            overlap.mean_iou()
        ));
        for iou in overlap.iou() {
            md.push_str(&iou.map_or(" – |".to_string(), |v| format!(" {v:.2} |")));
        }
        md.push('\n');
    }
    md.push_str(
        "\nDice: the mean over frames of the per-frame Dice over the classes present (in the \
         prediction or the truth); IoU: per class over all pixels of the split. The val \
         frames come from a drive (0016E5) whose other frames the segmenter trained on; 171 \
         of the 233 test frames from a drive it never saw (Seq05VD), the other 62 from \
         0001TP, also in train.\n",
    );
    for ((name, _), rows) in conditions.iter().zip(scored) {
        md.push_str(&format!(
            "\n## {name} test frames\n\n\
             Pearson r over the {t} most anomalous pairs (the paper's statistic) and Spearman \
             ρ over all {} pairs, between the anomaly score and each metric (useful: \
             negative with Dice, positive with the distances); last column: the mean Dice of \
             the {t} most anomalous pairs (the frames the score would send for review).\n\n\
             | score | Dice r (top {t}) | MSD r | 95-HD r | Dice ρ (all) | MSD ρ | 95-HD ρ | \
             mean Dice, top {t} |\n|---|---|---|---|---|---|---|---|\n",
            rows.len(),
            t = args.top_k,
        ));
        let scores: [(&str, &ScoreOf); 3] = [
            ("GNSM (ours)", &|s| s.score),
            ("segmenter mean predictive entropy", &|s| s.entropy),
            ("segmenter 1 − mean max-softmax", &|s| 1.0 - s.confidence),
        ];
        for (label, by) in scores {
            md.push_str(&format!(
                "| {label} |{}\n",
                correlations(rows, by, args.top_k)
            ));
        }
        md.push_str(
            "| paper GNSM (VOC, pretrained segmenter) | -0.53 | 0.14 | 0.30 | | | | |\n\
             | paper DSVDD | -0.03 | -0.12 | -0.11 | | | | |\n",
        );
        if rows.iter().any(|s| s.shift.is_some()) {
            md.push_str(
                "\n| shift | pairs | mean Dice | mean anomaly score |\n|---|---|---|---|\n",
            );
            for kind in ["darken", "blur", "noise", "crop"] {
                let of: Vec<&Scored> = rows
                    .iter()
                    .filter(|s| s.shift.as_deref().is_some_and(|l| l.starts_with(kind)))
                    .collect();
                let n = of.len().max(1) as f64;
                md.push_str(&format!(
                    "| {kind} | {} | {:.3} | {:.1} |\n",
                    of.len(),
                    of.iter().map(|s| s.dice).sum::<f64>() / n,
                    of.iter().map(|s| s.score).sum::<f64>() / n
                ));
            }
        }
    }
    let times: std::collections::BTreeMap<String, f64> =
        read_json(&args.work.join("timings.json")).unwrap_or_default();
    md.push_str("\n## Wall time per stage\n\nSeconds, 2 threads.\n\n| stage | s |\n|---|---|\n");
    for (stage, s) in &times {
        md.push_str(&format!("| {stage} | {s:.0} |\n"));
    }
    md.push_str(&format!("| total | {:.0} |\n", times.values().sum::<f64>()));
    figure(
        args,
        segmenter,
        &conditions[0].1,
        &scored[0],
        classes,
        &mut md,
    )?;
    OutputFile::write_bytes(&args.out, md.as_bytes())?;
    println!("report written to {}", args.out.display());
    Ok(())
}
