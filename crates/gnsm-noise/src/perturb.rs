use rand::Rng;
use rand_distr::StandardNormal;

use crate::concrete::exp_neg_gumbel_f32;
use crate::{FeatureLayout, NoiseError, NoiseSchedule};

/// A perturbed batch and its score-matching targets, row-major f32, as produced by
/// [`perturb_batch`]. The buffers are reused between calls, so a training loop allocates
/// them once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Perturbation {
    /// Number of rows B.
    pub rows: usize,
    /// The noisy input `x̃`, B × width: continuous `x + σ·n`, then each categorical group
    /// as the ExpConcrete sample `z - logsumexp(z)`, `z = (log x + g)/τ` (paper eq. 3).
    pub noisy: Vec<f32>,
    /// The categorical "logit noise" `ε = log x - τ·x̃`, B × categorical width. The
    /// score target of group d is `-τ + τ·K_d·softmax(ε_d)`; the KL objective matches
    /// `softmax(ε_d)`.
    pub logit_noise: Vec<f32>,
    /// `softmax(ε)` per group, B × categorical width: the KL objective's target. Since
    /// `ε = -g + const` within a group, it equals `softmax(-g)` and comes free with the
    /// Gumbel draws (`e^{-g} = -ln(u + 1e-20) + 1e-20`), more accurately than from `ε` in f32.
    pub target_probs: Vec<f32>,
    /// `Σ_groups Σ_k p_k ln p_k` per row, for `p = softmax(ε)`: the constant part of the KL
    /// objective (B values, computed in f64).
    pub target_neg_entropy: Vec<f64>,
    /// The continuous score target `-(x̃ - x)/σ² = -n/σ`, B × continuous.
    pub continuous_target: Vec<f32>,
    /// τ of each row.
    pub temperatures: Vec<f32>,
    /// σ of each row.
    pub sigmas: Vec<f32>,
    /// The level index of each row.
    pub levels: Vec<usize>,
}

