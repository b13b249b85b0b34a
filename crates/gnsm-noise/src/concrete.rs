use rand::Rng;

use crate::{NoiseError, ONE_HOT_FLOOR};

/// The guard the reference adds inside both logarithms of the Gumbel transform.
pub const GUMBEL_EPS: f64 = 1e-20;

/// A standard Gumbel sample from a uniform `u ∈ [0, 1)`, exactly as the reference computes
/// it: `-ln(-ln(u + 1e-20) + 1e-20)`. The guards keep `u = 0` finite (≈ -3.83) and `u → 1`
/// bounded (≤ 46.1).
///
/// ```
/// // The Gumbel median is -ln(ln 2).
/// assert!((gnsm_noise::gumbel(0.5) + 2f64.ln().ln()).abs() < 1e-12);
/// assert!(gnsm_noise::gumbel(0.0).is_finite());
/// ```
#[inline]
pub fn gumbel(u: f64) -> f64 {
    -(-(u + GUMBEL_EPS).ln() + GUMBEL_EPS).ln()
}

/// `e^{-g}` for the f32 Gumbel sample `g` of [`gumbel`]: `-ln(u + 1e-20) + 1e-20`, the
/// inner part of the reference's transform (f32, the precision of the batch perturbation and
/// of the reference).
#[inline]
pub(crate) fn exp_neg_gumbel_f32(u: f32) -> f32 {
    const EPS: f32 = 1e-20;
    -(u + EPS).ln() + EPS
}

/// [`gumbel`] in f32.
#[cfg(test)]
pub(crate) fn gumbel_f32(u: f32) -> f32 {
    -exp_neg_gumbel_f32(u).ln()
}

/// `ln Σ exp(v)`, computed stably. `-inf` for an empty slice.
///
/// ```
/// let v = [1000.0, 1000.0];
/// assert!((gnsm_noise::logsumexp(&v) - (1000.0 + 2f64.ln())).abs() < 1e-9);
/// ```
pub fn logsumexp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Replace `values` by `values - logsumexp(values)` (a log-softmax), in f32 with the
/// maximum subtracted first. Returns the log-sum-exp that was subtracted.
pub fn log_softmax_in_place(values: &mut [f32]) -> f32 {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = values.iter().map(|v| (v - max).exp()).sum();
    let lse = max + sum.ln();
    for v in values.iter_mut() {
        *v -= lse;
    }
    lse
}

/// The ExpConcrete score parameterised by logits, per group (paper eq. 4 / 15):
/// `s_j = -τ + τ·K·softmax(logits)_j`, written into `out`.
///
/// Given the logit noise `ε = log x - τ·x̃` of a perturbed input this is the exact score of
/// the noise distribution (the score-matching target); given a network's output logits it is
/// the network's score estimate. Each group's score sums to zero.
///
/// # Errors
/// [`NoiseError::LengthMismatch`] when `out` and `logits` differ in length, or the group is
/// smaller than 2.
///
/// ```
/// let mut s = [0.0f32; 3];
/// gnsm_noise::concrete_score(&[0.0, 0.0, 0.0], 2.0, &mut s)?;
/// assert_eq!(s, [0.0, 0.0, 0.0]); // uniform logits: -τ + τ·K/K = 0
/// # Ok::<(), gnsm_noise::NoiseError>(())
/// ```
pub fn concrete_score(logits: &[f32], temperature: f32, out: &mut [f32]) -> Result<(), NoiseError> {
    if out.len() != logits.len() {
        return Err(NoiseError::LengthMismatch {
            what: "score output",
            expected: logits.len(),
            got: out.len(),
        });
    }
    if logits.len() < 2 {
        return Err(NoiseError::GroupTooSmall {
            group: 0,
            size: logits.len(),
        });
    }
    let k = logits.len() as f32;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = (l - max).exp();
        sum += *o;
    }
    let scale = temperature * k / sum;
    for o in out.iter_mut() {
        *o = *o * scale - temperature;
    }
    Ok(())
}

