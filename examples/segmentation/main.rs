//! The segmentation case study (paper §6.2) on CamVid, as quality control of one deployed
//! segmenter: does the GNSM anomaly score of its (image, predicted mask) pairs single out
//! the images it got wrong?
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release --example segmentation
//! ```
//! Reads `GNSM_DATA_DIR/camvid` (default `../shared/data/camvid`; research licence: read in
//! place, never copied). Stages, each resumable from files under `--work`
//! (default `target/segmentation`):
//! 1. the segmenter, trained once on the train split and saved; its test Dice and per-class
//!    IoU;
//! 2. the conditional UNet score model on (train image, ground-truth mask) pairs, weights
//!    saved every `--save-every` steps (a rerun continues from the last save);
//! 3. MSMA on the score norms of the val ground-truth pairs; the segmenter's predictions for
//!    the test images, clean and under a seeded shift (dark, blurred, noisy or cropped
//!    frames), scored, with Dice, MSD and 95-HD against the truth and the segmenter's own
//!    entropy and confidence beside them;
//! 4. the report `docs/results/segmentation.md` and its figure.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod figure;
mod report;
mod scoring;
mod stages;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::Parser;
use gnsm::data::{default_data_dir, OutputFile};
use gnsm_segmentation::{shift_all, SegmentationLayout, SegmentationPair};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug, Clone, Serialize)]
struct Args {
    /// Working resolution (CamVid ships 96×128; both must be multiples of 2^seg-depth).
    #[arg(long, default_value_t = 96)]
    height: usize,
    /// Working width.
    #[arg(long, default_value_t = 128)]
    width: usize,
    /// Both networks train on random windows of this height (0: whole frames); they
    /// predict and score whole frames.
    #[arg(long, default_value_t = 48)]
    crop_height: usize,
    /// Width of the training windows.
    #[arg(long, default_value_t = 64)]
    crop_width: usize,
    /// Segmenter training steps (8 pairs each, cosine learning rate from --seg-lr).
    #[arg(long, default_value_t = 3000)]
    seg_steps: usize,
    /// Segmenter learning rate.
    #[arg(long, default_value_t = 3e-3)]
    seg_lr: f64,
    /// Segmenter channels at full resolution.
    #[arg(long, default_value_t = 32)]
    seg_channels: usize,
    /// Segmenter down-samplings.
    #[arg(long, default_value_t = 3)]
    seg_depth: usize,
    /// Segmenter GroupNorm groups (0: none, ReLU blocks).
    #[arg(long, default_value_t = 8)]
    seg_groups: usize,
    /// Segmenter class balance (power of the median-frequency weights; 0: plain
    /// cross-entropy).
    #[arg(long, default_value_t = 0.5)]
    seg_balance: f64,
    /// Segmenter photometric jitter (brightness and contrast in [1 − j, 1 + j]).
    #[arg(long, default_value_t = 0.0)]
    seg_jitter: f64,
    /// Stop after the segmenter: print its Dice and IoU on val and test.
    #[arg(long)]
    segmenter_only: bool,
    /// Score-model training steps.
    #[arg(long, default_value_t = 1500)]
    steps: usize,
    /// Pairs per score-model step.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Score-model learning rate (cosine to 1e-5).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Noise levels L (τ geometric 20 → 2).
    #[arg(long, default_value_t = 10)]
    levels: usize,
    /// UNet channels at full resolution.
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Save the score model every this many steps.
    #[arg(long, default_value_t = 100)]
    save_every: usize,
    /// Most anomalous pairs for the Pearson statistic (the paper: 50).
    #[arg(long, default_value_t = 50)]
    top_k: usize,
    /// Working folder (resumable state).
    #[arg(long, default_value = "target/segmentation")]
    work: PathBuf,
    /// Report.
    #[arg(long, default_value = "docs/results/segmentation.md")]
    out: PathBuf,
    /// Seed (networks, batches and the shifted condition).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl Args {
    /// The training window (`None`: whole frames).
    fn crop(&self) -> Option<[usize; 2]> {
        (self.crop_height > 0 && self.crop_width > 0).then_some([self.crop_height, self.crop_width])
    }

    /// What a saved segmenter depends on, for its file name.
    fn segmenter_tag(&self) -> String {
        format!(
            "{}x{}_crop{}x{}_c{}d{}g{}b{}{}_lr{}_{}",
            self.height,
            self.width,
            self.crop_height,
            self.crop_width,
            self.seg_channels,
            self.seg_depth,
            self.seg_groups,
            self.seg_balance,
            if self.seg_jitter > 0.0 {
                format!("j{}", self.seg_jitter)
            } else {
                String::new()
            },
            self.seg_lr,
            self.seg_steps
        )
    }