/// Perturb a batch of clean encoded rows with the noise of the given levels and compute the
/// targets.
///
/// `clean` is B × `layout.width()` row-major: the continuous block (standardised), then each
/// categorical group as `log(clip(one_hot, 1e-5, 1))` (any finite log-probabilities work).
/// `levels[b]` is the noise level of row b. Draws come from `rng` in a fixed order (row by
/// row; continuous normals, then one uniform per categorical entry), so the same seed gives
/// the same bytes.
///
/// # Errors
/// [`NoiseError::LengthMismatch`] when `clean` is not `levels.len()` rows of the layout's
/// width, and [`NoiseError::LevelOutOfRange`] for a level past the schedule. Nothing is
/// drawn from `rng` on error.
pub fn perturb_batch<R: Rng + ?Sized>(
    clean: &[f32],
    layout: &FeatureLayout,
    schedule: &NoiseSchedule,
    levels: &[usize],
    rng: &mut R,
    out: &mut Perturbation,
) -> Result<(), NoiseError> {
    let rows = levels.len();
    let width = layout.width();
    let n_cont = layout.continuous();
    let cat_width = layout.categorical_width();
    if clean.len() != rows * width {
        return Err(NoiseError::LengthMismatch {
            what: "clean batch (rows × layout width)",
            expected: rows * width,
            got: clean.len(),
        });
    }
    if let Some(&level) = levels.iter().find(|&&l| l >= schedule.levels()) {
        return Err(NoiseError::LevelOutOfRange {
            level,
            levels: schedule.levels(),
        });
    }

    out.rows = rows;
    resize(&mut out.noisy, rows * width);
    resize(&mut out.logit_noise, rows * cat_width);
    resize(&mut out.target_probs, rows * cat_width);
    out.target_neg_entropy.clear();
    resize(&mut out.continuous_target, rows * n_cont);
    out.levels.clear();
    out.levels.extend_from_slice(levels);
    out.temperatures.clear();
    out.sigmas.clear();

    // The draws, serially in the documented order: the raw normals go into
    // `continuous_target` and the raw uniforms into `logit_noise`, which the per-row
    // transform below then overwrites with the targets.
    for b in 0..rows {
        for n in &mut out.continuous_target[b * n_cont..(b + 1) * n_cont] {
            *n = rng.sample(StandardNormal);
        }
        for u in &mut out.logit_noise[b * cat_width..(b + 1) * cat_width] {
            *u = rng.random::<f32>();
        }
    }
    for &level in levels {
        out.temperatures.push(schedule.temperatures()[level] as f32);
        out.sigmas.push(schedule.sigmas()[level] as f32);
    }
    out.target_neg_entropy.resize(rows, 0.0);
    // The transform depends on each row alone, so rows run in parallel on large batches
    // (three logarithms or exponentials per one-hot entry: a fifth of a 2,000-column
    // training step) with the same bits as serially.
    let Perturbation {
        noisy,
        logit_noise,
        target_probs,
        target_neg_entropy,
        continuous_target,
        temperatures,
        sigmas,
        ..
    } = out;
    let (temperatures, sigmas) = (&*temperatures, &*sigmas);
    // Row b's buffers and where its `Σ p ln p` goes.
    let rows_out = row_slices(noisy, width, rows)
        .zip(row_slices(logit_noise, cat_width, rows))
        .zip(row_slices(target_probs, cat_width, rows))
        .zip(row_slices(continuous_target, n_cont, rows))
        .zip(target_neg_entropy.iter_mut())
        .map(|((((noisy, eps), probs), cont), neg_entropy)| {
            let row = RowBuffers {
                noisy,
                eps,
                probs,
                cont,
            };
            (row, neg_entropy)
        })
        .enumerate();
    let transform = |(b, (row, neg_entropy)): (usize, (RowBuffers<'_>, &mut f64))| {
        let x = &clean[b * width..(b + 1) * width];
        *neg_entropy = perturb_row(x, layout, (temperatures[b], sigmas[b]), row);
    };
    if rows * width < PARALLEL_VALUES {
        rows_out.for_each(transform);
    } else {
        use rayon::prelude::*;
        let rows_per_task = (PARALLEL_VALUES / 16 / width.max(1)).max(1);
        let work: Vec<_> = rows_out.collect();
        work.into_par_iter()
            .with_min_len(rows_per_task)
            .for_each(transform);
    }
    Ok(())
}

/// Batches of at least this many values (rows × width) perturb their rows in parallel.
const PARALLEL_VALUES: usize = 1 << 16;

/// `rows` consecutive slices of `len` values of `buffer` (empty slices when `len` is 0).
fn row_slices(
    buffer: &mut [f32],
    len: usize,
    rows: usize,
) -> Box<dyn Iterator<Item = &mut [f32]> + '_> {
    if len == 0 {
        Box::new(std::iter::repeat_with(|| &mut [][..]).take(rows))
    } else {
        Box::new(buffer.chunks_mut(len))
    }
}

/// One row's slices of a [`Perturbation`]: on entry `eps` holds the row's uniforms and
/// `cont` its standard normals.
struct RowBuffers<'a> {
    noisy: &'a mut [f32],
    eps: &'a mut [f32],
    probs: &'a mut [f32],
    cont: &'a mut [f32],
}

