//! The report: the segmenter's quality, how each score tracks its failures in each
//! condition, the stage times, and the figure of the most and least anomalous pairs.

use anyhow::Result;
use gnsm::data::OutputFile;
use gnsm_segmentation::image::write_rgb_png;
use gnsm_segmentation::metrics::{spearman, top_pearson, ClassOverlap};
use gnsm_segmentation::{SegmentationPair, Segmenter};

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
    conditions: &[Condition],
    scored: &[Vec<Scored>],
    classes: &Classes,
) -> Result<()> {
    let (k, void) = (classes.num_classes, classes.void_index);
    let mut md = format!(
        "# Segmentation case study (CamVid): quality control of one segmenter\n\n\
         Produced by `RAYON_NUM_THREADS=2 cargo run --release --example segmentation` \
         (`examples/segmentation/`) on this project's 2-core CPU machine. Resolution {}×{}. \
         Segmenter: a UNet-style network ({} channels, {} down-samplings), {} steps of 8 \
         pairs, cosine lr from 2e-3, horizontal flips. Score model: conditional UNet, {} \
         channels, {} levels (τ geometric 20 → 2), KL objective, {} steps of {} pairs, lr {} \
         cosine; MSMA on the score norms of the val ground-truth pairs (k from {{1, 2, 3}}). \
         The shifted condition puts every test frame under one seeded corruption of random \
         kind and strength (darkened ×0.1–0.6, box-blurred radius 1–4, Gaussian noise σ \
         0.05–0.35, or cropped to 45–85 % of each side and resized back, truth cropped \
         alike).\n\n",
        args.height,
        args.width,
        args.seg_channels,
        args.seg_depth,
        args.seg_steps,
        args.channels,
        args.levels,
        args.steps,
        args.batch_size,
        args.lr,
    );
    md.push_str("## The segmenter\n\n| condition | pairs | mean Dice | mean IoU |");
    let names: Vec<&str> = (0..k)
        .map(|c| classes.names.get(c).map_or("?", String::as_str))
        .collect();
    for name in &names {
        md.push_str(&format!(" {name} IoU |"));
    }
    md.push_str(&format!("\n|---|---|---|---|{}\n", "---|".repeat(k)));
    for ((name, pairs), rows) in conditions.iter().zip(scored) {
        let refs: Vec<&SegmentationPair> = pairs.iter().map(|(_, p)| p).collect();
        let mut overlap = ClassOverlap::new(k);
        for (p, pred) in refs.iter().zip(segmenter.predict(&refs, 16)?) {
            overlap.add(&pred.mask, &p.mask, void)?;
        }
        let dice = rows.iter().map(|s| s.dice).sum::<f64>() / rows.len().max(1) as f64;
        md.push_str(&format!(
            "| {name} | {} | {dice:.3} | {:.3} |",
            rows.len(),
            overlap.mean_iou()
        ));
        for iou in overlap.iou() {
            md.push_str(&iou.map_or(" – |".to_string(), |v| format!(" {v:.2} |")));
        }
        md.push('\n');
    }
    md.push_str(
        "\nDice: the mean over test frames of the per-frame Dice over the classes present \
         (in the prediction or the truth); IoU: per class over all pixels of the condition.\n",
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

/// The 8 most and 8 least anomalous clean pairs (image | prediction | truth) as a PNG
/// beside the report, and their table.
fn figure(
    args: &Args,
    segmenter: &Segmenter,
    pairs: &[(Option<String>, SegmentationPair)],
    scored: &[Scored],
    classes: &Classes,
    md: &mut String,
) -> Result<()> {
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| scored[b].score.total_cmp(&scored[a].score));
    let mut picks: Vec<usize> = order.iter().take(8).copied().collect();
    picks.extend(order.iter().rev().take(8).rev());
    let chosen: Vec<&SegmentationPair> = picks.iter().map(|&i| &pairs[i].1).collect();
    let predictions = segmenter.predict(&chosen, 16)?;
    let (h, w, gap) = (args.height, args.width, 2);
    let (fig_w, fig_h) = (3 * w + 2 * gap, picks.len() * (h + gap));
    let mut rgb = vec![255u8; fig_w * fig_h * 3];
    let colour = |c: u8| {
        let palette = &classes.palette;
        palette.get(usize::from(c)).copied().unwrap_or([0, 0, 0])
    };
    for (row, (pair, prediction)) in chosen.iter().zip(&predictions).enumerate() {
        for p in 0..h * w {
            let (y, x) = (p / w, p % w);
            let image_px: [u8; 3] =
                std::array::from_fn(|c| (pair.image[c * h * w + p] * 255.0).round() as u8);
            let pixels = [image_px, colour(prediction.mask[p]), colour(pair.mask[p])];
            for (col, px) in pixels.into_iter().enumerate() {
                let o = ((row * (h + gap) + y) * fig_w + col * (w + gap) + x) * 3;
                rgb[o..o + 3].copy_from_slice(&px);
            }
        }
    }
    let path = args.out.with_extension("png");
    write_rgb_png(&path, &rgb, fig_h, fig_w)?;
    let file = path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    md.push_str(&format!(
        "\n## Figure\n\n![most and least anomalous]({file})\n\n`{}`: rows 1–8 are the 8 most \
         anomalous clean test pairs, rows 9–16 the 8 least; columns: image, prediction, ground \
         truth (black = void). The figure shows downscaled CamVid frames and labels \
         (research, non-commercial use; cite Brostow, Fauqueur & Cipolla, Pattern Recognition \
         Letters 30(2), 2009); the data itself stays in `GNSM_DATA_DIR`.\n\n\
         | row | frame | anomaly score | Dice | MSD | 95-HD | entropy | confidence |\n\
         |---|---|---|---|---|---|---|---|\n",
        path.display()
    ));
    for (row, &i) in picks.iter().enumerate() {
        let s = &scored[i];
        md.push_str(&format!(
            "| {} | {} | {:.1} | {:.3} | {:.2} | {:.2} | {:.3} | {:.3} |\n",
            row + 1,
            s.name,
            s.score,
            s.dice,
            s.msd,
            s.hd95,
            s.entropy,
            s.confidence
        ));
    }
    Ok(())
}
