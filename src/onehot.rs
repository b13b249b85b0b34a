//! The one-hot density term of the default score: a full-covariance Gaussian mixture on the
//! plain one-hot rows (the baseline `gnsm-baselines` fits), added to the network's expected
//! denoising loss when it generalises to the validation rows.
//!
//! Why: on small or low-order data a mixture of one-hot rows captures structure that a
//! network trained for a few minutes misses, and on other data it overfits badly. Which case
//! holds is visible without labels: the chosen component count, fitted on the training rows
//! alone, scores the validation rows; the mixture refitted on train + validation scores them
//! again (in sample). When the held-out mean lies within `max_gap` in-sample standard
//! deviations of the in-sample mean, the mixture describes new rows as well as the rows it
//! was fitted on, and the detector scores `z(loss) + z(mixture)`, each standardised by its
//! scores on the validation rows (the mixture's by its held-out scores, as test rows are new
//! to it). Otherwise it scores the loss alone. `docs/results/tuning.md` holds the study.

use gnsm_baselines::{GmmDetectorParams, HeldOutScores};
use gnsm_noise::{FeatureLayout, Rows};
use msma::{Detector, GaussianMixture, Matrix};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::GnsmError;

/// Settings of the one-hot density term ([`DenoisingParams::one_hot`](crate::DenoisingParams::one_hot)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OneHotDensityParams {
    /// Largest generalisation gap (held-out minus in-sample mean score on the validation
    /// rows, in in-sample standard deviations) at which the term is used (default 1).
    pub max_gap: f64,
    /// Fitting budget in rows × width² (the dense EM's cost per component and iteration):
    /// the mixture is fitted on a seeded sample of at most `max_fit_cost / width²` training
    /// rows and as many validation rows (default 2.5e9: every row of a table 50 wide; 15,500
    /// rows of one 401 wide). A cost bound, not a tuned setting.
    pub max_fit_cost: f64,
    /// Candidate component counts, chosen by validation log-likelihood (default {3, 5, 7, 9},
    /// the baseline's).
    pub candidates: Vec<usize>,
}

impl Default for OneHotDensityParams {
    fn default() -> Self {
        Self {
            max_gap: 1.0,
            max_fit_cost: 2.5e9,
            candidates: vec![3, 5, 7, 9],
        }
    }
}

impl OneHotDensityParams {
    /// Check the settings.
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), GnsmError> {
        if self.max_gap.is_nan() {
            return Err(GnsmError::Invalid(
                "score.denoising_loss.one_hot.max_gap is NaN".into(),
            ));
        }
        if !(self.max_fit_cost.is_finite() && self.max_fit_cost > 0.0) {
            return Err(GnsmError::Invalid(format!(
                "score.denoising_loss.one_hot.max_fit_cost = {}: must be positive",
                self.max_fit_cost
            )));
        }
        if self.candidates.is_empty() || self.candidates.contains(&0) {
            return Err(GnsmError::Invalid(format!(
                "score.denoising_loss.one_hot.candidates = {:?}: need at least one, all >= 1",
                self.candidates
            )));
        }
        Ok(())
    }
}

/// What fitting the one-hot density term found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneHotReport {
    /// Training rows the mixture was fitted on (a sample when over the budget).
    pub fit_rows: usize,
    /// Validation rows it was checked on.
    pub val_rows: usize,
    /// The component count chosen (0 when no mixture could be fitted).
    pub components: usize,
    /// The generalisation gap (`None` when no mixture could be fitted).
    pub gap: Option<f64>,
    /// Whether the score uses the term.
    pub used: bool,
    /// Why no mixture could be fitted, if none could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Mean and standard deviation that put a score on a common scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Standardiser {
    pub(crate) mean: f64,
    pub(crate) std: f64,
}

impl Standardiser {
    fn of(scores: &[f64]) -> Option<Self> {
        HeldOutScores::of(scores)
            .filter(|s| s.std > 0.0 && s.std.is_finite())
            .map(|s| Self {
                mean: s.mean,
                std: s.std,
            })
    }

    fn apply(&self, score: f64) -> f64 {
        (score - self.mean) / self.std
    }
}

/// The fitted term: the mixture and the two scales.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OneHotTerm {
    pub(crate) gmm: GaussianMixture,
    /// The loss's scores on the validation rows.
    pub(crate) loss: Standardiser,
    /// The mixture's held-out scores on the validation rows.
    pub(crate) density: Standardiser,
}

impl OneHotTerm {
    /// Combine the loss scores of encoded (log-one-hot) rows with the mixture's.
    pub(crate) fn combine(
        &self,
        layout: &FeatureLayout,
        encoded: &[f32],
        loss: &mut [f64],
    ) -> Result<(), GnsmError> {
        let lls = self.gmm.score_samples(&one_hot(layout, encoded)?)?;
        for (s, ll) in loss.iter_mut().zip(lls) {
            *s = self.loss.apply(*s) + self.density.apply(-ll);
        }
        Ok(())
    }

    /// Check a loaded term against the layout.
    pub(crate) fn check(&self, layout: &FeatureLayout) -> Result<(), String> {
        if self.gmm.n_features() != layout.width() {
            return Err(format!(
                "the one-hot density has {} features, the layout {}",
                self.gmm.n_features(),
                layout.width()
            ));
        }
        self.gmm.validate().map_err(|e| e.to_string())?;
        let ok = |s: &Standardiser| s.mean.is_finite() && s.std.is_finite() && s.std > 0.0;
        if !(ok(&self.loss) && ok(&self.density)) {
            return Err("the one-hot density's scales are not finite and positive".into());
        }
        Ok(())
    }
}