/// Perturb one clean row `x` at temperature τ and scale σ from its draws; returns the row's
/// `Σ p ln p`.
fn perturb_row(
    x: &[f32],
    layout: &FeatureLayout,
    (tau, sigma): (f32, f32),
    row: RowBuffers<'_>,
) -> f64 {
    let RowBuffers {
        noisy,
        eps,
        probs,
        cont,
    } = row;
    let n_cont = layout.continuous();
    for ((nz, t), &xc) in noisy[..n_cont].iter_mut().zip(cont).zip(&x[..n_cont]) {
        let n = *t;
        *nz = xc + sigma * n;
        *t = -n / sigma;
    }
    let inv_tau = 1.0 / tau;
    let mut neg_entropy = 0f64;
    for range in layout.group_ranges() {
        let xg = &x[range.clone()];
        let zg = &mut noisy[range.clone()];
        let cat = range.start - n_cont..range.end - n_cont;
        let pg = &mut probs[cat.clone()];
        let eg = &mut eps[cat];
        let mut max = f32::NEG_INFINITY;
        let mut exp_neg_g_sum = 0f32;
        let mut e_ln_e_sum = 0f64;
        for (((z, p), &xv), &u) in zg.iter_mut().zip(pg.iter_mut()).zip(xg).zip(eg.iter()) {
            // e^{-g} = -ln(u + 1e-20) + 1e-20, then -g = ln e^{-g}: the reference's
            // guarded Gumbel transform.
            let exp_neg_g = exp_neg_gumbel_f32(u);
            let neg_g = exp_neg_g.ln();
            *p = exp_neg_g;
            exp_neg_g_sum += exp_neg_g;
            e_ln_e_sum += f64::from(exp_neg_g * neg_g);
            *z = (xv - neg_g) * inv_tau;
            max = max.max(*z);
        }
        // p = e/S, so Σ p ln p = (Σ e ln e)/S - ln S.
        let inv_sum = 1.0 / exp_neg_g_sum;
        neg_entropy += e_ln_e_sum / f64::from(exp_neg_g_sum) - f64::from(exp_neg_g_sum).ln();
        for p in pg.iter_mut() {
            *p *= inv_sum;
        }
        let sum: f32 = zg.iter().map(|z| (z - max).exp()).sum();
        let lse = max + sum.ln();
        for ((z, e), &xv) in zg.iter_mut().zip(eg).zip(xg) {
            *z -= lse;
            *e = xv - tau * *z;
        }
    }
    neg_entropy
}

