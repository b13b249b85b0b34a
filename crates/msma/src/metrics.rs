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
