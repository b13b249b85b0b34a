//! Schema-aware reading and encoding of tabular files for Gumbel Noise Score Matching.
//!
//! This crate will hold (see the gnsm-data issue):
//! - streaming CSV and gzip-compressed CSV reading, every cell read as a string;
//! - a versioned, serde-serialisable `Schema` (categorical, continuous, ignored and label
//!   columns, category vocabularies, continuous means and standard deviations) that yields the
//!   [`gnsm_noise::FeatureLayout`] of the encoded matrix;
//! - the reference encoding (standardised continuous block, then `log(clip(one_hot, 1e-5, 1))`
//!   per categorical group) and its inverse, with policies for missing and unseen values;
//! - the paper's seeded 80/10/10 inlier splits and a registry of the seven Table 2 datasets.
//!
//! It depends on `gnsm-noise` without its candle feature, and never on candle.
