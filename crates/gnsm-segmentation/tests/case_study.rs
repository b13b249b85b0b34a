//! A tiny end-to-end run of the segmentation case study on synthetic shapes: seconds, not
//! minutes.

use candle_core::Device;
use gnsm_models::UNetConfig;
use gnsm_noise::ScheduleConfig;
use gnsm_segmentation::{
    LoopConfig, MaskScoreConfig, MaskScorer, SegmentationPair, Segmenter, SegmenterConfig,
};
use msma::{average_precision, Detector, Fit, GmmParams, MsmaParams, SelectionParams};

const H: usize = 16;
const W: usize = 16;

/// A dark image with a red square (class 1) and a green bar (class 2); the rest class 0.
fn pair(i: usize) -> SegmentationPair {
    let (sy, sx, size) = (1 + (i * 5) % 8, 1 + (i * 3) % 8, 4 + i % 4);
    let bar = (i * 7) % 14;
    let mut image = vec![0.1f32; 3 * H * W];
    let mut mask = vec![0u8; H * W];
    for y in 0..H {
        for x in 0..W {
            let p = y * W + x;
            if y == bar || y == bar + 1 {
                mask[p] = 2;
                image[H * W + p] = 0.9;
            }
            if (sy..sy + size).contains(&y) && (sx..sx + size).contains(&x) {
                mask[p] = 1;
                image[p] = 0.9;
                image[H * W + p] = 0.1;
            }
        }
    }
    SegmentationPair {
        name: format!("s{i}"),
        height: H,
        width: W,
        image,
        mask,
    }
}

#[test]
fn segmenter_learns_the_shapes() {
    let train: Vec<SegmentationPair> = (0..24).map(pair).collect();
    let seg = Segmenter::new(
        SegmenterConfig {
            classes: 3,
            channels: 8,
            depth: 1,
            groups: 4,
            class_balance: 0.5,
            jitter: 0.2,
            seed: 1,
        },
        &Device::Cpu,
    )
    .unwrap();
    let mut losses = Vec::new();
    let settings = LoopConfig {
        steps: 60,
        batch_size: 8,
        lr: 1e-2,
        seed: 1,
        // Trained on 8×8 windows, it still segments whole 16×16 frames.
        crop: Some([8, 8]),
    };
    seg.train(&train, 255, &settings, &mut |_, loss, _| {
        losses.push(loss);
        Ok(())
    })
    .unwrap();
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[55..].iter().sum::<f64>() / 5.0;
    assert!(last < 0.5 * first, "loss {first} → {last}");
    let test: Vec<SegmentationPair> = (100..104).map(pair).collect();
    let refs: Vec<&SegmentationPair> = test.iter().collect();
    let predictions = seg.predict(&refs, 3).unwrap();
    assert_eq!(predictions.len(), 4);
    for p in &predictions {
        assert!(p.entropy >= 0.0 && p.entropy <= 3f64.ln() + 1e-6);
        // The mean largest probability of 3 classes lies in [1/3, 1]; a trained segmenter
        // on an easy task is sure of itself.
        assert!(
            p.confidence > 0.6 && p.confidence <= 1.0 + 1e-6,
            "{}",
            p.confidence
        );
    }
    let accuracy = predictions
        .iter()
        .zip(&test)
        .map(|(m, p)| m.mask.iter().zip(&p.mask).filter(|(a, b)| a == b).count())
        .sum::<usize>() as f64
        / (4 * H * W) as f64;
    assert!(accuracy > 0.8, "pixel accuracy {accuracy}");
}

#[test]
fn score_norms_flag_masks_that_do_not_fit_their_image() {
    let train: Vec<SegmentationPair> = (0..32).map(pair).collect();
    let config = MaskScoreConfig {
        unet: UNetConfig {
            image_channels: 3,
            classes: 3,
            channels: 8,
            channel_mults: vec![1, 2],
            res_blocks: 1,
            attention: false,
            embedding_size: 16,
            groups: 4,
            seed: 2,
            ..UNetConfig::default()
        },
        noise: ScheduleConfig {
            levels: 4,
            ..ScheduleConfig::default()
        },
    };
    let scorer = MaskScorer::new(&config, &Device::Cpu).unwrap();
    let settings = LoopConfig {
        steps: 120,
        batch_size: 8,
        lr: 5e-3,
        seed: 2,
        crop: None,
    };
    scorer
        .train(&train, &settings, 0, &mut |_, _, _| Ok(()))
        .unwrap();

    // MSMA on held-out ground-truth pairs; then good and wrong masks for new images.
    let val: Vec<SegmentationPair> = (40..64).map(pair).collect();
    let val_refs: Vec<&SegmentationPair> = val.iter().collect();
    let val_masks: Vec<&[u8]> = val.iter().map(|p| p.mask.as_slice()).collect();
    let norms = scorer.score_norms(&val_refs, &val_masks, 8).unwrap();
    assert_eq!((norms.rows(), norms.cols()), (24, 4));
    let msma = MsmaParams {
        gmm: GmmParams::new(1),
        selection: Some(SelectionParams {
            candidates: vec![1, 2],
            ..SelectionParams::default()
        }),
    }
    .fit(&norms)
    .unwrap();

    let test: Vec<SegmentationPair> = (70..82).map(pair).collect();
    let mut masks: Vec<Vec<u8>> = test.iter().map(|p| p.mask.clone()).collect();
    let mut labels = vec![false; 12];
    for (i, m) in masks.iter_mut().enumerate().skip(6) {
        // Wrong: the mask of another image.
        *m = pair(200 + i).mask;
        labels[i] = true;
    }
    let refs: Vec<&SegmentationPair> = test.iter().collect();
    let mask_refs: Vec<&[u8]> = masks.iter().map(Vec::as_slice).collect();
    let scores = msma
        .score(&scorer.score_norms(&refs, &mask_refs, 6).unwrap())
        .unwrap();
    let ap = average_precision(&labels, &scores).unwrap();
    assert!(ap > 0.8, "AP {ap} (chance 0.5), scores {scores:?}");
}
