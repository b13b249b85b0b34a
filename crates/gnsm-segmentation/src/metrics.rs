//! How wrong a predicted segmentation is, and how well an anomaly score tracks it: Dice,
//! per-class IoU over a set, mean symmetric surface distance, 95th-percentile Hausdorff
//! distance, Pearson (also over the most anomalous entries) and Spearman correlation.
//!
//! Masks are row-major class indices; pixels whose *ground truth* is `void` are ignored in
//! both masks. Surface pixels follow MedPy: the pixels of a class that have a 4-neighbour
//! outside it (the image border counts as outside); distances are Euclidean, in pixels.

use crate::SegmentationError;
use msma::quantile;

fn check_masks(
    pred: &[u8],
    truth: &[u8],
    height: usize,
    width: usize,
) -> Result<(), SegmentationError> {
    if pred.len() != height * width || truth.len() != height * width {
        return Err(SegmentationError::Shape {
            what: "masks",
            expected: format!("{height} × {width} = {} pixels each", height * width),
            got: format!("prediction {}, truth {}", pred.len(), truth.len()),
        });
    }
    Ok(())
}

/// Mean Dice coefficient `2|P ∩ T| / (|P| + |T|)` over the classes `0..classes` present in
/// the prediction or the truth (non-void pixels only); 1 when neither has any.
///
/// ```
/// use gnsm_segmentation::metrics::dice;
/// // Truth: left half class 1; prediction: one column of it missed.
/// let truth = [1, 1, 0, 0, 1, 1, 0, 0];
/// let pred = [1, 0, 0, 0, 1, 0, 0, 0];
/// // class 1: 2·2/(2+4) = 2/3; class 0: 2·4/(6+4) = 4/5.
/// let d = dice(&pred, &truth, 2, 4, 2, 255)?;
/// assert!((d - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12);
/// # Ok::<(), gnsm_segmentation::SegmentationError>(())
/// ```
///
/// # Errors
/// [`SegmentationError::Shape`] when a mask has the wrong number of pixels.
pub fn dice(
    pred: &[u8],
    truth: &[u8],
    height: usize,
    width: usize,
    classes: usize,
    void: u8,
) -> Result<f64, SegmentationError> {
    check_masks(pred, truth, height, width)?;
    let mut both = vec![0usize; classes];
    let mut in_pred = vec![0usize; classes];
    let mut in_truth = vec![0usize; classes];
    for (&p, &t) in pred.iter().zip(truth) {
        if t == void {
            continue;
        }
        let (p, t) = (usize::from(p), usize::from(t));
        if p < classes {
            in_pred[p] += 1;
        }
        if t < classes {
            in_truth[t] += 1;
            if p == t {
                both[t] += 1;
            }
        }
    }
    let scores: Vec<f64> = (0..classes)
        .filter(|&c| in_pred[c] + in_truth[c] > 0)
        .map(|c| 2.0 * both[c] as f64 / (in_pred[c] + in_truth[c]) as f64)
        .collect();
    Ok(if scores.is_empty() {
        1.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    })
}

/// Squared Euclidean distance transform of a 1-D function (Felzenszwalb & Huttenlocher):
/// `out[q] = min_p (q − p)² + f[p]`.
fn edt_1d(f: &[f64], out: &mut [f64], v: &mut [usize], z: &mut [f64]) {
    let n = f.len();
    let mut k = 0;
    v[0] = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in 1..n {
        if f[q].is_infinite() {
            continue;
        }
        if f[v[0]].is_infinite() {
            // No finite parabola yet: this one becomes the first.
            v[0] = q;
            continue;
        }
        loop {
            let p = v[k];
            let s = ((f[q] + (q * q) as f64) - (f[p] + (p * p) as f64)) / (2.0 * (q - p) as f64);
            if s <= z[k] && k > 0 {
                k -= 1;
                continue;
            }
            if s <= z[k] {
                // k == 0 and the new parabola dominates from −∞.
                v[0] = q;
                z[1] = f64::INFINITY;
                break;
            }
            k += 1;
            v[k] = q;
            z[k] = s;
            z[k + 1] = f64::INFINITY;
            break;
        }
    }
    let mut k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while z[k + 1] < q as f64 {
            k += 1;
        }
        let p = v[k];
        *o = if f[p].is_infinite() {
            f64::INFINITY
        } else {
            (q as f64 - p as f64).powi(2) + f[p]
        };
    }
}

