//! From scores to decisions: conformal p-values against held-out inlier scores, and the
//! decision rules built on them.
//!
//! [`Gnsm::fit`](crate::Gnsm::fit) holds out [`GnsmConfig::calibration_fraction`] of the
//! inlier rows before anything is fitted (neither the network, the validation loss, the
//! vocabulary nor the scoring stage sees them) and stores their scores. A new row's p-value
//! `(1 + #{calibration scores ≥ s}) / (n + 1)` is then valid for rows drawn like the
//! inliers: `P(p ≤ α) ≤ α` (split conformal prediction; Vovk et al. 2005).
//!
//! [`GnsmConfig::calibration_fraction`]: crate::GnsmConfig::calibration_fraction

use serde::{Deserialize, Serialize};

use crate::GnsmError;

/// How a score becomes a decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DecisionRule {
    /// Anomalous when the conformal p-value is at most `α` (false-positive rate at most `α`
    /// on inliers).
    Alpha(f64),
    /// Anomalous when the score is above the `1 − c` quantile of the calibration scores:
    /// about a share `c` of inliers is flagged (PyOD's `contamination`, on held-out inliers
    /// instead of the training rows).
    Contamination(f64),
}

impl Default for DecisionRule {
    fn default() -> Self {
        Self::Alpha(0.01)
    }
}

impl DecisionRule {
    /// Check the level: `0 < α < 1`, `0 < c < 1`.
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] naming the rule and value.
    pub fn validate(&self) -> Result<(), GnsmError> {
        let (name, v) = match *self {
            Self::Alpha(a) => ("alpha", a),
            Self::Contamination(c) => ("contamination", c),
        };
        if v > 0.0 && v < 1.0 {
            Ok(())
        } else {
            Err(GnsmError::Invalid(format!(
                "{name} = {v}: must lie strictly between 0 and 1"
            )))
        }
    }
}

/// The scores of held-out inliers, sorted: what p-values and thresholds are computed from.
///
/// ```
/// use gnsm::{Calibration, DecisionRule};
/// let cal = Calibration::new(vec![3.0, 1.0, 2.0, 4.0])?;
/// // Two of four calibration scores are ≥ 2.5: p = (1 + 2) / 5.
/// assert_eq!(cal.p_value(2.5), 0.6);
/// assert_eq!(cal.p_value(9.0), 0.2); // above every calibration score: 1 / (n + 1)
/// // At α = 0.2 only scores above the largest calibration score are flagged.
/// assert_eq!(cal.threshold(DecisionRule::Alpha(0.2))?, 4.0);
/// assert!(cal.is_anomaly(4.5, DecisionRule::Alpha(0.2))?);
/// # Ok::<(), gnsm::GnsmError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>", into = "Vec<f64>")]
pub struct Calibration {
    sorted: Vec<f64>,
}

impl TryFrom<Vec<f64>> for Calibration {
    type Error = GnsmError;

    fn try_from(scores: Vec<f64>) -> Result<Self, GnsmError> {
        Self::new(scores)
    }
}

impl From<Calibration> for Vec<f64> {
    fn from(c: Calibration) -> Self {
        c.sorted
    }
}