/// Plain one-hot rows (continuous columns as they are) from log-one-hot rows.
pub(crate) fn one_hot(layout: &FeatureLayout, encoded: &[f32]) -> Result<Matrix, GnsmError> {
    let width = layout.width();
    let n_cont = layout.continuous();
    let data = encoded
        .chunks_exact(width.max(1))
        .flat_map(|row| {
            row.iter().enumerate().map(move |(j, &v)| {
                if j < n_cont {
                    f64::from(v)
                } else if v == 0.0 {
                    1.0
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Matrix::new(encoded.len() / width.max(1), width, data)?)
}

/// Log-one-hot rows of `part`: all of them, or a seeded sample of `cap` (in order).
fn gather(
    layout: &FeatureLayout,
    part: &Rows<'_>,
    cap: usize,
    seed: u64,
) -> Result<Vec<f32>, GnsmError> {
    let n = part.count(layout, "rows to fit the one-hot density on")?;
    let width = layout.width();
    if n <= cap {
        let mut out = vec![0.0; n * width];
        part.copy_rows(0, n, &mut out)?;
        return Ok(out);
    }
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut picked = rand::seq::index::sample(&mut rng, n, cap).into_vec();
    picked.sort_unstable();
    let mut out = vec![0.0; cap * width];
    for (row, &i) in out.chunks_exact_mut(width).zip(&picked) {
        part.copy_rows(i, 1, row)?;
    }
    Ok(out)
}

/// Fit the term on `train` and check it on `val`; `loss_scores` scores log-one-hot rows by
/// the loss alone. The term is `None` when it does not generalise or cannot be fitted.
pub(crate) fn fit<F>(
    params: &OneHotDensityParams,
    layout: &FeatureLayout,
    train: &Rows<'_>,
    val: &Rows<'_>,
    seed: u64,
    mut loss_scores: F,
) -> Result<(Option<OneHotTerm>, OneHotReport), GnsmError>
where
    F: FnMut(&[f32]) -> Result<Vec<f64>, GnsmError>,
{
    params.validate()?;
    let width = layout.width();
    let cap = ((params.max_fit_cost / (width * width).max(1) as f64) as usize).max(16);
    let train_rows = gather(layout, train, cap, seed ^ 0x0e4_07a1)?;
    let val_rows = gather(layout, val, cap, seed ^ 0x0e4_07a2)?;
    let (train_m, val_m) = (one_hot(layout, &train_rows)?, one_hot(layout, &val_rows)?);
    let mut report = OneHotReport {
        fit_rows: train_m.rows(),
        val_rows: val_m.rows(),
        components: 0,
        gap: None,
        used: false,
        error: None,
    };
    let detector = match (GmmDetectorParams {
        candidates: params.candidates.clone(),
        ..GmmDetectorParams::default()
    })
    .seed(seed)
    .fit_split(&train_m, &val_m)
    {
        Ok(d) => d,
        Err(e) => {
            // Too few rows, or every candidate singular: the loss alone scores.
            report.error = Some(e.to_string());
            return Ok((None, report));
        }
    };
    report.components = detector.mixture().n_components();
    let in_sample = Standardiser::of(&detector.score(&val_m)?);
    let held_out = detector.held_out().and_then(|h| {
        (h.std > 0.0 && h.std.is_finite()).then_some(Standardiser {
            mean: h.mean,
            std: h.std,
        })
    });
    let (Some(in_sample), Some(held_out)) = (in_sample, held_out) else {
        report.error = Some("the validation rows' mixture scores do not vary".into());
        return Ok((None, report));
    };
    let gap = (held_out.mean - in_sample.mean) / in_sample.std;
    report.gap = Some(gap);
    if gap.is_nan() || gap >= params.max_gap {
        return Ok((None, report));
    }
    let Some(loss) = Standardiser::of(&loss_scores(&val_rows)?) else {
        report.error = Some("the validation rows' loss scores do not vary".into());
        return Ok((None, report));
    };
    report.used = true;
    Ok((
        Some(OneHotTerm {
            gmm: detector.mixture().clone(),
            loss,
            density: held_out,
        }),
        report,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnsm_noise::LOG_ONE_HOT_COLD;

    #[test]
    fn one_hot_rows_keep_continuous_values_and_mark_the_hot_slot() {
        let cold = LOG_ONE_HOT_COLD;
        let layout = FeatureLayout::new(1, vec![2, 3]).unwrap();
        let rows = [
            0.5, cold, 0.0, cold, cold, 0.0, -1.5, 0.0, cold, 0.0, cold, cold,
        ];
        let m = one_hot(&layout, &rows).unwrap();
        assert_eq!(
            m.as_slice(),
            &[0.5, 0.0, 1.0, 0.0, 0.0, 1.0, -1.5, 1.0, 0.0, 1.0, 0.0, 0.0]
        );
    }

    #[test]
    fn standardised_scores_have_zero_mean_and_unit_spread() {
        let s = Standardiser::of(&[1.0, 2.0, 3.0, 6.0]).unwrap();
        let z: Vec<f64> = [1.0, 2.0, 3.0, 6.0].iter().map(|&v| s.apply(v)).collect();
        approx::assert_abs_diff_eq!(z.iter().sum::<f64>(), 0.0, epsilon = 1e-12);
        approx::assert_relative_eq!(
            z.iter().map(|v| v * v).sum::<f64>() / 4.0,
            1.0,
            max_relative = 1e-12
        );
        assert!(Standardiser::of(&[2.0, 2.0]).is_none());
    }
}
