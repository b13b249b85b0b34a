//! From scores to decisions: conformal p-values against held-out inlier scores, and the
//! decision rules built on them.
//!
//! Score inlier rows that the detector was not fitted on and keep their scores
//! ([`Calibration`]). A new row's p-value `(1 + #{calibration scores ≥ s}) / (n + 1)` is then
//! valid for rows drawn like the inliers: `P(p ≤ α) ≤ α` (split conformal prediction; Vovk
//! et al. 2005). [`Calibrated`] holds a detector with its calibration;
//! [`CalibratedParams`] fits one, holding the calibration rows out itself.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::{Detector, Fit, Matrix, MsmaError};

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
    /// `Alpha(DecisionRule::DEFAULT_ALPHA)`.
    fn default() -> Self {
        Self::Alpha(Self::DEFAULT_ALPHA)
    }
}

impl DecisionRule {
    /// The level of the default rule: at most 1% of inliers flagged.
    pub const DEFAULT_ALPHA: f64 = 0.01;

    /// Check the level: `0 < α < 1`, `0 < c < 1`.
    ///
    /// # Errors
    /// [`MsmaError::InvalidParameter`] naming the rule and value.
    pub fn validate(&self) -> Result<(), MsmaError> {
        let (name, v) = match *self {
            Self::Alpha(a) => ("alpha", a),
            Self::Contamination(c) => ("contamination", c),
        };
        if v > 0.0 && v < 1.0 {
            Ok(())
        } else {
            Err(MsmaError::InvalidParameter {
                name,
                value: v.to_string(),
                reason: "must lie strictly between 0 and 1",
            })
        }
    }
}

/// The scores of held-out inliers, sorted: what p-values and thresholds are computed from.
///
/// ```
/// use msma::{Calibration, DecisionRule};
/// let cal = Calibration::new(vec![3.0, 1.0, 2.0, 4.0])?;
/// // Two of four calibration scores are ≥ 2.5: p = (1 + 2) / 5.
/// assert_eq!(cal.p_value(2.5), 0.6);
/// assert_eq!(cal.p_value(9.0), 0.2); // above every calibration score: 1 / (n + 1)
/// // At α = 0.2 only scores above the largest calibration score are flagged.
/// assert_eq!(cal.threshold(DecisionRule::Alpha(0.2))?, 4.0);
/// assert!(cal.is_anomaly(4.5, DecisionRule::Alpha(0.2))?);
/// # Ok::<(), msma::MsmaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>", into = "Vec<f64>")]
pub struct Calibration {
    sorted: Vec<f64>,
}

impl TryFrom<Vec<f64>> for Calibration {
    type Error = MsmaError;

    fn try_from(scores: Vec<f64>) -> Result<Self, MsmaError> {
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
    /// [`MsmaError::TooFewRows`] for no scores, [`MsmaError::NonFinite`] for a score that is
    /// not finite.
    pub fn new(mut scores: Vec<f64>) -> Result<Self, MsmaError> {
        if scores.is_empty() {
            return Err(MsmaError::TooFewRows {
                what: "calibration (held-out inlier scores)",
                needed: 1,
                got: 0,
            });
        }
        if let Some(row) = scores.iter().position(|s| !s.is_finite()) {
            return Err(MsmaError::NonFinite {
                what: "calibration scores",
                row,
                column: 0,
                value: scores[row],
            });
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
        (1 + count_at_least(&self.sorted, score)) as f64 / (n + 1) as f64
    }

    /// The score above which `rule` flags a row (`score > threshold`); `+∞` when the rule
    /// can flag nothing (`α < 1 / (n + 1)`: too few calibration rows for that level).
    ///
    /// # Errors
    /// [`MsmaError::InvalidParameter`] for a level outside (0, 1).
    pub fn threshold(&self, rule: DecisionRule) -> Result<f64, MsmaError> {
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
            DecisionRule::Contamination(c) => crate::quantile(&self.sorted, 1.0 - c),
        })
    }

    /// Whether `rule` flags `score` (a NaN score is flagged: it is not like the inliers).
    ///
    /// # Errors
    /// As [`Calibration::threshold`].
    pub fn is_anomaly(&self, score: f64, rule: DecisionRule) -> Result<bool, MsmaError> {
        let t = self.threshold(rule)?;
        Ok(score.is_nan() || score > t)
    }
}

/// How many of the ascending `sorted` scores are at least `score`.
pub(crate) fn count_at_least(sorted: &[f64], score: f64) -> usize {
    sorted.len() - sorted.partition_point(|&c| c < score)
}