fn resize(buffer: &mut Vec<f32>, len: usize) {
    buffer.clear();
    buffer.resize(len, 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{concrete_score, ExpConcrete, NoiseRng, LOG_ONE_HOT_COLD};
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest, ProptestConfig};
    use rand::SeedableRng;

    fn random_clean(layout: &FeatureLayout, rows: usize, rng: &mut NoiseRng) -> Vec<f32> {
        let mut clean = Vec::with_capacity(rows * layout.width());
        for _ in 0..rows {
            for _ in 0..layout.continuous() {
                clean.push(rng.sample::<f32, _>(StandardNormal));
            }
            for &k in layout.groups() {
                let hot = rng.random_range(0..k);
                clean.extend((0..k).map(|j| if j == hot { 0.0 } else { LOG_ONE_HOT_COLD }));
            }
        }
        clean
    }

    fn mixed() -> FeatureLayout {
        FeatureLayout::new(4, vec![2, 5, 17]).unwrap()
    }

    #[test]
    fn same_seed_same_bytes() {
        let layout = mixed();
        let schedule = NoiseSchedule::default();
        let mut rng = NoiseRng::seed_from_u64(5);
        let clean = random_clean(&layout, 64, &mut rng);
        let levels: Vec<usize> = (0..64).map(|i| i % 20).collect();
        let run = |seed| {
            let mut out = Perturbation::default();
            let mut rng = NoiseRng::seed_from_u64(seed);
            perturb_batch(&clean, &layout, &schedule, &levels, &mut rng, &mut out).unwrap();
            out
        };
        let (a, b, c) = (run(11), run(11), run(12));
        let bits = |p: &Perturbation| {
            p.noisy
                .iter()
                .chain(&p.logit_noise)
                .chain(&p.continuous_target)
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&a), bits(&b));
        assert_ne!(bits(&a), bits(&c));
    }

    #[test]
    fn a_large_batch_in_parallel_equals_its_rows_one_at_a_time() {
        // 300 rows × 260 columns is past PARALLEL_VALUES (rows run in parallel); one row at
        // a time runs the serial path, drawing the same numbers in the same order.
        let layout = FeatureLayout::new(3, vec![7; 37]).unwrap();
        assert!(300 * layout.width() >= PARALLEL_VALUES);
        let schedule = NoiseSchedule::default();
        let mut rng = NoiseRng::seed_from_u64(9);
        let clean = random_clean(&layout, 300, &mut rng);
        let levels: Vec<usize> = (0..300).map(|i| (i * 7) % 20).collect();
        let mut batch = Perturbation::default();
        let mut rng = NoiseRng::seed_from_u64(21);
        perturb_batch(&clean, &layout, &schedule, &levels, &mut rng, &mut batch).unwrap();
        let mut rng = NoiseRng::seed_from_u64(21);
        let (mut one, w) = (Perturbation::default(), layout.width());
        let mut rows = Vec::new();
        for b in 0..300 {
            let x = &clean[b * w..(b + 1) * w];
            perturb_batch(x, &layout, &schedule, &levels[b..=b], &mut rng, &mut one).unwrap();
            rows.push(one.clone());
        }
        let join = |f: fn(&Perturbation) -> &Vec<f32>| -> Vec<u32> {
            rows.iter()
                .flat_map(|p| f(p).iter().map(|v| v.to_bits()))
                .collect()
        };
        let bits = |v: &Vec<f32>| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&batch.noisy), join(|p| &p.noisy));
        assert_eq!(bits(&batch.logit_noise), join(|p| &p.logit_noise));
        assert_eq!(bits(&batch.target_probs), join(|p| &p.target_probs));
        assert_eq!(
            bits(&batch.continuous_target),
            join(|p| &p.continuous_target)
        );
        let entropy: Vec<f64> = rows.iter().map(|p| p.target_neg_entropy[0]).collect();
        assert_eq!(batch.target_neg_entropy, entropy);
        assert_eq!(batch.temperatures.len(), 300);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn groups_are_log_probabilities_and_targets_consistent(
            groups in proptest::collection::vec(2usize..30, 1..6),
            n_cont in 0usize..4,
            seed in any::<u64>(),
        ) {
            let layout = FeatureLayout::new(n_cont, groups).unwrap();
            let schedule = NoiseSchedule::default();
            let mut rng = NoiseRng::seed_from_u64(seed);
            let rows = 8;
            let clean = random_clean(&layout, rows, &mut rng);
            let levels: Vec<usize> = (0..rows).map(|_| rng.random_range(0..20)).collect();
            let mut out = Perturbation::default();
            perturb_batch(&clean, &layout, &schedule, &levels, &mut rng, &mut out).unwrap();
            let width = layout.width();
            let cw = layout.categorical_width();
            for b in 0..rows {
                let p = &out.target_probs[b * cw..(b + 1) * cw];
                let h: f64 = p.iter().filter(|&&v| v > 0.0).map(|&v| f64::from(v) * f64::from(v).ln()).sum();
                prop_assert!((h - out.target_neg_entropy[b]).abs() < 1e-4 * (1.0 + h.abs()), "{} vs {}", h, out.target_neg_entropy[b]);
                let tau = out.temperatures[b];
                let sigma = out.sigmas[b];
                prop_assert_eq!(f64::from(tau), (schedule.temperature(levels[b]).unwrap() as f32) as f64);
                for c in 0..n_cont {
                    // x̃ - x = σ n and target = -n/σ  ⇒  target·σ² = -(x̃ - x).
                    let diff = out.noisy[b * width + c] - clean[b * width + c];
                    let t = out.continuous_target[b * n_cont + c];
                    prop_assert!((t * sigma * sigma + diff).abs() < 1e-4 * (1.0 + diff.abs()));
                }
                for range in layout.group_ranges() {
                    let noisy = &out.noisy[b * width + range.start..b * width + range.end];
                    let total: f64 = noisy.iter().map(|&v| f64::from(v).exp()).sum();
                    prop_assert!((total - 1.0).abs() < 1e-5, "exp(x̃) sums to {}", total);
                    // ε = log x - τ x̃, recomputed here.
                    let eps = &out.logit_noise[b * cw + range.start - n_cont..b * cw + range.end - n_cont];
                    for ((e, &z), &xv) in eps.iter().zip(noisy).zip(&clean[b * width + range.start..b * width + range.end]) {
                        prop_assert!((e - (xv - tau * z)).abs() < 1e-4 * (1.0 + e.abs()));
                    }
                    // The free target probabilities equal softmax(ε).
                    let probs = &out.target_probs[b * cw + range.start - n_cont..b * cw + range.end - n_cont];
                    let max_e = eps.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let total_e: f64 = eps.iter().map(|&e| f64::from(e - max_e).exp()).sum();
                    for (&p, &e) in probs.iter().zip(eps) {
                        let expected = f64::from(e - max_e).exp() / total_e;
                        prop_assert!((f64::from(p) - expected).abs() < 1e-4, "{} vs {}", p, expected);
                    }
                    // The target score from ε equals the f64 closed form of the noise at x̃.
                    let mut target = vec![0.0f32; eps.len()];
                    concrete_score(eps, tau, &mut target).unwrap();
                    let log_alpha: Vec<f64> = clean[b * width + range.start..b * width + range.end].iter().map(|&v| f64::from(v)).collect();
                    let dist = ExpConcrete::new(log_alpha, f64::from(tau)).unwrap();
                    let x64: Vec<f64> = noisy.iter().map(|&v| f64::from(v)).collect();
                    let mut exact = vec![0.0; eps.len()];
                    dist.score(&x64, &mut exact).unwrap();
                    for (t, e) in target.iter().zip(&exact) {
                        prop_assert!((f64::from(*t) - e).abs() < 2e-3 * f64::from(tau) * eps.len() as f64, "{} vs {}", t, e);
                    }
                }
            }
        }
    }

    #[test]
    fn bad_input_is_an_error_and_draws_nothing() {
        let layout = mixed();
        let schedule = NoiseSchedule::default();
        let mut rng = NoiseRng::seed_from_u64(1);
        let before = rng.clone();
        let mut out = Perturbation::default();
        let clean = vec![0.0; layout.width() * 2];
        assert!(matches!(
            perturb_batch(&clean, &layout, &schedule, &[0], &mut rng, &mut out),
            Err(NoiseError::LengthMismatch { .. })
        ));
        assert!(matches!(
            perturb_batch(&clean, &layout, &schedule, &[0, 20], &mut rng, &mut out),
            Err(NoiseError::LevelOutOfRange {
                level: 20,
                levels: 20
            })
        ));
        assert_eq!(rng, before);
    }

    #[test]
    fn high_noise_flattens_low_noise_keeps_the_hot_entry() {
        // The cold entries start 11.5 below the hot one; dividing by τ = 2 keeps the hot
        // probability near 1, dividing by τ = 20 brings the vector close to uniform.
        let layout = FeatureLayout::categorical(vec![6]).unwrap();
        let schedule = NoiseSchedule::default();
        let mut rng = NoiseRng::seed_from_u64(3);
        let rows = 2000;
        let c = LOG_ONE_HOT_COLD;
        let clean: Vec<f32> = (0..rows).flat_map(|_| [0.0, c, c, c, c, c]).collect();
        let mut out = Perturbation::default();
        let mean_hot =
            |out: &Perturbation| out.noisy.chunks(6).map(|g| g[0].exp()).sum::<f32>() / rows as f32;
        perturb_batch(
            &clean,
            &layout,
            &schedule,
            &vec![19; rows],
            &mut rng,
            &mut out,
        )
        .unwrap();
        let low = mean_hot(&out);
        assert!(low > 0.9, "mean hot probability at τ = 2: {low}");
        perturb_batch(
            &clean,
            &layout,
            &schedule,
            &vec![0; rows],
            &mut rng,
            &mut out,
        )
        .unwrap();
        let high = mean_hot(&out);
        assert!(high < 0.45, "mean hot probability at τ = 20: {high}");
    }
}
