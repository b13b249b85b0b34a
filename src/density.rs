//! How a trained network's per-level, per-feature quantities become one anomaly score: the
//! expected denoising loss (the default) or the paper's MSMA.

use gnsm_noise::{FeatureLayout, NoiseBank, NoiseRng, Rows};
use msma::{Detector, Msma};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::onehot::{OneHotDensityParams, OneHotReport, OneHotTerm};
use crate::scorer::{LevelParts, Scorer};
use crate::GnsmError;

/// How a record's anomaly score is computed from the trained network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreMethod {
    /// The expected denoising loss: the row is perturbed at every noise level with the same
    /// fixed draws as every other row (common random numbers), and its score is the
    /// training objective the network leaves on it, summed over levels and features — the
    /// score-matching analogue of a diffusion model's negative ELBO. A feature's share of
    /// the score is its own part of that sum. See `docs/design.md`.
    DenoisingLoss(DenoisingParams),
    /// The paper's Multiscale Score Matching Analysis: a Gaussian mixture (`GnsmConfig::msma`)
    /// on the 20 score norms of the clean (denoised) row.
    Msma,
}

impl Default for ScoreMethod {
    fn default() -> Self {
        Self::DenoisingLoss(DenoisingParams::default())
    }
}

/// Settings of [`ScoreMethod::DenoisingLoss`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DenoisingParams {
    /// Noise draws per level (default 8; 32 gave the same AP on cmc and solar).
    pub draws: usize,
    /// Seed of the fixed draws.
    pub seed: u64,
    /// Add each feature's frequency term (minus the log of its value's smoothed frequency
    /// among the fitting rows; a standard normal for continuous features): a product of
    /// the network's expert with an independent-columns one.
    pub frequency_prior: bool,
    /// Add the one-hot mixture's score when it generalises to the validation rows (see
    /// [`OneHotDensityParams`]); `None` scores the loss alone. Default on.
    pub one_hot: Option<OneHotDensityParams>,
}

impl Default for DenoisingParams {
    fn default() -> Self {
        Self {
            draws: 8,
            seed: 0x5eed,
            frequency_prior: true,
            one_hot: Some(OneHotDensityParams::default()),
        }
    }
}

impl DenoisingParams {
    /// Check the settings.
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), GnsmError> {
        if self.draws == 0 || self.draws > 1024 {
            return Err(GnsmError::Invalid(format!(
                "score.denoising_loss.draws = {}: must be between 1 and 1024",
                self.draws
            )));
        }
        if let Some(one_hot) = &self.one_hot {
            one_hot.validate()?;
        }
        Ok(())
    }
}

/// Minus the log of each value's smoothed frequency among the fitting rows, per feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FrequencyPrior {
    /// Per categorical group, per slot: `-ln((count + 1) / (rows + K))`.
    groups: Vec<Vec<f64>>,
}

impl FrequencyPrior {
    /// Count the hot slots of encoded rows (every part in turn).
    fn fit(layout: &FeatureLayout, parts: &[Rows<'_>]) -> Result<Self, GnsmError> {
        let mut counts: Vec<Vec<usize>> = layout.groups().iter().map(|&k| vec![0; k]).collect();
        let (mut rows, mut slots) = (0, Vec::new());
        for part in parts {
            let n = part.count(layout, "rows to fit the frequency prior on")?;
            rows += n;
            for row in 0..n {
                part.hot_slots(layout, row, &mut slots);
                for (count, &hot) in counts.iter_mut().zip(&slots) {
                    if let Some(h) = hot {
                        count[h] += 1;
                    }
                }
            }
        }
        let groups = counts
            .iter()
            .map(|counts| {
                let total = (rows + counts.len()) as f64;
                counts
                    .iter()
                    .map(|&c| -((c as f64 + 1.0) / total).ln())
                    .collect()
            })
            .collect();
        Ok(Self { groups })
    }

    /// Check a loaded prior against the layout: one entry per slot, every term finite and
    /// non-negative.
    pub(crate) fn check(&self, layout: &FeatureLayout) -> Result<(), String> {
        let sizes: Vec<usize> = self.groups.iter().map(Vec::len).collect();
        if sizes != layout.groups() {
            return Err(format!(
                "the frequency prior has groups of {sizes:?}, the layout {:?}",
                layout.groups()
            ));
        }
        if self
            .groups
            .iter()
            .flatten()
            .any(|v| !(v.is_finite() && *v >= 0.0))
        {
            return Err("the frequency prior holds a negative or non-finite term".into());
        }
        Ok(())
    }

    /// Each feature's term for one encoded row (continuous first, then groups).
    fn terms(&self, layout: &FeatureLayout, row: &[f32], out: &mut [f64]) {
        const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
        let n_cont = layout.continuous();
        for (o, &z) in out[..n_cont].iter_mut().zip(&row[..n_cont]) {
            *o = 0.5 * f64::from(z).powi(2) + HALF_LN_2PI;
        }
        for ((o, range), nll) in out[n_cont..]
            .iter_mut()
            .zip(layout.group_ranges())
            .zip(&self.groups)
        {
            // An all-cold group (unseen value, no reserved slot) gets the rarest slot's term.
            let hot = row[range].iter().position(|&v| v == 0.0);
            *o = hot.map_or_else(|| nll.iter().copied().fold(0.0, f64::max), |h| nll[h]);
        }
    }
}

/// The fitted scoring stage of a detector.
#[derive(Debug, Clone)]
pub(crate) enum Stage {
    /// MSMA on score norms.
    Msma(Box<Msma>),
    /// The expected denoising loss.
    Denoising {
        params: DenoisingParams,
        bank: Box<NoiseBank>,
        prior: Option<FrequencyPrior>,
        one_hot: Option<Box<OneHotTerm>>,
        one_hot_report: Option<OneHotReport>,
    },
}

/// The saved form of a [`Stage`] (the noise bank is rebuilt from its seed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SavedStage {
    Msma(Box<Msma>),
    Denoising {
        params: DenoisingParams,
        prior: Option<FrequencyPrior>,
        /// Absent in files written before the one-hot density term.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        one_hot: Option<Box<OneHotTerm>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        one_hot_report: Option<OneHotReport>,
    },
}

