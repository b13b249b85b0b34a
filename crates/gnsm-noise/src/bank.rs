//! A fixed bank of noise draws applied to every row: common random numbers for scoring.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::concrete::exp_neg_gumbel_f32;
use crate::{FeatureLayout, NoiseError, NoiseSchedule};

/// `draws` perturbations at every level of a schedule, drawn once and applied to any clean
/// row: the row's noisy copies and score-matching targets are what [`perturb_batch`]
/// gives for that row repeated `levels × draws` times (level-major) with a generator
/// re-seeded for every row.
///
/// Scoring every row with the same draws (common random numbers) makes the differences
/// between rows' expected denoising losses free of the noise the draws add, and makes a
/// row's score independent of which other rows it is scored with. Only the part of the
/// perturbation that depends on the row (`z = (log x − g)/τ` and its normalisation) is
/// computed per row; the Gumbel transforms, targets and normals are computed once.
///
/// ```
/// use gnsm_noise::{FeatureLayout, NoiseBank, NoiseRng, NoiseSchedule, LOG_ONE_HOT_COLD};
/// use rand::SeedableRng;
/// let layout = FeatureLayout::new(1, vec![2, 3])?;
/// let schedule = NoiseSchedule::default();
/// let bank = NoiseBank::new(&layout, &schedule, 4, &mut NoiseRng::seed_from_u64(1));
/// assert_eq!(bank.copies(), 20 * 4);
/// let row = [0.5, LOG_ONE_HOT_COLD, 0.0, 0.0, LOG_ONE_HOT_COLD, LOG_ONE_HOT_COLD];
/// let mut noisy = vec![0.0; bank.copies() * 6];
/// bank.perturb(&row, &mut noisy)?;
/// // Copy 0 is level 0 (most noise); every group stays a log-probability vector.
/// let total: f32 = noisy[1..3].iter().map(|v| v.exp()).sum();
/// assert!((total - 1.0).abs() < 1e-5);
/// # Ok::<(), gnsm_noise::NoiseError>(())
/// ```
///
/// [`perturb_batch`]: crate::perturb_batch
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseBank {
    layout: FeatureLayout,
    draws: usize,
    /// The level of each copy (level-major: `draws` copies per level).
    levels: Vec<usize>,
    temperatures: Vec<f32>,
    sigmas: Vec<f32>,
    /// copies × continuous standard normals.
    normals: Vec<f32>,
    /// copies × categorical width: `-g` (the negated Gumbel draw).
    neg_g: Vec<f32>,
    /// copies × categorical width: `softmax(-g)` per group, the KL target.
    target_probs: Vec<f32>,
    /// Per copy, `Σ_groups Σ p ln p` of the targets.
    target_neg_entropy: Vec<f64>,
}

impl NoiseBank {
    /// Draw `draws` perturbations per level of `schedule` from `rng`, in the order
    /// [`perturb_batch`](crate::perturb_batch) draws them for one row per copy.
    pub fn new<R: Rng + ?Sized>(
        layout: &FeatureLayout,
        schedule: &NoiseSchedule,
        draws: usize,
        rng: &mut R,
    ) -> Self {
        let levels: Vec<usize> = (0..schedule.levels())
            .flat_map(|l| std::iter::repeat_n(l, draws))
            .collect();
        let copies = levels.len();
        let (n_cont, cat_width) = (layout.continuous(), layout.categorical_width());
        let mut bank = Self {
            layout: layout.clone(),
            draws,
            temperatures: levels
                .iter()
                .map(|&l| schedule.temperatures()[l] as f32)
                .collect(),
            sigmas: levels
                .iter()
                .map(|&l| schedule.sigmas()[l] as f32)
                .collect(),
            levels,
            normals: Vec::with_capacity(copies * n_cont),
            neg_g: Vec::with_capacity(copies * cat_width),
            target_probs: Vec::with_capacity(copies * cat_width),
            target_neg_entropy: Vec::with_capacity(copies),
        };
        for _ in 0..copies {
            for _ in 0..n_cont {
                bank.normals.push(rng.sample(StandardNormal));
            }
            let mut neg_entropy = 0f64;
            for range in layout.group_ranges() {
                let start = bank.neg_g.len();
                let (mut sum, mut e_ln_e) = (0f32, 0f64);
                for _ in range {
                    let e = exp_neg_gumbel_f32(rng.random::<f32>());
                    let neg_g = e.ln();
                    bank.neg_g.push(neg_g);
                    bank.target_probs.push(e);
                    sum += e;
                    e_ln_e += f64::from(e * neg_g);
                }
                neg_entropy += e_ln_e / f64::from(sum) - f64::from(sum).ln();
                let inv = 1.0 / sum;
                for p in &mut bank.target_probs[start..] {
                    *p *= inv;
                }
            }
            bank.target_neg_entropy.push(neg_entropy);
        }
        bank
    }

    /// Number of noisy copies of a row (levels × draws).
    pub fn copies(&self) -> usize {
        self.levels.len()
    }