/// Euclidean distance from every pixel to the nearest `true` pixel of `features`
/// (`+∞` everywhere when there is none).
pub fn distance_transform(features: &[bool], height: usize, width: usize) -> Vec<f64> {
    let n = height.max(width);
    let (mut v, mut z) = (vec![0usize; n], vec![0.0f64; n + 1]);
    let mut grid: Vec<f64> = features
        .iter()
        .map(|&f| if f { 0.0 } else { f64::INFINITY })
        .collect();
    let mut column = vec![0.0; height];
    let mut out = vec![0.0; height];
    for x in 0..width {
        for y in 0..height {
            column[y] = grid[y * width + x];
        }
        edt_1d(&column, &mut out, &mut v, &mut z);
        for y in 0..height {
            grid[y * width + x] = out[y];
        }
    }
    let mut row_out = vec![0.0; width];
    for y in 0..height {
        let row = grid[y * width..(y + 1) * width].to_vec();
        edt_1d(&row, &mut row_out, &mut v, &mut z);
        grid[y * width..(y + 1) * width].copy_from_slice(&row_out);
    }
    grid.into_iter().map(f64::sqrt).collect()
}

/// Surface pixels of a binary mask: in the mask with a 4-neighbour outside it or on the
/// image border.
fn surface(mask: &[bool], height: usize, width: usize) -> Vec<bool> {
    let at = |y: isize, x: isize| {
        y >= 0
            && x >= 0
            && (y as usize) < height
            && (x as usize) < width
            && mask[y as usize * width + x as usize]
    };
    (0..height * width)
        .map(|i| {
            let (y, x) = ((i / width) as isize, (i % width) as isize);
            mask[i] && !(at(y - 1, x) && at(y + 1, x) && at(y, x - 1) && at(y, x + 1))
        })
        .collect()
}

/// Surface distances between two binary masks, both directions concatenated (prediction
/// surface to truth surface, then truth to prediction); empty when either mask is empty.
pub fn surface_distances(pred: &[bool], truth: &[bool], height: usize, width: usize) -> Vec<f64> {
    let ps = surface(pred, height, width);
    let ts = surface(truth, height, width);
    if !ps.contains(&true) || !ts.contains(&true) {
        return Vec::new();
    }
    let to_truth = distance_transform(&ts, height, width);
    let to_pred = distance_transform(&ps, height, width);
    let mut d: Vec<f64> = (0..ps.len())
        .filter(|&i| ps[i])
        .map(|i| to_truth[i])
        .collect();
    d.extend((0..ts.len()).filter(|&i| ts[i]).map(|i| to_pred[i]));
    d
}

/// Surface-distance summary of one prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurfaceMetrics {
    /// Mean symmetric surface distance (MedPy's `assd`: the mean of the two directed means),
    /// averaged over classes.
    pub msd: f64,
    /// 95th percentile of the concatenated directed surface distances (MedPy's `hd95`),
    /// averaged over classes.
    pub hd95: f64,
}

/// [`SurfaceMetrics`] over the classes `0..classes` present in the prediction or the truth.
/// A class present in only one of the two scores the image diagonal (the largest possible
/// distance), so that missing or hallucinating a class is not free; with no class at all
/// both are 0.
///
/// ```
/// use gnsm_segmentation::metrics::surface_metrics;
/// // One pixel of class 1 at (0, 0) in the truth, at (3, 4) in the prediction; the rest 0.
/// let mut truth = vec![0u8; 5 * 5];
/// let mut pred = truth.clone();
/// truth[0] = 1;
/// pred[3 * 5 + 4] = 1;
/// let m = surface_metrics(&pred, &truth, 5, 5, 2, 255)?;
/// // Class 1: every distance is 5. Class 0 differs from the full frame by one pixel each.
/// assert!(m.msd > 0.0 && m.hd95 >= m.msd);
/// # Ok::<(), gnsm_segmentation::SegmentationError>(())
/// ```
///
/// # Errors
/// [`SegmentationError::Shape`] when a mask has the wrong number of pixels.
pub fn surface_metrics(
    pred: &[u8],
    truth: &[u8],
    height: usize,
    width: usize,
    classes: usize,
    void: u8,
) -> Result<SurfaceMetrics, SegmentationError> {
    check_masks(pred, truth, height, width)?;
    let diagonal = ((height * height + width * width) as f64).sqrt();
    let (mut msd, mut hd95, mut counted) = (0.0, 0.0, 0usize);
    for c in 0..classes {
        let class = c as u8;
        let p: Vec<bool> = pred
            .iter()
            .zip(truth)
            .map(|(&p, &t)| t != void && p == class)
            .collect();
        let t: Vec<bool> = truth.iter().map(|&t| t == class).collect();
        let (in_p, in_t) = (p.contains(&true), t.contains(&true));
        if !in_p && !in_t {
            continue;
        }
        counted += 1;
        if in_p != in_t {
            msd += diagonal;
            hd95 += diagonal;
            continue;
        }
        let d = surface_distances(&p, &t, height, width);
        let n_p = surface(&p, height, width).iter().filter(|&&s| s).count();
        let (a, b) = d.split_at(n_p);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        msd += (mean(a) + mean(b)) / 2.0;
        hd95 += quantile(&d, 0.95);
    }
    let n = counted.max(1) as f64;
    Ok(SurfaceMetrics {
        msd: msd / n,
        hd95: hd95 / n,
    })
}

