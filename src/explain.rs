//! Why a record scored as it did, from the same scoring pass as its score.

use gnsm_data::{Table, UnseenPolicy};
use gnsm_noise::LOG_ONE_HOT_COLD;
use serde::{Deserialize, Serialize};

use crate::scorer::LevelParts;
use crate::{Gnsm, GnsmError};

/// One feature's part in a record's anomaly score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The column.
    pub feature: String,
    /// Its value in the record, as written in the file.
    pub value: String,
    /// What the model expected there: the category its score pushes towards most at the
    /// lowest noise level (for a continuous column, the denoised value `x + σ²·s`).
    pub expected: String,
    /// This feature's share of the score, a fraction (a row's shares add up to 1): with the
    /// denoising loss, its own part of the loss's sum over features (with the one-hot
    /// density term on, the shares split the loss part of the score; the mixture's part
    /// does not split over features); with MSMA, its share of the atypicality-weighted
    /// squared score norm.
    pub share: f64,
    /// The value was not seen when the detector was fitted (it sits in the reserved slot).
    #[serde(default)]
    pub unseen: bool,
}

/// Why a record scored as it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Row index in the table (0-based).
    pub row: usize,
    /// Line in the file.
    pub line: u64,
    /// Anomaly score (higher = more anomalous).
    pub score: f64,
    /// Per-feature contributions: unseen values that raised the score first (most first),
    /// then by share, largest first.
    pub contributions: Vec<Contribution>,
}

impl Gnsm {
    /// Explain the given rows: each feature's share of the score, and the category the
    /// model expected there. With the denoising loss the loss is a sum over features, and a
    /// feature's share is its part of it (with the one-hot density term on, of the loss part
    /// of the score). With MSMA, a feature's share is its part of the
    /// squared score norm at the levels where the record is atypical (levels weighted by how
    /// far the record's norm lies above the inliers' mean, in inlier standard deviations;
    /// all levels alike when none is above). The scores are those of [`Gnsm::score_table`],
    /// from the same pass.
    ///
    /// A value never seen at fit time leads the explanation when it is what raised the score:
    /// the row is scored again with that value replaced by the expected one, and the column
    /// goes first if the score drops.
    ///
    /// # Errors
    /// As [`Gnsm::score_table`].
    pub fn explain(&self, table: &Table, rows: &[usize]) -> Result<Vec<Explanation>, GnsmError> {
        let (scored, encoded) = self.pass(table, rows, true)?;
        let parts = &scored.parts;
        let scores = &scored.scores;
        let layout = self.scorer.layout().clone();
        let names = self.schema.feature_names();
        let n_cont = layout.continuous();
        let levels = parts.levels();
        let sigma_min = self.scorer.schedule().sigmas()[levels - 1];
        let reserved = self.schema.unseen == UnseenPolicy::Reserve;
        let columns: Vec<usize> = names
            .iter()
            .map(|n| {
                table.column_index(n).ok_or_else(|| {
                    GnsmError::Invalid(format!("{}: no column {n:?}", table.source()))
                })
            })
            .collect::<Result<_, _>>()?;
        let weights = match (&scored.features, self.stage.msma()) {
            (None, Some(msma)) => Some(level_weights(msma, parts)?),
            _ => None,
        };
        let n_features = parts.features();
        let mut out = Vec::with_capacity(rows.len());
        for (r, &row) in rows.iter().enumerate() {
            let per_feature: Vec<f64> = match (&scored.features, &weights) {
                (Some(features), _) => features[r * n_features..(r + 1) * n_features].to_vec(),
                (None, Some(weights)) => {
                    let w = &weights[r * levels..(r + 1) * levels];
                    let mut acc = vec![0.0; n_features];
                    for (l, weight) in w.iter().enumerate() {
                        for (a, v) in acc.iter_mut().zip(parts.at(r, l)) {
                            *a += weight * v;
                        }
                    }
                    acc
                }
                (None, None) => vec![1.0; n_features],
            };
            let total: f64 = per_feature.iter().sum::<f64>().max(f64::MIN_POSITIVE);
            let low = parts.lowest(r).expect("the pass kept the lowest level");
            let clean = encoded.row(r);
            let mut expected_row = clean.to_vec();
            for c in 0..n_cont {
                expected_row[c] += (sigma_min * sigma_min) as f32 * low[c];
            }
            let mut unseen = vec![false; parts.features()];
            for (g, range) in layout.group_ranges().enumerate() {
                let reserved_slot = range.end - 1;
                unseen[n_cont + g] = reserved && clean[reserved_slot] == 0.0;
                // The category the score pushes towards most; never the reserved slot.
                let end = if reserved { range.end - 1 } else { range.end };
                let best = (range.start..end)
                    .max_by(|&a, &b| low[a].total_cmp(&low[b]))
                    .unwrap_or(range.start);
                for j in range {
                    expected_row[j] = if j == best { 0.0 } else { LOG_ONE_HOT_COLD };
                }
            }
            let expected = self.schema.decode_row(&expected_row)?;
            // How much each unseen value raised the score: the row scored with it replaced.
            let mut raised = vec![0.0f64; parts.features()];
            for (g, range) in layout.group_ranges().enumerate() {
                let f = n_cont + g;
                if !unseen[f] {
                    continue;
                }
                let mut replaced = clean.to_vec();
                replaced[range.clone()].copy_from_slice(&expected_row[range]);
                raised[f] = scores[r] - self.score_encoded(&replaced)?[0];
            }
            let mut contributions: Vec<(f64, Contribution)> = (0..parts.features())
                .map(|f| {
                    (
                        raised[f],
                        Contribution {
                            feature: names[f].to_string(),
                            value: table.column(columns[f]).value(row).to_string(),
                            expected: expected[f].clone(),
                            share: per_feature[f] / total,
                            unseen: unseen[f],
                        },
                    )
                })
                .collect();
            contributions.sort_by(|(ra, a), (rb, b)| {
                let lead = |raised: f64, c: &Contribution| c.unseen && raised > 0.0;
                lead(*rb, b)
                    .cmp(&lead(*ra, a))
                    .then(if lead(*ra, a) && lead(*rb, b) {
                        rb.total_cmp(ra)
                    } else {
                        std::cmp::Ordering::Equal
                    })
                    .then(b.share.total_cmp(&a.share))
            });
            out.push(Explanation {
                row,
                line: table.line(row),
                score: scores[r],
                contributions: contributions.into_iter().map(|(_, c)| c).collect(),
            });
        }
        Ok(out)
    }
}

/// Per row and level, how atypical the row's score norm is there: its standardised norm (as
/// the mixture sees it) clipped at 0, or 1 at every level when none is above the inliers'
/// mean.
fn level_weights(msma: &msma::Msma, parts: &LevelParts) -> Result<Vec<f64>, GnsmError> {
    let z = msma.standardize(&parts.norms()?)?;
    let levels = parts.levels();
    let mut weights = Vec::with_capacity(parts.rows() * levels);
    for row in z.iter_rows() {
        let clipped: Vec<f64> = row.iter().map(|v| v.max(0.0)).collect();
        if clipped.iter().sum::<f64>() > 0.0 {
            weights.extend(clipped);
        } else {
            weights.extend(std::iter::repeat_n(1.0, levels));
        }
    }
    Ok(weights)
}
