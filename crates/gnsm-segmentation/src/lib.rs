//! Gumbel noise score matching for image segmentations (the GNSM paper's §6.2 case study):
//! a conditional score network learns (image, mask) pairs under Gumbel noise on the mask,
//! and MSMA on its score norms flags (image, predicted mask) pairs whose prediction is
//! implausible for the image.
//!
//! - [`image`]: (image, label mask) pairs from the common folder layout or Pascal VOC,
//!   resizing, and PNG writers;
//! - [`Segmenter`]: a UNet-style segmentation network whose predictions are the masks to
//!   score, with its mean predictive entropy and max-softmax confidence as the free
//!   baselines ([`Prediction`]);
//! - [`Shift`]: seeded image corruptions (dark, blurred, noisy, cropped frames) for a
//!   shifted test condition;
//! - [`MaskScorer`]: the conditional UNet score model of masks given images (gnsm-models'
//!   [`UNetModel`](gnsm_models::UNetModel)), trained with the KL objective;
//!   [`MaskScorer::score_norms`] is the embedding for [`msma::Msma`];
//! - [`metrics`]: how wrong a prediction is (Dice, per-class IoU, mean surface distance,
//!   95th-percentile Hausdorff distance) and how well a score tracks it (Pearson over the
//!   most anomalous, Spearman);
//! - [`LoopConfig`]: the settings of both training loops, with seeded random training
//!   windows ([`LoopConfig::crop`]; the networks are fully convolutional and predict whole
//!   frames);
//! - [`fill_void`] for ground truths with ignored pixels.
//!
//! The example `examples/segmentation/` of the workspace composes them on CamVid.
//!
//! ```
//! use gnsm_segmentation::metrics::{dice, spearman};
//! let truth = [1, 1, 0, 0];
//! assert_eq!(dice(&truth, &truth, 1, 4, 2, 255)?, 1.0);
//! assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
//! # Ok::<(), gnsm_segmentation::SegmentationError>(())
//! ```

mod batch;
mod error;
pub mod image;
mod mask;
pub mod metrics;
mod scorer;
mod segmenter;
mod shift;

pub use batch::LoopConfig;
pub use error::SegmentationError;
pub use image::{SegmentationLayout, SegmentationPair};
pub use mask::fill_void;
pub use scorer::{MaskScoreConfig, MaskScorer};
pub use segmenter::{Prediction, Segmenter, SegmenterConfig};
pub use shift::{shift_all, Shift};