/// Pearson's correlation coefficient; NaN when either input is constant or shorter than 2.
///
/// ```
/// let r = gnsm_segmentation::metrics::pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.5]);
/// assert!(r > 0.99 && r < 1.0);
/// ```
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return f64::NAN;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x[..n].iter().zip(&y[..n]) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    sxy / (sxx * syy).sqrt()
}

/// Ranks from 1, ties sharing their average rank (SciPy's `rankdata`).
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut out = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation: Pearson's on average ranks.
///
/// ```
/// let rho = gnsm_segmentation::metrics::spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 4.0, 9.0, 16.0]);
/// assert!((rho - 1.0).abs() < 1e-12);
/// ```
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// Pearson's r between `score` and `metric` over the `top` entries of highest score: the
/// paper's statistic for the most anomalous pairs. Ties in score keep input order.
///
/// ```
/// use gnsm_segmentation::metrics::top_pearson;
/// // Among the two highest scores (9 and 7) the metric falls as the score rises.
/// let r = top_pearson(&[1.0, 9.0, 7.0, 2.0], &[5.0, 0.1, 0.3, 5.0], 2);
/// assert!((r + 1.0).abs() < 1e-12);
/// ```
pub fn top_pearson(score: &[f64], metric: &[f64], top: usize) -> f64 {
    let n = score.len().min(metric.len());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    order.truncate(top);
    let x: Vec<f64> = order.iter().map(|&i| score[i]).collect();
    let y: Vec<f64> = order.iter().map(|&i| metric[i]).collect();
    pearson(&x, &y)
}

/// Pixel counts per class over a set of predictions, for the intersection over union of
/// each class over the whole set (pixels whose truth is `void` ignored).
///
/// ```
/// use gnsm_segmentation::metrics::ClassOverlap;
/// let mut overlap = ClassOverlap::new(3);
/// overlap.add(&[0, 1, 1, 0], &[0, 1, 0, 255], 255)?;
/// // class 0: 1 shared of 2 in either; class 1: 1 of 2; class 2 never seen.
/// assert_eq!(overlap.iou(), vec![Some(0.5), Some(0.5), None]);
/// # Ok::<(), gnsm_segmentation::SegmentationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassOverlap {
    intersection: Vec<u64>,
    union: Vec<u64>,
}

impl ClassOverlap {
    /// No pixels yet, for classes `0..classes`.
    pub fn new(classes: usize) -> Self {
        Self {
            intersection: vec![0; classes],
            union: vec![0; classes],
        }
    }

    /// Count one prediction against its truth (same length).
    ///
    /// # Errors
    /// [`SegmentationError::Shape`] when the masks differ in length.
    pub fn add(&mut self, pred: &[u8], truth: &[u8], void: u8) -> Result<(), SegmentationError> {
        check_masks(pred, truth, 1, truth.len())?;
        let k = self.union.len();
        for (&p, &t) in pred.iter().zip(truth) {
            if t == void {
                continue;
            }
            let (p, t) = (usize::from(p), usize::from(t));
            if p == t {
                if p < k {
                    self.intersection[p] += 1;
                    self.union[p] += 1;
                }
            } else {
                if p < k {
                    self.union[p] += 1;
                }
                if t < k {
                    self.union[t] += 1;
                }
            }
        }
        Ok(())
    }

    /// IoU per class; `None` for a class in neither predictions nor truths.
    pub fn iou(&self) -> Vec<Option<f64>> {
        self.intersection
            .iter()
            .zip(&self.union)
            .map(|(&i, &u)| (u > 0).then(|| i as f64 / u as f64))
            .collect()
    }