    /// What a saved score model depends on (besides its step count), for its file names.
    fn scorer_tag(&self) -> String {
        format!(
            "{}x{}_crop{}x{}_c{}_l{}_b{}_lr{}_{}",
            self.height,
            self.width,
            self.crop_height,
            self.crop_width,
            self.channels,
            self.levels,
            self.batch_size,
            self.lr,
            self.steps
        )
    }
}

/// The data set's classes (CamVid's `classes.json`).
#[derive(Deserialize)]
struct Classes {
    num_classes: usize,
    void_index: u8,
    #[serde(default)]
    names: Vec<String>,
    palette: Vec<[u8; 3]>,
}

/// A test condition: its name and its pairs, each with the corruption applied (if any).
type Condition = (&'static str, Vec<(Option<String>, SegmentationPair)>);

/// One scored (image, prediction) pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Scored {
    name: String,
    /// The corruption of the image (`None`: the clean frame).
    shift: Option<String>,
    score: f64,
    entropy: f64,
    confidence: f64,
    dice: f64,
    msd: f64,
    hd95: f64,
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what:<22} {{bar:30}} {{pos}}/{{len}} {{msg}} eta {{eta}}"
        ))
        .expect("valid template"),
    );
    bar
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    OutputFile::write_bytes(path, &serde_json::to_vec_pretty(value)?)?;
    Ok(())
}

/// Record how long a stage took (merged into `work/timings.json`, so resumed runs keep the
/// times of earlier stages).
fn record_time(work: &Path, stage: &str, seconds: f64) -> Result<()> {
    let path = work.join("timings.json");
    let mut times: std::collections::BTreeMap<String, f64> = read_json(&path).unwrap_or_default();
    times.insert(stage.into(), seconds);
    write_json(&path, &times)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let side = 1usize << args.seg_depth.max(2);
    if args.height % side != 0 || args.width % side != 0 {
        bail!("--height and --width must be multiples of {side} (2^seg-depth, at least 4)");
    }
    let root = default_data_dir()
        .context("no data directory: set GNSM_DATA_DIR")?
        .join("camvid");
    let classes: Classes = read_json(&root.join("classes.json")).with_context(|| {
        format!(
            "{}: missing or unreadable",
            root.join("classes.json").display()
        )
    })?;
    let (k, void) = (classes.num_classes, classes.void_index);
    let read = |split: &str| -> Result<Vec<SegmentationPair>> {
        Ok(SegmentationLayout::folders(root.join(split), k, void)
            .resized(args.height, args.width)
            .read()?)
    };
    let (train, val, test) = (read("train")?, read("val")?, read("test")?);
    println!(
        "CamVid at {}×{}: train {}, val {}, test {}",
        args.height,
        args.width,
        train.len(),
        val.len(),
        test.len()
    );
    std::fs::create_dir_all(&args.work)?;
    let device = Device::Cpu;

    let segmenter = stages::segmenter(&args, &train, void, k, &device)?;
    if args.segmenter_only {
        for (split, pairs) in [("val", &val), ("test", &test)] {
            let refs: Vec<&SegmentationPair> = pairs.iter().collect();
            let (dice, overlap) = stages::quality(&segmenter, &refs, k, void)?;
            let per_class: Vec<String> = overlap
                .iou()
                .iter()
                .map(|v| v.map_or("–".into(), |v| format!("{v:.2}")))
                .collect();
            println!(
                "segmenter on {split}: mean Dice {dice:.3}, mean IoU {:.3} (per class {})",
                overlap.mean_iou(),
                per_class.join(" ")
            );
        }
        return Ok(());
    }
    let scorer = stages::score_model(&args, &train, void, k, &device)?;
    // The shifted condition: every test frame under its own seeded corruption.
    let shifted: Vec<(Option<String>, SegmentationPair)> = shift_all(&test, args.seed)
        .into_iter()
        .map(|(shift, pair)| (Some(shift.label()), pair))
        .collect();
    let clean = test.iter().map(|p| (None, p.clone())).collect();
    let conditions: [Condition; 2] = [("clean", clean), ("shifted", shifted)];
    let scored = scoring::score(&args, &segmenter, &scorer, &val, &conditions, &classes)?;
    report::write(&args, &segmenter, &val, &conditions, &scored, &classes)
}