/// Per-feature parts of each row's score, and the scores.
pub(crate) struct Scored {
    /// The pass the parts came from.
    pub(crate) parts: LevelParts,
    /// Per row, per feature: the feature's additive part of the denoising loss (of the whole
    /// score unless the one-hot density term is added to it), or `None` for MSMA, whose
    /// score does not split by feature.
    pub(crate) features: Option<Vec<f64>>,
    /// Per row.
    pub(crate) scores: Vec<f64>,
}

impl Stage {
    /// Fit on the encoded inlier rows, training and validation (dense or compact), expanded
    /// a batch of `batch` rows at a time; `seed` seeds the one-hot density term.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fit(
        method: &ScoreMethod,
        msma: &msma::MsmaParams,
        denoise: bool,
        scorer: &Scorer,
        train: Rows<'_>,
        val: Rows<'_>,
        batch: usize,
        seed: u64,
    ) -> Result<Self, GnsmError> {
        let layout = scorer.layout();
        let parts = [train, val];
        match method {
            ScoreMethod::Msma => {
                // Score norms a batch at a time: only the (rows × levels) norms stay.
                let (mut norms, mut total, mut cols) = (Vec::new(), 0, 0);
                let mut buffer = Vec::new();
                for part in &parts {
                    let rows = part.count(layout, "rows to fit MSMA on")?;
                    for start in (0..rows).step_by(batch.max(1)) {
                        let n = batch.max(1).min(rows - start);
                        buffer.resize(n * layout.width(), 0.0);
                        part.copy_rows(start, n, &mut buffer)?;
                        let m = scorer.pass(&buffer, denoise, false)?.norms()?;
                        (total, cols) = (total + m.rows(), m.cols());
                        norms.extend_from_slice(m.as_slice());
                    }
                }
                let norms = msma::Matrix::new(total, cols, norms)?;
                Ok(Self::Msma(Box::new(msma::Fit::fit(msma, &norms)?)))
            }
            ScoreMethod::DenoisingLoss(params) => {
                let mut stage = Self::Denoising {
                    bank: bank(scorer, params),
                    prior: if params.frequency_prior {
                        Some(FrequencyPrior::fit(layout, &parts)?)
                    } else {
                        None
                    },
                    params: params.clone(),
                    one_hot: None,
                    one_hot_report: None,
                };
                if let Some(one_hot_params) = &params.one_hot {
                    let loss_scores = |rows: &[f32]| -> Result<Vec<f64>, GnsmError> {
                        let mut scores = Vec::with_capacity(rows.len() / layout.width());
                        for chunk in rows.chunks(batch.max(1) * layout.width()) {
                            scores.extend(stage.score(scorer, chunk, denoise, false)?.scores);
                        }
                        Ok(scores)
                    };
                    let (term, report) = crate::onehot::fit(
                        one_hot_params,
                        layout,
                        &train,
                        &val,
                        seed,
                        loss_scores,
                    )?;
                    if let Self::Denoising {
                        one_hot,
                        one_hot_report,
                        ..
                    } = &mut stage
                    {
                        *one_hot = term.map(Box::new);
                        *one_hot_report = Some(report);
                    }
                }
                Ok(stage)
            }
        }
    }

    /// The denoising loss's settings, for the denoising stage.
    pub(crate) fn denoising_params(&self) -> Option<&DenoisingParams> {
        match self {
            Self::Denoising { params, .. } => Some(params),
            Self::Msma(_) => None,
        }
    }

    /// What fitting the one-hot density term found, when it was fitted.
    pub(crate) fn one_hot_report(&self) -> Option<&OneHotReport> {
        match self {
            Self::Denoising { one_hot_report, .. } => one_hot_report.as_ref(),
            Self::Msma(_) => None,
        }
    }

    /// Rebuild from the saved form.
    pub(crate) fn restore(saved: SavedStage, scorer: &Scorer) -> Self {
        match saved {
            SavedStage::Msma(m) => Self::Msma(m),
            SavedStage::Denoising {
                mut params,
                prior,
                one_hot,
                one_hot_report,
            } => {
                if one_hot_report.is_none() {
                    // Written before the term existed: it scored the loss alone.
                    params.one_hot = None;
                }
                Self::Denoising {
                    bank: bank(scorer, &params),
                    prior,
                    params,
                    one_hot,
                    one_hot_report,
                }
            }
        }
    }

    /// The saved form.
    pub(crate) fn saved(&self) -> SavedStage {
        match self {
            Self::Msma(m) => SavedStage::Msma(m.clone()),
            Self::Denoising {
                params,
                prior,
                one_hot,
                one_hot_report,
                ..
            } => SavedStage::Denoising {
                params: params.clone(),
                prior: prior.clone(),
                one_hot: one_hot.clone(),
                one_hot_report: one_hot_report.clone(),
            },
        }
    }

    /// The MSMA model, for the MSMA stage.
    pub(crate) fn msma(&self) -> Option<&Msma> {
        match self {
            Self::Msma(m) => Some(m),
            Self::Denoising { .. } => None,
        }
    }

    /// Score encoded rows; `keep_lowest` keeps the lowest level's clean scores (for
    /// explanations).
    pub(crate) fn score(
        &self,
        scorer: &Scorer,
        encoded: &[f32],
        denoise: bool,
        keep_lowest: bool,
    ) -> Result<Scored, GnsmError> {
        match self {
            Self::Msma(m) => {
                let parts = scorer.pass(encoded, denoise, keep_lowest)?;
                let scores = m.score(&parts.norms()?)?;
                Ok(Scored {
                    parts,
                    features: None,
                    scores,
                })
            }
            Self::Denoising {
                bank,
                prior,
                one_hot,
                ..
            } => {
                let parts = scorer.loss_pass(encoded, bank, keep_lowest)?;
                let layout = scorer.layout();
                let width = layout.width();
                let n_features = parts.features();
                let mut features = vec![0.0; parts.rows() * n_features];
                let mut extra = vec![0.0; n_features];
                for (r, out) in features.chunks_exact_mut(n_features).enumerate() {
                    for l in 0..parts.levels() {
                        for (o, v) in out.iter_mut().zip(parts.at(r, l)) {
                            *o += v;
                        }
                    }
                    if let Some(prior) = prior {
                        prior.terms(layout, &encoded[r * width..(r + 1) * width], &mut extra);
                        for (o, v) in out.iter_mut().zip(&extra) {
                            *o += v;
                        }
                    }
                }
                let mut scores: Vec<f64> = features
                    .chunks_exact(n_features)
                    .map(|f| f.iter().sum())
                    .collect();
                if let Some(term) = one_hot {
                    term.combine(layout, encoded, &mut scores)?;
                }
                Ok(Scored {
                    parts,
                    features: Some(features),
                    scores,
                })
            }
        }
    }
}