    /// Mean IoU over the classes seen.
    pub fn mean_iou(&self) -> f64 {
        let seen: Vec<f64> = self.iou().into_iter().flatten().collect();
        seen.iter().sum::<f64>() / seen.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(h: usize, w: usize, y0: usize, x0: usize, size: usize) -> Vec<bool> {
        (0..h * w)
            .map(|i| {
                let (y, x) = (i / w, i % w);
                (y0..y0 + size).contains(&y) && (x0..x0 + size).contains(&x)
            })
            .collect()
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let (h, w) = (7, 9);
        let f: Vec<bool> = (0..h * w).map(|i| i % 11 == 3 || i == 40).collect();
        let d = distance_transform(&f, h, w);
        for (i, &got) in d.iter().enumerate() {
            let brute = (0..h * w)
                .filter(|&j| f[j])
                .map(|j| {
                    let dy = (i / w) as f64 - (j / w) as f64;
                    let dx = (i % w) as f64 - (j % w) as f64;
                    (dy * dy + dx * dx).sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            assert!((got - brute).abs() < 1e-12, "pixel {i}: {got} vs {brute}");
        }
        assert!(distance_transform(&[false; 4], 2, 2)
            .iter()
            .all(|v| v.is_infinite()));
    }

    #[test]
    fn concentric_squares_have_the_hand_computed_distances() {
        // Truth: 3×3 square (surface: its 8 ring pixels); prediction: the 5×5 square around
        // it (surface: 16 ring pixels). Prediction ring → truth ring: 12 pixels at 1, the 4
        // corners at √2; truth ring → prediction ring: all 8 at 1.
        let (h, w) = (9, 9);
        let truth = square(h, w, 3, 3, 3);
        let pred = square(h, w, 2, 2, 5);
        let mut d = surface_distances(&pred, &truth, h, w);
        assert_eq!(d.len(), 24);
        d.sort_by(f64::total_cmp);
        assert_eq!(d.iter().filter(|&&v| v == 1.0).count(), 20);
        assert_eq!(
            d.iter()
                .filter(|&&v| (v - 2f64.sqrt()).abs() < 1e-12)
                .count(),
            4
        );

        let to_u8 = |m: &[bool]| m.iter().map(|&b| u8::from(b)).collect::<Vec<_>>();
        // The 2-class call averages class 1 (hand values above) with class 0, the
        // complements, whose distances come from the binary function.
        let both = surface_metrics(&to_u8(&pred), &to_u8(&truth), h, w, 2, 255).unwrap();
        let not = |m: &[bool]| m.iter().map(|&b| !b).collect::<Vec<_>>();
        let d0 = surface_distances(&not(&pred), &not(&truth), h, w);
        let n0 = surface(&not(&pred), h, w).iter().filter(|&&s| s).count();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let msd0 = (mean(&d0[..n0]) + mean(&d0[n0..])) / 2.0;
        let msd1 = ((4.0 * 2f64.sqrt() + 12.0) / 16.0 + 1.0) / 2.0;
        assert!((both.msd - (msd0 + msd1) / 2.0).abs() < 1e-12);
        let hd1 = 2f64.sqrt();
        assert!((both.hd95 - (quantile(&d0, 0.95) + hd1) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn single_pixels_five_apart_and_missing_classes() {
        let mut truth = vec![0u8; 25];
        let mut pred = truth.clone();
        truth[0] = 1;
        pred[3 * 5 + 4] = 1;
        let p: Vec<bool> = pred.iter().map(|&v| v == 1).collect();
        let t: Vec<bool> = truth.iter().map(|&v| v == 1).collect();
        assert_eq!(surface_distances(&p, &t, 5, 5), vec![5.0, 5.0]);
        // Class 2 predicted but absent from the truth: the diagonal √50.
        pred[12] = 2;
        let only_2 = surface_metrics(&pred, &truth, 5, 5, 3, 255).unwrap();
        let without = surface_metrics(&pred, &truth, 5, 5, 2, 255).unwrap();
        let expect = (without.msd * 2.0 + 50f64.sqrt()) / 3.0;
        assert!((only_2.msd - expect).abs() < 1e-12);
    }

    #[test]
    fn void_truth_pixels_are_ignored() {
        let truth = [0u8, 0, 9, 9];
        let pred = [0u8, 0, 1, 1];
        assert_eq!(dice(&pred, &truth, 2, 2, 2, 9).unwrap(), 1.0);
        let m = surface_metrics(&pred, &truth, 2, 2, 2, 9).unwrap();
        assert_eq!((m.msd, m.hd95), (0.0, 0.0));
        assert!(dice(&pred, &truth[..3], 2, 2, 2, 9).is_err());
    }

    #[test]
    fn correlations_match_scipy() {
        // scipy.stats.pearsonr / spearmanr (SciPy 1.17.1) on these vectors:
        // x = [1, 2, 2, 3, 5, 8], y = [2, 1, 4, 3, 7, 6]
        // pearsonr → 0.7838052099931367, spearmanr → 0.753702346348183 (ties: average ranks)
        let x = [1.0, 2.0, 2.0, 3.0, 5.0, 8.0];
        let y = [2.0, 1.0, 4.0, 3.0, 7.0, 6.0];
        assert!((pearson(&x, &y) - 0.783_805_209_993_136_7).abs() < 1e-12);
        assert!((spearman(&x, &y) - 0.753_702_346_348_183).abs() < 1e-12);
        assert_eq!(ranks(&x), vec![1.0, 2.5, 2.5, 4.0, 5.0, 6.0]);
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }
}
