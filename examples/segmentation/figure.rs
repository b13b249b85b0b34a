//! The report's figure: the most and least anomalous clean pairs beside their table.

use anyhow::Result;
use gnsm_segmentation::image::write_rgb_png;
use gnsm_segmentation::{SegmentationPair, Segmenter};

use crate::{Args, Classes, Scored};

/// The 8 most and 8 least anomalous clean pairs (image | prediction | truth) as a PNG
/// beside the report, and their table.
pub(crate) fn figure(
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