fn bank(scorer: &Scorer, params: &DenoisingParams) -> Box<NoiseBank> {
    Box::new(NoiseBank::new(
        scorer.layout(),
        scorer.schedule(),
        params.draws,
        &mut NoiseRng::seed_from_u64(params.seed),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frequency_prior_is_minus_the_log_of_laplace_smoothed_frequencies() {
        let cold = gnsm_noise::LOG_ONE_HOT_COLD;
        let layout = FeatureLayout::new(1, vec![3]).unwrap();
        // Three rows: slot 0 twice, slot 2 once.
        let rows = [
            0.0, 0.0, cold, cold, //
            1.0, 0.0, cold, cold, //
            -1.0, cold, cold, 0.0,
        ];
        let prior = FrequencyPrior::fit(&layout, &[Rows::from(&rows[..])]).unwrap();
        // The same rows in two compact parts count the same.
        let first =
            gnsm_noise::CompactRows::new(layout.clone(), vec![0.0, 1.0], vec![0, 0]).unwrap();
        let second = gnsm_noise::CompactRows::new(layout.clone(), vec![-1.0], vec![2]).unwrap();
        let parts = FrequencyPrior::fit(&layout, &[(&first).into(), (&second).into()]).unwrap();
        assert_eq!(parts.groups, prior.groups);
        let mut out = [0.0; 2];
        prior.terms(&layout, &rows[8..12], &mut out);
        // (1 + 1) / (3 + 3) for slot 2; a standard normal at -1.
        approx::assert_relative_eq!(out[1], -(2.0f64 / 6.0).ln(), max_relative = 1e-12);
        approx::assert_relative_eq!(
            out[0],
            0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln(),
            max_relative = 1e-12
        );
        // Slot 1, never seen: (0 + 1) / 6.
        prior.terms(&layout, &[0.0, cold, 0.0, cold], &mut out);
        approx::assert_relative_eq!(out[1], 6.0f64.ln(), max_relative = 1e-12);
    }
}
