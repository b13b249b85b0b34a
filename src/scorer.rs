//! The one per-level scoring pass: a trained network turned into, for every clean row, level
//! and feature, the squared norm of that feature's score vector. Score norms (MSMA's
//! embedding), anomaly scores and explanations all come from it, so an explanation's shares
//! add up to the very norms its score was computed from.

use candle_core::Tensor;
use gnsm_losses::score_transform;
use gnsm_models::TabResNetModel;
use gnsm_noise::{FeatureLayout, NoiseBank, NoiseSchedule};
use msma::Matrix;
use rayon::prelude::*;

use crate::GnsmError;

/// A trained network with what it needs to score clean rows at every noise level.
pub(crate) struct Scorer {
    model: TabResNetModel,
    schedule: NoiseSchedule,
    batch: usize,
}

/// What one pass computed for a batch of rows.
#[derive(Debug, Clone)]
pub(crate) struct LevelParts {
    rows: usize,
    levels: usize,
    features: usize,
    /// (rows, levels, features), row-major: squared score norm of each feature (a continuous
    /// column or a categorical group) at each level.
    parts: Vec<f64>,
    /// (rows, layout width): the scores at the lowest noise level, when asked for.
    lowest: Option<Vec<f32>>,
}

impl LevelParts {
    /// Number of rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Number of levels.
    pub(crate) fn levels(&self) -> usize {
        self.levels
    }

    /// Number of features (continuous columns, then categorical groups).
    pub(crate) fn features(&self) -> usize {
        self.features
    }

    /// The squared norm of each feature's scores for `row` at `level`.
    pub(crate) fn at(&self, row: usize, level: usize) -> &[f64] {
        let start = (row * self.levels + level) * self.features;
        &self.parts[start..start + self.features]
    }

    /// The (rows, levels) score-norm embedding: at every level, the L2 norm of the full score
    /// vector (the square root of the sum of the features' squared norms).
    pub(crate) fn norms(&self) -> Result<Matrix, GnsmError> {
        let norms = self
            .parts
            .chunks_exact(self.features.max(1))
            .map(|f| f.iter().sum::<f64>().sqrt())
            .collect();
        Ok(Matrix::new(self.rows, self.levels, norms)?)
    }

    /// The scores of `row` at the lowest noise level (when the pass kept them).
    pub(crate) fn lowest(&self, row: usize) -> Option<&[f32]> {
        let width = self.lowest.as_ref()?.len() / self.rows.max(1);
        self.lowest
            .as_ref()
            .map(|s| &s[row * width..(row + 1) * width])
    }
}

impl Scorer {
    /// Wrap a trained model with the schedule it was trained on; `batch` rows go through the
    /// network at a time.
    pub(crate) fn new(
        model: TabResNetModel,
        schedule: NoiseSchedule,
        batch: usize,
    ) -> Result<Self, GnsmError> {
        Ok(Self {
            model,
            schedule,
            batch: batch.max(1),
        })
    }

    /// The network.
    pub(crate) fn model(&self) -> &TabResNetModel {
        &self.model
    }

    /// The feature layout.
    pub(crate) fn layout(&self) -> &FeatureLayout {
        self.model.layout()
    }

