//! Anomaly-detection metrics: average precision and ROC-AUC (scikit-learn's definitions,
//! exact under ties) and the curves behind them. Labels: `true` = anomaly; scores: higher =
//! more anomalous.

use crate::MsmaError;

fn check(
    metric: &'static str,
    labels: &[bool],
    scores: &[f64],
) -> Result<(usize, usize), MsmaError> {
    if labels.len() != scores.len() {
        return Err(MsmaError::Shape {
            what: "labels and scores",
            expected: labels.len().to_string(),
            got: scores.len().to_string(),
        });
    }
    if let Some(i) = scores.iter().position(|s| s.is_nan()) {
        return Err(MsmaError::NonFinite {
            what: "scores",
            row: i,
            column: 0,
            value: scores[i],
        });
    }
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 || positives == labels.len() {
        return Err(MsmaError::OneClass {
            metric,
            positives,
            total: labels.len(),
        });
    }
    Ok((positives, labels.len() - positives))
}

/// Cumulative (true positives, false positives) at each distinct score, from the highest
/// score down; tied scores form one threshold. Returns (threshold, tp, fp) triples.
fn cumulative_counts(labels: &[bool], scores: &[f64]) -> Vec<(f64, usize, usize)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out: Vec<(f64, usize, usize)> = Vec::new();
    let (mut tp, mut fp) = (0, 0);
    for (pos, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order
            .get(pos + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            out.push((scores[i], tp, fp));
        }
    }
    out
}

/// Precision-recall curve at every distinct score threshold, from the highest threshold
/// down: (precision, recall, threshold) triples. Unlike scikit-learn it does not append the
/// (1, 0) end point; it is implied.
///
/// # Errors
/// [`MsmaError::Shape`] for different lengths, [`MsmaError::NonFinite`] for a NaN score,
/// [`MsmaError::OneClass`] when only one class is present.
pub fn precision_recall_curve(
    labels: &[bool],
    scores: &[f64],
) -> Result<Vec<(f64, f64, f64)>, MsmaError> {
    let (positives, _) = check("precision-recall curve", labels, scores)?;
    Ok(cumulative_counts(labels, scores)
        .into_iter()
        .map(|(t, tp, fp)| {
            (
                tp as f64 / (tp + fp) as f64,
                tp as f64 / positives as f64,
                t,
            )
        })
        .collect())
}

/// Average precision, scikit-learn's step-wise definition without interpolation:
/// `AP = Σ_n (R_n - R_{n-1})·P_n` over distinct thresholds from the highest down.
///
/// ```
/// // Ranked: anomaly (0.9), inlier (0.8), anomaly (0.7), inlier (0.1):
/// // AP = ½·1 + ½·⅔ = 0.8333…
/// let ap = msma::average_precision(&[true, false, true, false], &[0.9, 0.8, 0.7, 0.1])?;
/// assert!((ap - 5.0 / 6.0).abs() < 1e-12);
/// # Ok::<(), msma::MsmaError>(())
/// ```
///
/// # Errors
/// As [`precision_recall_curve`].
pub fn average_precision(labels: &[bool], scores: &[f64]) -> Result<f64, MsmaError> {
    let curve = precision_recall_curve(labels, scores)?;
    let mut previous_recall = 0.0;
    let mut ap = 0.0;
    for (precision, recall, _) in curve {
        ap += (recall - previous_recall) * precision;
        previous_recall = recall;
    }
    Ok(ap)
}

/// ROC curve at every distinct score threshold from the highest down, starting at (0, 0):
/// (false positive rate, true positive rate, threshold) triples; the first threshold is
/// `+inf`. Collinear points are kept (scikit-learn drops them by default; the area is the
/// same).
///
/// # Errors
/// As [`precision_recall_curve`].
pub fn roc_curve(labels: &[bool], scores: &[f64]) -> Result<Vec<(f64, f64, f64)>, MsmaError> {
    let (positives, negatives) = check("ROC curve", labels, scores)?;
    let mut out = vec![(0.0, 0.0, f64::INFINITY)];
    out.extend(
        cumulative_counts(labels, scores)
            .into_iter()
            .map(|(t, tp, fp)| {
                (
                    fp as f64 / negatives as f64,
                    tp as f64 / positives as f64,
                    t,
                )
            }),
    );
    Ok(out)
}