/// A fitted detector with the calibration of its decisions: the scores of held-out inliers
/// it was not fitted on.
///
/// ```
/// use msma::{CalibratedParams, DecisionRule, Detector, Fit, Matrix, MsmaParams, SelectionParams};
/// // Inliers on a curve; a held-out tenth of them calibrates the decisions.
/// let inliers: Vec<Vec<f64>> = (0..400)
///     .map(|i| { let t = i as f64 / 400.0; vec![t, t * t + 0.01 * (70.0 * t).sin()] })
///     .collect();
/// let msma = MsmaParams {
///     selection: Some(SelectionParams { candidates: vec![2, 3], ..Default::default() }),
///     ..Default::default()
/// };
/// let params = CalibratedParams { params: msma, fraction: 0.25, seed: 7 };
/// let detector = params.fit(&Matrix::from_rows(&inliers)?)?;
/// assert_eq!(detector.calibration().len(), 100);
/// let test = Matrix::from_rows(&[vec![0.5, 0.25], vec![0.5, 0.9]])?;
/// let p = detector.p_values(&test)?;
/// assert!(p[1] < p[0] && p[1] <= 0.01);
/// assert_eq!(detector.predict(&test, DecisionRule::Alpha(0.01))?, [false, true]);
/// # Ok::<(), msma::MsmaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibrated<D> {
    detector: D,
    calibration: Calibration,
}

impl<D> Calibrated<D> {
    /// A detector with a calibration computed elsewhere.
    pub fn new(detector: D, calibration: Calibration) -> Self {
        Self {
            detector,
            calibration,
        }
    }

    /// The detector.
    pub fn detector(&self) -> &D {
        &self.detector
    }

    /// The calibration.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The detector and its calibration.
    pub fn into_parts(self) -> (D, Calibration) {
        (self.detector, self.calibration)
    }

    /// The score above which `rule` flags a record.
    ///
    /// # Errors
    /// [`MsmaError::InvalidParameter`] for a level outside (0, 1).
    pub fn threshold(&self, rule: DecisionRule) -> Result<f64, MsmaError> {
        self.calibration.threshold(rule)
    }

    /// Calibrate `detector` on `held_out`: inlier records it was not fitted on.
    ///
    /// # Errors
    /// Scoring errors; [`MsmaError::TooFewRows`] for no records, [`MsmaError::NonFinite`]
    /// for a score that is not finite.
    pub fn calibrate<R>(detector: D, held_out: &R) -> Result<Self, D::Error>
    where
        R: ?Sized,
        D: Detector<R>,
        D::Error: From<MsmaError>,
    {
        let scores = detector.score(held_out)?;
        Ok(Self {
            calibration: Calibration::new(scores)?,
            detector,
        })
    }

    /// Conformal p-values of `records`: small means anomalous; on records drawn like the
    /// inliers, `P(p ≤ α) ≤ α`.
    ///
    /// # Errors
    /// Scoring errors.
    pub fn p_values<R>(&self, records: &R) -> Result<Vec<f64>, D::Error>
    where
        R: ?Sized,
        D: Detector<R>,
    {
        Ok(self
            .detector
            .score(records)?
            .into_iter()
            .map(|s| self.calibration.p_value(s))
            .collect())
    }

    /// Whether each record is anomalous by `rule` (a NaN score is flagged).
    ///
    /// # Errors
    /// Scoring errors; [`MsmaError::InvalidParameter`] for a level outside (0, 1).
    pub fn predict<R>(&self, records: &R, rule: DecisionRule) -> Result<Vec<bool>, D::Error>
    where
        R: ?Sized,
        D: Detector<R>,
        D::Error: From<MsmaError>,
    {
        let threshold = self.calibration.threshold(rule)?;
        Ok(self
            .detector
            .score(records)?
            .into_iter()
            .map(|s| s.is_nan() || s > threshold)
            .collect())
    }
}

impl<D: Detector<R>, R: ?Sized> Detector<R> for Calibrated<D> {
    type Error = D::Error;

    fn score(&self, records: &R) -> Result<Vec<f64>, D::Error> {
        self.detector.score(records)
    }
}

/// Settings that fit a detector on all but a seeded random `fraction` of the inliers and
/// calibrate it on that held-out share ([`Calibrated`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibratedParams<P> {
    /// The detector's settings.
    pub params: P,
    /// Share of the inliers held out for the calibration, in (0, 1).
    pub fraction: f64,
    /// Seed of the hold-out.
    pub seed: u64,
}

impl<P> Fit<Matrix> for CalibratedParams<P>
where
    P: Fit<Matrix>,
    P::Detector: Detector<Matrix, Error = P::Error>,
    P::Error: From<MsmaError>,
{
    type Detector = Calibrated<P::Detector>;
    type Error = P::Error;

    /// # Errors
    /// [`MsmaError::InvalidParameter`] for a fraction outside (0, 1),
    /// [`MsmaError::TooFewRows`] for fewer than 2 inliers; the detector's fit and scoring
    /// errors.
    fn fit(&self, inliers: &Matrix) -> Result<Self::Detector, P::Error> {
        if !(self.fraction > 0.0 && self.fraction < 1.0) {
            return Err(MsmaError::InvalidParameter {
                name: "fraction",
                value: self.fraction.to_string(),
                reason: "must lie strictly between 0 and 1",
            }
            .into());
        }
        let n = inliers.rows();
        if n < 2 {
            return Err(MsmaError::TooFewRows {
                what: "a calibrated fit (some to fit, some to calibrate)",
                needed: 2,
                got: n,
            }
            .into());
        }
        let held = ((n as f64 * self.fraction).round() as usize).clamp(1, n - 1);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(self.seed));
        let (calibration, fitting) = order.split_at(held);
        let detector = self.params.fit(&inliers.select_rows(fitting))?;
        Calibrated::calibrate(detector, &inliers.select_rows(calibration))
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