impl Calibration {
    /// From the scores of held-out inliers (any order).
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] for no scores or a score that is not finite.
    pub fn new(mut scores: Vec<f64>) -> Result<Self, GnsmError> {
        if scores.is_empty() {
            return Err(GnsmError::Invalid(
                "calibration needs at least one held-out inlier score".into(),
            ));
        }
        if let Some(bad) = scores.iter().find(|s| !s.is_finite()) {
            return Err(GnsmError::Invalid(format!(
                "calibration score {bad} is not finite"
            )));
        }
        scores.sort_by(f64::total_cmp);
        Ok(Self { sorted: scores })
    }

    /// Number of calibration scores.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Always false: a calibration holds at least one score.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The calibration scores, ascending.
    pub fn scores(&self) -> &[f64] {
        &self.sorted
    }

    /// The conformal p-value `(1 + #{calibration ≥ score}) / (n + 1)`; NaN for a NaN score.
    pub fn p_value(&self, score: f64) -> f64 {
        if score.is_nan() {
            return f64::NAN;
        }
        let n = self.sorted.len();
        let at_least = n - self.sorted.partition_point(|&c| c < score);
        (1 + at_least) as f64 / (n + 1) as f64
    }

    /// The score above which `rule` flags a row (`score > threshold`); `+∞` when the rule
    /// can flag nothing (`α < 1 / (n + 1)`: too few calibration rows for that level).
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] for a level outside (0, 1).
    pub fn threshold(&self, rule: DecisionRule) -> Result<f64, GnsmError> {
        rule.validate()?;
        let n = self.sorted.len();
        Ok(match rule {
            DecisionRule::Alpha(alpha) => {
                // p(s) ≤ α  ⇔  #{c ≥ s} ≤ ⌊α(n + 1)⌋ − 1 =: k  ⇔  s > sorted[n − 1 − k].
                let allowed = (alpha * (n + 1) as f64 + 1e-9).floor() as usize;
                match allowed.checked_sub(1) {
                    None => f64::INFINITY,
                    Some(k) if k >= n => f64::NEG_INFINITY,
                    Some(k) => self.sorted[n - 1 - k],
                }
            }
            DecisionRule::Contamination(c) => msma::quantile(&self.sorted, 1.0 - c),
        })
    }

    /// Whether `rule` flags `score` (a NaN score is flagged: it is not like the inliers).
    ///
    /// # Errors
    /// As [`Calibration::threshold`].
    pub fn is_anomaly(&self, score: f64, rule: DecisionRule) -> Result<bool, GnsmError> {
        let t = self.threshold(rule)?;
        Ok(score.is_nan() || score > t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_count_ties_as_at_least() {
        let cal = Calibration::new(vec![1.0, 2.0, 2.0, 3.0]).unwrap();
        assert_eq!(cal.p_value(2.0), 4.0 / 5.0); // 2, 2, 3 are ≥ 2
        assert_eq!(cal.p_value(0.0), 1.0);
        assert_eq!(cal.p_value(3.5), 0.2);
        assert!(cal.p_value(f64::NAN).is_nan());
    }

    #[test]
    fn the_alpha_threshold_agrees_with_the_p_values() {
        // 99 scores 1..=99: p(s) ≤ 0.05 ⇔ at most 4 scores ≥ s ⇔ s > 95.
        let cal = Calibration::new((1..=99).map(f64::from).collect()).unwrap();
        for alpha in [0.01, 0.02, 0.05, 0.1, 0.5, 0.999] {
            let t = cal.threshold(DecisionRule::Alpha(alpha)).unwrap();
            for s in (0..=2000).map(|i| f64::from(i) * 0.05) {
                assert_eq!(
                    s > t,
                    cal.p_value(s) <= alpha,
                    "alpha {alpha}, s {s}, t {t}"
                );
            }
        }
        assert_eq!(cal.threshold(DecisionRule::Alpha(0.05)).unwrap(), 95.0);
        // Too few rows for the level: nothing is flagged.
        let small = Calibration::new(vec![1.0, 2.0]).unwrap();
        assert_eq!(
            small.threshold(DecisionRule::Alpha(0.1)).unwrap(),
            f64::INFINITY
        );
    }

    #[test]
    fn contamination_is_the_upper_quantile() {
        let cal = Calibration::new((0..=100).map(f64::from).collect()).unwrap();
        // np.quantile(range(101), 0.95) = 95.
        assert_eq!(
            cal.threshold(DecisionRule::Contamination(0.05)).unwrap(),
            95.0
        );
        let flagged = (0..=100)
            .filter(|&s| {
                cal.is_anomaly(f64::from(s), DecisionRule::Contamination(0.05))
                    .unwrap()
            })
            .count();
        assert_eq!(flagged, 5);
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(Calibration::new(vec![]).is_err());
        assert!(Calibration::new(vec![1.0, f64::NAN]).is_err());
        let cal = Calibration::new(vec![1.0]).unwrap();
        for rule in [
            DecisionRule::Alpha(0.0),
            DecisionRule::Alpha(1.0),
            DecisionRule::Contamination(-0.1),
            DecisionRule::Contamination(f64::NAN),
        ] {
            assert!(cal.threshold(rule).is_err(), "{rule:?}");
        }
        // A saved calibration is checked when read back.
        assert!(serde_json::from_str::<Calibration>("[1.0, 2.0]").is_ok());
        assert!(serde_json::from_str::<Calibration>("[]").is_err());
    }
}