/// Area under the ROC curve: the probability that a random anomaly scores above a random
/// inlier, ties counting one half (trapezoidal area, exact under ties).
///
/// ```
/// let auc = msma::roc_auc(&[true, false, true, false], &[0.9, 0.8, 0.7, 0.1])?;
/// assert!((auc - 0.75).abs() < 1e-12);
/// # Ok::<(), msma::MsmaError>(())
/// ```
///
/// # Errors
/// As [`precision_recall_curve`].
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Result<f64, MsmaError> {
    let curve = roc_curve(labels, scores)?;
    Ok(curve
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum())
}

/// Precision, recall and F1 of a decision rule on a labelled evaluation set.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecisionMetrics {
    /// The level α of the rule "anomalous when the p-value is at most α".
    pub alpha: f64,
    /// Records flagged.
    pub flagged: usize,
    /// Anomalies among the flagged / flagged (0 when nothing is flagged).
    pub precision: f64,
    /// Flagged anomalies / anomalies.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Inliers flagged / inliers: the false-positive rate, at most about α.
    pub false_positive_rate: f64,
}

/// Precision, recall and F1 of the conformal rule "anomalous when p ≤ α" on an evaluation
/// set, calibrated on the set's own inliers: an anomaly's p-value is
/// `(1 + #{inliers ≥ s}) / (n + 1)`, an inlier's counts the other `n − 1` inliers,
/// `#{inliers ≥ s} / n` (itself left out). Each inlier is so exchangeable with its
/// calibration rows, and no calibration rows have to be held out of the fit: this is how an
/// evaluation reports decisions for detectors fitted without a calibration (labels are
/// read here, for evaluation only).
///
/// ```
/// use msma::conformal_decisions;
/// // Inliers score 1..=9; anomalies 9.5 (above every inlier) and 5.
/// let labels = [false, false, false, false, false, false, false, false, false, true, true];
/// let scores = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 9.5, 5.0];
/// let m = conformal_decisions(&labels, &scores, 0.1)?;
/// // p(9.5) = 1/10 and p(9) = 1/9 > 0.1 for the top inlier: only the first anomaly flagged.
/// assert_eq!((m.flagged, m.precision, m.recall), (1, 1.0, 0.5));
/// # Ok::<(), msma::MsmaError>(())
/// ```
///
/// # Errors
/// As [`average_precision`] (different lengths, NaN scores, one class only), and
/// [`MsmaError::InvalidParameter`] for α outside (0, 1).
pub fn conformal_decisions(
    labels: &[bool],
    scores: &[f64],
    alpha: f64,
) -> Result<DecisionMetrics, MsmaError> {
    crate::DecisionRule::Alpha(alpha).validate()?;
    let (positives, negatives) = check("conformal decisions", labels, scores)?;
    let mut inliers: Vec<f64> = labels
        .iter()
        .zip(scores)
        .filter(|(&l, _)| !l)
        .map(|(_, &s)| s)
        .collect();
    inliers.sort_by(f64::total_cmp);
    let n = inliers.len();
    let at_least = |s: f64| crate::calibration::count_at_least(&inliers, s);
    let (mut tp, mut fp) = (0usize, 0usize);
    for (&label, &s) in labels.iter().zip(scores) {
        let p = if label {
            (1 + at_least(s)) as f64 / (n + 1) as f64
        } else {
            at_least(s) as f64 / n as f64
        };
        if p <= alpha {
            if label {
                tp += 1;
            } else {
                fp += 1;
            }
        }
    }
    let flagged = tp + fp;
    let precision = if flagged == 0 {
        0.0
    } else {
        tp as f64 / flagged as f64
    };
    let recall = tp as f64 / positives as f64;
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Ok(DecisionMetrics {
        alpha,
        flagged,
        precision,
        recall,
        f1,
        false_positive_rate: fp as f64 / negatives as f64,
    })
}