    /// Draws per level.
    pub fn draws(&self) -> usize {
        self.draws
    }

    /// The level of each copy.
    pub fn levels(&self) -> &[usize] {
        &self.levels
    }

    /// The KL targets `softmax(-g)`, copies × categorical width.
    pub fn target_probs(&self) -> &[f32] {
        &self.target_probs
    }

    /// `Σ p ln p` of each copy's targets (the constant part of the KL).
    pub fn target_neg_entropy(&self) -> &[f64] {
        &self.target_neg_entropy
    }

    /// The continuous score target of copy `copy`: `-n/σ`, one per continuous feature.
    pub fn continuous_target(&self, copy: usize) -> impl Iterator<Item = f32> + '_ {
        let n_cont = self.layout.continuous();
        let sigma = self.sigmas[copy];
        self.normals[copy * n_cont..(copy + 1) * n_cont]
            .iter()
            .map(move |n| -n / sigma)
    }

    /// Write the noisy copies of one clean row (layout width) into `noisy` (copies × width).
    ///
    /// # Errors
    /// [`NoiseError::LengthMismatch`] for a row or output of the wrong length.
    pub fn perturb(&self, clean: &[f32], noisy: &mut [f32]) -> Result<(), NoiseError> {
        let width = self.layout.width();
        if clean.len() != width {
            return Err(NoiseError::LengthMismatch {
                what: "clean row (layout width)",
                expected: width,
                got: clean.len(),
            });
        }
        if noisy.len() != self.copies() * width {
            return Err(NoiseError::LengthMismatch {
                what: "noisy copies (copies × layout width)",
                expected: self.copies() * width,
                got: noisy.len(),
            });
        }
        let (n_cont, cat_width) = (self.layout.continuous(), self.layout.categorical_width());
        for (c, out) in noisy.chunks_exact_mut(width).enumerate() {
            let sigma = self.sigmas[c];
            let normals = &self.normals[c * n_cont..(c + 1) * n_cont];
            for ((o, &x), &n) in out[..n_cont].iter_mut().zip(&clean[..n_cont]).zip(normals) {
                *o = x + sigma * n;
            }
            let inv_tau = 1.0 / self.temperatures[c];
            let neg_g = &self.neg_g[c * cat_width..(c + 1) * cat_width];
            for range in self.layout.group_ranges() {
                let g = &neg_g[range.start - n_cont..range.end - n_cont];
                let z = &mut out[range.clone()];
                let mut max = f32::NEG_INFINITY;
                for ((z, &x), &ng) in z.iter_mut().zip(&clean[range.clone()]).zip(g) {
                    *z = (x - ng) * inv_tau;
                    max = max.max(*z);
                }
                let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
                for v in z.iter_mut() {
                    *v -= lse;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{perturb_batch, NoiseRng, Perturbation, LOG_ONE_HOT_COLD};
    use rand::SeedableRng;

    #[test]
    fn every_row_gets_what_perturb_batch_gives_with_a_fresh_generator() {
        let layout = FeatureLayout::new(2, vec![2, 4, 3]).unwrap();
        let schedule = NoiseSchedule::default();
        let bank = NoiseBank::new(&layout, &schedule, 3, &mut NoiseRng::seed_from_u64(9));
        let cold = LOG_ONE_HOT_COLD;
        let rows = [
            [0.3, -1.0, 0.0, cold, cold, cold, 0.0, cold, cold, cold, 0.0],
            [2.0, 0.5, cold, 0.0, 0.0, cold, cold, cold, 0.0, cold, cold],
        ];
        for row in rows {
            let mut noisy = vec![0.0; bank.copies() * layout.width()];
            bank.perturb(&row, &mut noisy).unwrap();
            let repeated: Vec<f32> = (0..bank.copies()).flat_map(|_| row).collect();
            let mut out = Perturbation::default();
            perturb_batch(
                &repeated,
                &layout,
                &schedule,
                bank.levels(),
                &mut NoiseRng::seed_from_u64(9),
                &mut out,
            )
            .unwrap();
            assert_eq!(noisy, out.noisy);
            assert_eq!(bank.target_probs(), &out.target_probs[..]);
            assert_eq!(bank.target_neg_entropy(), &out.target_neg_entropy[..]);
            let targets: Vec<f32> = (0..bank.copies())
                .flat_map(|c| bank.continuous_target(c).collect::<Vec<_>>())
                .collect();
            assert_eq!(targets, out.continuous_target);
        }
    }

    #[test]
    fn wrong_lengths_are_refused() {
        let layout = FeatureLayout::categorical(vec![2]).unwrap();
        let bank = NoiseBank::new(
            &layout,
            &NoiseSchedule::default(),
            1,
            &mut NoiseRng::seed_from_u64(0),
        );
        let mut out = vec![0.0; bank.copies() * 2];
        assert!(bank.perturb(&[0.0], &mut out).is_err());
        assert!(bank.perturb(&[0.0, 0.0], &mut out[1..]).is_err());
    }
}