    /// The noise schedule.
    pub(crate) fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    /// The score vectors of rows `x` (row-major, layout width) at `level`, on the host.
    fn scores_at(&self, x: &[f32], level: usize) -> Result<Vec<f32>, GnsmError> {
        let layout = self.layout();
        let width = layout.width();
        let tau = self.schedule.temperature(level)? as f32;
        let mut scores = vec![0f32; x.len()];
        let mut failed = None;
        self.model.infer_levels(x, &[level], |_, first, out| {
            let taus = vec![tau; out.len() / width.max(1)];
            let dst = &mut scores[first * width..first * width + out.len()];
            if let Err(e) = score_transform(layout, out, &taus, dst) {
                failed.get_or_insert(e);
            }
        })?;
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(scores),
        }
    }

    /// How many encoded rows `encoded` holds.
    fn rows_of(&self, encoded: &[f32]) -> Result<usize, GnsmError> {
        let width = self.layout().width();
        if encoded.len() % width != 0 {
            return Err(GnsmError::Invalid(format!(
                "encoded rows have {} values, not a multiple of the layout width {width}",
                encoded.len()
            )));
        }
        Ok(encoded.len() / width)
    }

    /// Run the pass over encoded rows (row-major, layout width each), in batches: the
    /// reference's denoising step first when `denoise`, then every level. `keep_lowest` keeps
    /// the lowest level's score vectors (explanations read the expected category from them).
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] for data of the wrong width or a non-finite score, or a candle
    /// error.
    pub(crate) fn pass(
        &self,
        encoded: &[f32],
        denoise: bool,
        keep_lowest: bool,
    ) -> Result<LevelParts, GnsmError> {
        let layout = self.layout();
        let width = layout.width();
        let rows = self.rows_of(encoded)?;
        let levels = self.schedule.levels();
        let n_cont = layout.continuous();
        let features = n_cont + layout.n_groups();
        let ranges: Vec<_> = layout.group_ranges().collect();
        let all_levels: Vec<usize> = (0..levels).collect();
        let taus = (0..levels)
            .map(|l| Ok(self.schedule.temperature(l)? as f32))
            .collect::<Result<Vec<f32>, GnsmError>>()?;
        let mut parts = vec![0.0f64; rows * levels * features];
        let mut lowest = keep_lowest.then(|| vec![0f32; rows * width]);
        for start in (0..rows).step_by(self.batch) {
            let n = self.batch.min(rows - start);
            let mut host = encoded[start * width..(start + n) * width].to_vec();
            if denoise {
                let scores = self.scores_at(&host, levels - 1)?;
                gnsm_noise::denoise_step(layout, &mut host, &scores)?;
            }
            let batch_parts =
                &mut parts[start * levels * features..(start + n) * levels * features];
            let mut batch_lowest = lowest
                .as_mut()
                .map(|l| &mut l[start * width..(start + n) * width]);
            // Every level of the batch's rows, the level-independent work shared; each
            // row's score transform and feature norms in parallel over rows.
            self.model
                .infer_levels(&host, &all_levels, |j, first, out| {
                    let m = out.len() / width;
                    let tile_parts = &mut batch_parts
                        [first * levels * features..(first + m) * levels * features];
                    let keep = batch_lowest
                        .as_deref_mut()
                        .filter(|_| j + 1 == levels)
                        .map(|l| &mut l[first * width..(first + m) * width]);
                    let tau = [taus[j]];
                    let row_parts = |(row_parts, out): (&mut [f64], &[f32]), scores: &mut [f32]| {
                        // The shapes are the layout's: the transform cannot fail.
                        let _ = score_transform(layout, out, &tau, scores);
                        let dst = &mut row_parts[j * features..(j + 1) * features];
                        for (c, &v) in scores[..n_cont].iter().enumerate() {
                            dst[c] = f64::from(v) * f64::from(v);
                        }
                        for (g, range) in ranges.iter().enumerate() {
                            dst[n_cont + g] = scores[range.clone()]
                                .iter()
                                .map(|&v| f64::from(v) * f64::from(v))
                                .sum();
                        }
                    };
                    let rows_in = tile_parts
                        .par_chunks_exact_mut(levels * features)
                        .zip(out.par_chunks_exact(width));
                    match keep {
                        Some(keep) => rows_in
                            .zip(keep.par_chunks_exact_mut(width))
                            .for_each(|(r, scores)| row_parts(r, scores)),
                        None => rows_in
                            .for_each_init(|| vec![0f32; width], |scores, r| row_parts(r, scores)),
                    }
                })?;
        }
        if let Some(i) = parts.iter().position(|v| !v.is_finite()) {
            let row = i / (levels * features);
            return Err(GnsmError::Invalid(format!(
                "the network produced a non-finite score for encoded row {row} at level {}: \
                 the model file or the input is corrupt",
                (i / features) % levels
            )));
        }
        Ok(LevelParts {
            rows,
            levels,
            features,
            parts,
            lowest,
        })
    }

    /// The expected denoising loss of every row, level and feature over the draws of
    /// `bank` (the same draws for every row): per categorical group the KL of the training
    /// objective, `KL(softmax(ε) ‖ softmax(ε_θ(x̃)))`, per continuous feature `½(s − t)²`, each
    /// averaged over the level's draws. `keep_lowest` also keeps the clean rows' scores at
    /// the lowest level (explanations read the expected category from them).
    ///
    /// # Errors
    /// As [`Scorer::pass`].
    pub(crate) fn loss_pass(
        &self,
        encoded: &[f32],
        bank: &NoiseBank,
        keep_lowest: bool,
    ) -> Result<LevelParts, GnsmError> {
        let layout = self.layout();
        let width = layout.width();
        let rows = self.rows_of(encoded)?;
        let levels = self.schedule.levels();
        let n_cont = layout.continuous();
        let cat_width = layout.categorical_width();
        let features = n_cont + layout.n_groups();
        let ranges: Vec<_> = layout.group_ranges().collect();
        let copies = bank.copies();
        let weight = 1.0 / bank.draws().max(1) as f64;
        // Σ p ln p of every copy's group targets, once for all rows.
        let probs = bank.target_probs();
        let group_neg_entropy: Vec<f64> = (0..copies)
            .flat_map(|c| {
                let p = &probs[c * cat_width..(c + 1) * cat_width];
                ranges.iter().map(move |r| {
                    p[r.start - n_cont..r.end - n_cont]
                        .iter()
                        .filter(|&&v| v > 0.0)
                        .map(|&v| f64::from(v) * f64::from(v).ln())
                        .sum::<f64>()
                })
            })
            .collect();
        let targets: Vec<Vec<f32>> = (0..copies)
            .map(|c| bank.continuous_target(c).collect())
            .collect();
        let per_forward = (self.batch / copies).max(1);
        let mut parts = vec![0.0f64; rows * levels * features];
        let mut noisy = Vec::new();
        for start in (0..rows).step_by(per_forward) {
            let n = per_forward.min(rows - start);
            noisy.clear();
            noisy.resize(n * copies * width, 0.0);
            // Rows are independent: perturbed and accumulated in parallel, each in the same
            // order as on one thread (bit-identical scores).
            noisy
                .par_chunks_exact_mut(copies * width)
                .zip(encoded[start * width..(start + n) * width].par_chunks_exact(width))
                .try_for_each(|(out, row)| bank.perturb(row, out))?;
            let device = self.model.device();
            let x = Tensor::from_slice(&noisy, (n * copies, width), device)?;
            let level_ids: Vec<u32> = (0..n)
                .flat_map(|_| bank.levels().iter().map(|&l| l as u32))
                .collect();
            let level_ids = Tensor::from_vec(level_ids, n * copies, device)?;
            let out: Vec<f32> = self.model.infer(&x, &level_ids)?.flatten_all()?.to_vec1()?;
            let row_parts = &mut parts[start * levels * features..(start + n) * levels * features];
            row_parts
                .par_chunks_exact_mut(levels * features)
                .zip(out.par_chunks_exact(copies * width))
                .for_each_init(
                    || (vec![0f32; width], vec![0f32; ranges.len()]),
                    |(shifted, maxes), (row_parts, row_out)| {
                        for (c, o) in row_out.chunks_exact(width).enumerate() {
                            let base = bank.levels()[c] * features;
                            let acc = &mut row_parts[base..base + features];
                            for (f, (&s, &t)) in o[..n_cont].iter().zip(&targets[c]).enumerate() {
                                acc[f] += weight * 0.5 * f64::from(s - t).powi(2);
                            }
                            // Each group's logits minus their maximum, exponentiated in one
                            // vectorised pass over the row (the exponentials were a tenth
                            // of the pass through libm).
                            for (range, max) in ranges.iter().zip(maxes.iter_mut()) {
                                let logits = &o[range.clone()];
                                *max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                                for (e, &v) in shifted[range.clone()].iter_mut().zip(logits) {
                                    *e = v - *max;
                                }
                            }
                            for e in &mut shifted[n_cont..] {
                                *e = gnsm_noise::exp_f32(*e);
                            }
                            let p = &probs[c * cat_width..(c + 1) * cat_width];
                            for (g, range) in ranges.iter().enumerate() {
                                let logits = &o[range.clone()];
                                let sum: f64 =
                                    shifted[range.clone()].iter().map(|&e| f64::from(e)).sum();
                                let lse = f64::from(maxes[g]) + sum.ln();
                                let cross: f64 = logits
                                    .iter()
                                    .zip(&p[range.start - n_cont..range.end - n_cont])
                                    .map(|(&l, &q)| f64::from(q) * (f64::from(l) - lse))
                                    .sum();
                                let kl = group_neg_entropy[c * ranges.len() + g] - cross;
                                acc[n_cont + g] += weight * kl.max(0.0);
                            }
                        }
                    },
                );
        }
        if let Some(i) = parts.iter().position(|v| !v.is_finite()) {
            return Err(GnsmError::Invalid(format!(
                "the network produced a non-finite output for encoded row {}: the model file \
                 or the input is corrupt",
                i / (levels * features)
            )));
        }
        let lowest = if keep_lowest {
            Some(self.scores_at(encoded, levels - 1)?)
        } else {
            None
        };
        Ok(LevelParts {
            rows,
            levels,
            features,
            parts,
            lowest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use gnsm_models::TabResNetConfig;
    use gnsm_noise::ScheduleConfig;

    fn scorer() -> Scorer {
        let layout = FeatureLayout::new(1, vec![3, 2]).unwrap();
        let config = TabResNetConfig {
            width: 16,
            depth: 1,
            embedding_size: 8,
            seed: 3,
            ..Default::default()
        };
        let model = TabResNetModel::new(config, layout, &Device::Cpu).unwrap();
        let schedule = ScheduleConfig::default().build().unwrap();
        Scorer::new(model, schedule, 2).unwrap()
    }

    fn rows() -> Vec<f32> {
        let c = gnsm_noise::LOG_ONE_HOT_COLD;
        vec![
            0.3, 0.0, c, c, c, 0.0, //
            -1.2, c, 0.0, c, 0.0, c, //
            2.0, c, c, 0.0, 0.0, c,
        ]
    }

    #[test]
    fn feature_parts_add_up_to_the_squared_norm_of_the_full_score() {
        let scorer = scorer();
        let x = rows();
        let parts = scorer.pass(&x, false, true).unwrap();
        let norms = parts.norms().unwrap();
        for level in 0..parts.levels() {
            let full = scorer.scores_at(&x, level).unwrap();
            for r in 0..3 {
                let sq: f64 = full[r * 6..(r + 1) * 6]
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum();
                let sum: f64 = parts.at(r, level).iter().sum();
                approx::assert_relative_eq!(sum, sq, max_relative = 1e-12);
                approx::assert_relative_eq!(norms.row(r)[level], sq.sqrt(), max_relative = 1e-12);
                // Continuous column alone, then groups of 3 and 2.
                approx::assert_relative_eq!(
                    parts.at(r, level)[0],
                    f64::from(full[r * 6]).powi(2),
                    max_relative = 1e-12
                );
            }
        }
        assert_eq!(parts.lowest(1).unwrap().len(), 6);
    }

    /// The pass against what it replaced: one `infer` per level and candle's group softmax
    /// scores, the denoising step included.
    #[test]
    fn the_pass_matches_per_level_inference_and_candle_group_scores() {
        use gnsm_losses::{GroupSoftmax, GroupStrategy};
        let scorer = scorer();
        let layout = scorer.layout().clone();
        let groups = GroupSoftmax::new(&layout, GroupStrategy::Narrow, &Device::Cpu).unwrap();
        let candle_scores = |x: &[f32], level: usize| -> Vec<f32> {
            let n = x.len() / 6;
            let t = Tensor::from_slice(x, (n, 6), &Device::Cpu).unwrap();
            let l = Tensor::from_vec(vec![level as u32; n], n, &Device::Cpu).unwrap();
            let out = scorer.model.infer(&t, &l).unwrap();
            let tau = scorer.schedule.temperature(level).unwrap() as f32;
            let taus = Tensor::from_vec(vec![tau; n], n, &Device::Cpu).unwrap();
            groups
                .scores(&out, &taus)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let mut x = rows();
        let parts = scorer.pass(&x, true, true).unwrap();
        let top = scorer.schedule.levels() - 1;
        let top_scores = candle_scores(&x, top);
        gnsm_noise::denoise_step(&layout, &mut x, &top_scores).unwrap();
        for level in 0..parts.levels() {
            let s = candle_scores(&x, level);
            for r in 0..3 {
                let row = &s[r * 6..(r + 1) * 6];
                let expected = [
                    f64::from(row[0]).powi(2),
                    row[1..4].iter().map(|&v| f64::from(v).powi(2)).sum(),
                    row[4..6].iter().map(|&v| f64::from(v).powi(2)).sum(),
                ];
                for (&got, want) in parts.at(r, level).iter().zip(expected) {
                    approx::assert_relative_eq!(got, want, max_relative = 1e-5, epsilon = 1e-9);
                }
                if level == top {
                    for (&got, &want) in parts.lowest(r).unwrap().iter().zip(row) {
                        approx::assert_relative_eq!(got, want, max_relative = 1e-5, epsilon = 1e-6);
                    }
                }
            }
        }
    }

    #[test]
    fn batching_does_not_change_the_pass() {
        let scorer = scorer();
        let x = rows();
        let whole = Scorer::new(
            scorer.model.duplicate().unwrap(),
            scorer.schedule.clone(),
            64,
        )
        .unwrap()
        .pass(&x, true, false)
        .unwrap();
        let batched = scorer.pass(&x, true, false).unwrap();
        assert_eq!(whole.parts, batched.parts);
    }

    #[test]
    fn the_loss_pass_matches_the_training_objective_and_ignores_batching() {
        use gnsm_noise::NoiseRng;
        use rand::SeedableRng;
        let scorer = scorer();
        let x = rows();
        let bank = NoiseBank::new(
            scorer.layout(),
            scorer.schedule(),
            2,
            &mut NoiseRng::seed_from_u64(4),
        );
        let parts = scorer.loss_pass(&x, &bank, false).unwrap();
        // Row by row gives the same numbers: a row's loss does not depend on its batch.
        for r in 0..3 {
            let alone = scorer
                .loss_pass(&x[r * 6..(r + 1) * 6], &bank, false)
                .unwrap();
            for l in 0..parts.levels() {
                assert_eq!(alone.at(0, l), parts.at(r, l));
            }
        }
        // The KL and DSM terms computed by hand from the network output of each copy.
        let row = &x[6..12];
        let mut noisy = vec![0.0; bank.copies() * 6];
        bank.perturb(row, &mut noisy).unwrap();
        let c = 5; // level 2, draw 1
        let level = bank.levels()[c];
        let t = Tensor::from_slice(&noisy[c * 6..(c + 1) * 6], (1, 6), &Device::Cpu).unwrap();
        let lv = Tensor::new(&[level as u32], &Device::Cpu).unwrap();
        let out: Vec<f32> = scorer
            .model
            .infer(&t, &lv)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let probs = &bank.target_probs()[c * 5..(c + 1) * 5];
        let kl = |logits: &[f32], p: &[f32]| -> f64 {
            let lse = logits.iter().map(|&v| f64::from(v).exp()).sum::<f64>().ln();
            p.iter()
                .zip(logits)
                .map(|(&q, &l)| f64::from(q) * (f64::from(q).ln() - (f64::from(l) - lse)))
                .sum()
        };
        let expected_g0 = kl(&out[1..4], &probs[0..3]);
        let target = bank.continuous_target(c).next().unwrap();
        let expected_cont = 0.5 * f64::from(out[0] - target).powi(2);
        // Copies 4 and 5 are level 2's two draws.
        let mut both_g0 = expected_g0;
        let mut both_cont = expected_cont;
        {
            let c = 4;
            let t = Tensor::from_slice(&noisy[c * 6..(c + 1) * 6], (1, 6), &Device::Cpu).unwrap();
            let out: Vec<f32> = scorer
                .model
                .infer(&t, &lv)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            both_g0 += kl(&out[1..4], &bank.target_probs()[c * 5..c * 5 + 3]);
            both_cont +=
                0.5 * f64::from(out[0] - bank.continuous_target(c).next().unwrap()).powi(2);
        }
        approx::assert_relative_eq!(parts.at(1, level)[1], both_g0 / 2.0, max_relative = 1e-4);
        approx::assert_relative_eq!(parts.at(1, level)[0], both_cont / 2.0, max_relative = 1e-4);
    }

    #[test]
    fn wrong_widths_are_refused() {
        let err = scorer().pass(&[0.0; 7], false, false).unwrap_err();
        assert!(err.to_string().contains("layout width 6"), "{err}");
    }
}