/// One ExpConcrete(α, τ) distribution over log-probability vectors of length K (Maddison et
/// al. 2017), the noise distribution of GNSM, in f64.
///
/// A sample is `Y = (log α + G)/τ - logsumexp((log α + G)/τ)` with i.i.d. Gumbel `G`
/// (paper eq. 3), so `exp(Y)` lies on the simplex.
///
/// ```
/// use gnsm_noise::{ExpConcrete, NoiseRng};
/// use rand::SeedableRng;
/// // The noise around a one-hot input with outcome 2 of 4 at temperature 2.
/// let dist = ExpConcrete::from_one_hot(2, 4, 2.0)?;
/// let mut rng = NoiseRng::seed_from_u64(1);
/// let y = dist.sample(&mut rng);
/// let mut score = vec![0.0; 4];
/// dist.score(&y, &mut score)?;
/// assert!(score.iter().sum::<f64>().abs() < 1e-9);
/// assert!(dist.log_density(&y)?.is_finite());
/// # Ok::<(), gnsm_noise::NoiseError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ExpConcrete {
    log_alpha: Vec<f64>,
    temperature: f64,
}

impl ExpConcrete {
    /// The distribution with location `log α` (unnormalised log-probabilities) and
    /// temperature `τ`.
    ///
    /// # Errors
    /// [`NoiseError::GroupTooSmall`] for K < 2 and [`NoiseError::InvalidParameter`] for a
    /// non-finite `log α` entry or a non-finite or non-positive τ.
    pub fn new(log_alpha: Vec<f64>, temperature: f64) -> Result<Self, NoiseError> {
        if log_alpha.len() < 2 {
            return Err(NoiseError::GroupTooSmall {
                group: 0,
                size: log_alpha.len(),
            });
        }
        if let Some(&bad) = log_alpha.iter().find(|v| !v.is_finite()) {
            return Err(NoiseError::InvalidParameter {
                name: "log_alpha",
                value: bad,
                reason: "every entry must be finite",
            });
        }
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(NoiseError::InvalidParameter {
                name: "temperature",
                value: temperature,
                reason: "must be finite and > 0",
            });
        }
        Ok(Self {
            log_alpha,
            temperature,
        })
    }

    /// The GNSM noise around a one-hot input: `log α = log(clip(one_hot(hot, k), 1e-5, 1))`.
    ///
    /// # Errors
    /// As [`ExpConcrete::new`], and [`NoiseError::InvalidParameter`] when `hot >= k`.
    pub fn from_one_hot(hot: usize, k: usize, temperature: f64) -> Result<Self, NoiseError> {
        if hot >= k {
            return Err(NoiseError::InvalidParameter {
                name: "hot",
                value: hot as f64,
                reason: "the hot index must be below the group size",
            });
        }
        let cold = ONE_HOT_FLOOR.ln();
        let log_alpha = (0..k).map(|j| if j == hot { 0.0 } else { cold }).collect();
        Self::new(log_alpha, temperature)
    }

    /// Number of outcomes K.
    pub fn k(&self) -> usize {
        self.log_alpha.len()
    }

    /// The temperature τ.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The location `log α`.
    pub fn log_alpha(&self) -> &[f64] {
        &self.log_alpha
    }

    /// Draw one sample (paper eq. 3 with the reference's 1e-20 guards).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        let mut y: Vec<f64> = self
            .log_alpha
            .iter()
            .map(|&la| (la + gumbel(rng.random::<f64>())) / self.temperature)
            .collect();
        let lse = logsumexp(&y);
        for v in &mut y {
            *v -= lse;
        }
        y
    }

    fn check_len(&self, what: &'static str, len: usize) -> Result<(), NoiseError> {
        if len == self.k() {
            Ok(())
        } else {
            Err(NoiseError::LengthMismatch {
                what,
                expected: self.k(),
                got: len,
            })
        }
    }

    /// Exact log-density (paper eq. 8, Maddison et al. 2017) at a point `x` with
    /// `logsumexp(x) = 0`:
    ///
    /// `ln((K-1)!) + (K-1)·ln τ + Σ_k (ln α_k - τ x_k) - K·ln Σ_k exp(ln α_k - τ x_k)`.
    ///
    /// Eq. 8 is the Concrete density times `Π_k e^{x_k}`, so it integrates to one against
    /// the symmetric measure `Π_k du_k/u_k` on the simplex (`u = exp(x)`, first K-1
    /// coordinates free). The density of the first K-1 coordinates of `x` under Lebesgue
    /// measure is this value minus `x_K`. The score ([`ExpConcrete::score`]) is the gradient
    /// of eq. 8 with `x` free in R^K, as in the paper.
    ///
    /// # Errors
    /// [`NoiseError::LengthMismatch`] when `x` is not of length K.
    pub fn log_density(&self, x: &[f64]) -> Result<f64, NoiseError> {
        self.check_len("log-density point", x.len())?;
        let k = self.k();
        let tau = self.temperature;
        let log_factorial: f64 = (2..k).map(|i| (i as f64).ln()).sum();
        let shifted: Vec<f64> = self
            .log_alpha
            .iter()
            .zip(x)
            .map(|(la, xi)| la - tau * xi)
            .collect();
        Ok(
            log_factorial + (k - 1) as f64 * tau.ln() + shifted.iter().sum::<f64>()
                - k as f64 * logsumexp(&shifted),
        )
    }

    /// The logit noise `ε = log α - τ·x` of a point `x`, into `out`.
    ///
    /// # Errors
    /// [`NoiseError::LengthMismatch`] for a wrong length.
    pub fn logit_noise(&self, x: &[f64], out: &mut [f64]) -> Result<(), NoiseError> {
        self.check_len("point", x.len())?;
        self.check_len("logit-noise output", out.len())?;
        for ((o, la), xi) in out.iter_mut().zip(&self.log_alpha).zip(x) {
            *o = la - self.temperature * xi;
        }
        Ok(())
    }

    /// The closed-form score `∇_x ln p(x) = -τ + τ·K·softmax(log α - τ·x)` (paper eq. 4 /
    /// 15), into `out`. This is the denoising score-matching target for a perturbed input.
    /// It sums to zero.
    ///
    /// # Errors
    /// [`NoiseError::LengthMismatch`] for a wrong length.
    pub fn score(&self, x: &[f64], out: &mut [f64]) -> Result<(), NoiseError> {
        self.logit_noise(x, out)?;
        let lse = logsumexp(out);
        let tau = self.temperature;
        let k = self.k() as f64;
        for o in out.iter_mut() {
            *o = -tau + tau * k * (*o - lse).exp();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoiseRng;
    use approx::assert_relative_eq;
    use proptest::prelude::{any, prop_assert, proptest, ProptestConfig};
    use rand::SeedableRng;

    /// Central finite difference of the log-density expression, treating x as free in R^K
    /// (the closed form differentiates eq. 8 that way).
    fn fd_gradient(dist: &ExpConcrete, x: &[f64]) -> Vec<f64> {
        let h = 1e-5;
        (0..x.len())
            .map(|j| {
                let mut plus = x.to_vec();
                let mut minus = x.to_vec();
                plus[j] += h;
                minus[j] -= h;
                (dist.log_density(&plus).unwrap() - dist.log_density(&minus).unwrap()) / (2.0 * h)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn score_is_gradient_of_log_density(
            k in 2usize..12,
            tau in 0.5f64..25.0,
            seed in any::<u64>(),
        ) {
            let mut rng = NoiseRng::seed_from_u64(seed);
            let log_alpha: Vec<f64> = (0..k).map(|_| rng.random_range(-12.0..2.0)).collect();
            let dist = ExpConcrete::new(log_alpha, tau).unwrap();
            let x = dist.sample(&mut rng);
            let mut score = vec![0.0; k];
            dist.score(&x, &mut score).unwrap();
            let fd = fd_gradient(&dist, &x);
            for (s, f) in score.iter().zip(&fd) {
                // Scores reach τ·(K-1); compare relative to that scale.
                prop_assert!((s - f).abs() <= 1e-5 * (1.0 + tau * k as f64), "{s} vs {f}");
            }
            prop_assert!(score.iter().sum::<f64>().abs() <= 1e-9 * tau * k as f64);
            prop_assert!((logsumexp(&x)).abs() < 1e-12);
        }

        #[test]
        fn f32_score_sums_to_zero(
            logits in proptest::collection::vec(-30.0f32..30.0, 2..40),
            tau in 0.5f32..25.0,
        ) {
            let mut out = vec![0.0; logits.len()];
            concrete_score(&logits, tau, &mut out).unwrap();
            let sum: f32 = out.iter().sum();
            prop_assert!(sum.abs() <= 1e-4 * tau * logits.len() as f32);
            for &s in &out {
                prop_assert!(s >= -tau - 1e-4 && s <= tau * (logits.len() as f32 - 1.0) + 1e-3);
            }
        }
    }

    #[test]
    fn log_density_normalises_for_k2() {
        // For K = 2 the point is (ln u, ln(1-u)); eq. 8 is a density for the measure
        // du/(u(1-u)), so ∫ exp(eq. 8) du/(u(1-u)) over (0, 1) must be 1. Midpoint rule.
        for (log_alpha, tau) in [
            (vec![0.0, 0.0], 1.0),
            (vec![0.3, -1.2], 1.3),
            (vec![0.0, ONE_HOT_FLOOR.ln()], 2.0),
        ] {
            let dist = ExpConcrete::new(log_alpha, tau).unwrap();
            let n = 400_000;
            let total: f64 = (0..n)
                .map(|i| {
                    let u = (i as f64 + 0.5) / n as f64;
                    dist.log_density(&[u.ln(), (1.0 - u).ln()]).unwrap().exp() / (u * (1.0 - u))
                })
                .sum::<f64>()
                / n as f64;
            assert_relative_eq!(total, 1.0, max_relative = 2e-3);
        }
    }

    #[test]
    fn log_density_normalises_for_k3() {
        // Two free coordinates u1, u2 on the simplex u1 + u2 < 1, measure du1 du2/(u1 u2 u3).
        let dist = ExpConcrete::new(vec![0.2, -0.4, 0.1], 1.5).unwrap();
        let n = 1500;
        let mut total = 0.0;
        for i in 0..n {
            let u1 = (i as f64 + 0.5) / n as f64;
            for j in 0..n {
                let u2 = (j as f64 + 0.5) / n as f64;
                let u3 = 1.0 - u1 - u2;
                if u3 <= 0.0 {
                    continue;
                }
                let p = dist
                    .log_density(&[u1.ln(), u2.ln(), u3.ln()])
                    .unwrap()
                    .exp();
                total += p / (u1 * u2 * u3);
            }
        }
        total /= (n * n) as f64;
        assert_relative_eq!(total, 1.0, max_relative = 1e-2);
    }

    #[test]
    fn log_density_constant_terms() {
        // log α = 0 and x = -ln K everywhere: log α - τx = τ ln K for every k, so the last two
        // terms give Kτ ln K - K(τ ln K + ln K) = -K ln K, and
        // log p = ln((K-1)!) + (K-1) ln τ - K ln K.
        let k = 5usize;
        let tau = 3.0f64;
        let kf = k as f64;
        let dist = ExpConcrete::new(vec![0.0; k], tau).unwrap();
        let x = vec![-kf.ln(); k];
        let expected = statrs::function::gamma::ln_gamma(kf) + (kf - 1.0) * tau.ln() - kf * kf.ln();
        assert_relative_eq!(dist.log_density(&x).unwrap(), expected, epsilon = 1e-12);
    }

    #[test]
    fn argmax_of_samples_follows_categorical() {
        // Gumbel-max: argmax of (log α + G) ~ Categorical(α / Σα) at any τ.
        let alpha = [0.1f64, 0.2, 0.3, 0.4];
        let dist = ExpConcrete::new(alpha.iter().map(|a| a.ln()).collect(), 0.8).unwrap();
        let mut rng = NoiseRng::seed_from_u64(2024);
        let n = 40_000;
        let mut counts = [0usize; 4];
        for _ in 0..n {
            let y = dist.sample(&mut rng);
            let arg = y
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            counts[arg] += 1;
        }
        let chi2: f64 = counts
            .iter()
            .zip(alpha)
            .map(|(&c, a)| {
                let e = a * n as f64;
                (c as f64 - e).powi(2) / e
            })
            .sum();
        // 3 degrees of freedom: the 0.999 quantile is 16.27.
        use statrs::distribution::{ChiSquared, ContinuousCDF};
        let critical = ChiSquared::new(3.0).unwrap().inverse_cdf(0.999);
        assert!(chi2 < critical, "chi2 = {chi2}, counts = {counts:?}");
    }

    #[test]
    fn gumbel_samples_pass_ks_test() {
        use statrs::distribution::{ContinuousCDF, Gumbel};
        let mut rng = NoiseRng::seed_from_u64(99);
        let n = 20_000;
        let mut samples: Vec<f64> = (0..n).map(|_| gumbel(rng.random::<f64>())).collect();
        samples.sort_by(f64::total_cmp);
        let cdf = Gumbel::new(0.0, 1.0).unwrap();
        let d = samples
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = cdf.cdf(x);
                (f - i as f64 / n as f64)
                    .abs()
                    .max(((i + 1) as f64 / n as f64 - f).abs())
            })
            .fold(0.0, f64::max);
        // Asymptotic KS critical value at α = 0.001: 1.9495 / √n.
        let critical = 1.9495 / (n as f64).sqrt();
        assert!(d < critical, "KS statistic {d} >= {critical}");
        // And the f32 path used by the batch perturbation.
        let mut samples32: Vec<f64> = (0..n)
            .map(|_| f64::from(gumbel_f32(rng.random::<f32>())))
            .collect();
        samples32.sort_by(f64::total_cmp);
        let d32 = samples32
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = cdf.cdf(x);
                (f - i as f64 / n as f64)
                    .abs()
                    .max(((i + 1) as f64 / n as f64 - f).abs())
            })
            .fold(0.0, f64::max);
        assert!(d32 < critical, "f32 KS statistic {d32} >= {critical}");
    }

    #[test]
    fn invalid_parameters_are_errors() {
        assert!(ExpConcrete::new(vec![0.0], 1.0).is_err());
        assert!(ExpConcrete::new(vec![0.0, f64::NAN], 1.0).is_err());
        assert!(ExpConcrete::new(vec![0.0, 0.0], 0.0).is_err());
        assert!(ExpConcrete::new(vec![0.0, 0.0], f64::INFINITY).is_err());
        assert!(ExpConcrete::from_one_hot(3, 3, 1.0).is_err());
        let d = ExpConcrete::from_one_hot(0, 3, 1.0).unwrap();
        assert!(d.log_density(&[0.0, 0.0]).is_err());
        assert!(d.score(&[0.0; 3], &mut [0.0; 2]).is_err());
        assert!(concrete_score(&[0.0], 1.0, &mut [0.0]).is_err());
        assert!(concrete_score(&[0.0, 1.0], 1.0, &mut [0.0]).is_err());
    }

    #[test]
    fn score_by_hand() {
        // K = 2, τ = 2, log α = (0, 0), x = (ln .25, ln .75):
        // log α - τx = (-2 ln .25, -2 ln .75) → softmax ∝ (16, 16/9) → (0.9, 0.1);
        // s = -2 + 4·(0.9, 0.1) = (1.6, -1.6).
        let d = ExpConcrete::new(vec![0.0, 0.0], 2.0).unwrap();
        let mut s = [0.0; 2];
        d.score(&[0.25f64.ln(), 0.75f64.ln()], &mut s).unwrap();
        assert_relative_eq!(s[0], 1.6, epsilon = 1e-12);
        assert_relative_eq!(s[1], -1.6, epsilon = 1e-12);
    }
}
