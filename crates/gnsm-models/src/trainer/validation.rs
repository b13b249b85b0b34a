//! Validation: the EMA weights on the held-out rows, fixed noise, every level.

use std::io::Write;

use super::*;

impl Trainer {
    /// The validation loss of `model` on `val` rows (dense or compact, as for
    /// [`Trainer::fit`]): every level with its own fixed-seed noise (so evaluations are
    /// comparable), averaged over levels.
    ///
    /// # Errors
    /// As [`Trainer::fit`].
    pub fn validation_loss<'a>(
        &self,
        model: &TabResNetModel,
        val: impl Into<Rows<'a>>,
    ) -> Result<f64, ModelError> {
        let val = val.into();
        let layout = model.layout();
        let width = layout.width();
        let mut rows = val.count(layout, "validation rows")?;
        if let Some(cap) = self.config.val_rows {
            rows = rows.min(cap);
        }
        let device = model.device();
        let mut noise = Perturbation::default();
        let mut clean = Vec::new();
        let mut grad = Vec::new();
        let mut total = 0.0;
        for level in 0..self.schedule.levels() {
            let mut rng =
                NoiseRng::seed_from_u64(self.config.seed ^ 0x7a11_da7e_0000_0000 ^ level as u64);
            let mut level_sum = 0.0;
            for start in (0..rows).step_by(self.config.eval_batch) {
                let n = self.config.eval_batch.min(rows - start);
                let levels = vec![level; n];
                clean.resize(n * width, 0.0);
                val.copy_rows(start, n, &mut clean)?;
                perturb_batch(
                    &clean,
                    layout,
                    &self.schedule,
                    &levels,
                    &mut rng,
                    &mut noise,
                )?;
                let loss = if device.is_cpu() {
                    // The host loss: one pass over every group instead of candle ops per
                    // group (the gradient it also writes is not used).
                    let mut out = vec![0f32; n * width];
                    model.infer_levels(&noise.noisy, &[level], |_, first, o| {
                        out[first * width..first * width + o.len()].copy_from_slice(o);
                    })?;
                    grad.resize(out.len(), 0.0);
                    let objective = self.loss.config().objective;
                    let (categorical, continuous) =
                        gnsm_losses::loss_and_grad(layout, objective, &noise, &out, &mut grad)?;
                    categorical + continuous
                } else {
                    let x = Tensor::from_slice(&noise.noisy, (n, width), device)?;
                    let l = Tensor::from_vec(vec![level as u32; n], n, device)?;
                    let out = model.infer(&x, &l)?;
                    let targets = self.loss.targets(&noise, DType::F32)?;
                    f64::from(
                        self.loss
                            .forward(&out, &targets)?
                            .total
                            .to_scalar::<f32>()?,
                    )
                };
                level_sum += loss * n as f64;
            }
            total += level_sum / rows as f64;
        }
        Ok(total / self.schedule.levels() as f64)
    }

    pub(super) fn validate(
        &mut self,
        val: Rows<'_>,
        on_event: &mut dyn FnMut(&TrainEvent),
        elapsed: f64,
        log: &mut Option<std::fs::File>,
    ) -> Result<bool, ModelError> {
        let val_loss = self.validation_loss(&self.ema, val)?;
        let train_loss = if self.progress.loss_count > 0 {
            self.progress.loss_sum / self.progress.loss_count as f64
        } else {
            f64::NAN
        };
        self.progress.loss_sum = 0.0;
        self.progress.loss_count = 0;
        let lr = self.config.lr_at(self.progress.step.saturating_sub(1));
        self.progress.curve.push(CurvePoint {
            step: self.progress.step,
            train_loss,
            val_loss,
            lr,
        });
        let improved = val_loss < self.progress.best_val_loss - self.config.min_delta;
        if improved {
            self.progress.best_val_loss = val_loss;
            self.progress.best_step = self.progress.step;
            self.best.copy_from(&self.ema)?;
        }
        if let (Some(file), Some(path)) = (log.as_mut(), &self.run.log_csv) {
            writeln!(
                file,
                "{},{train_loss},{val_loss},{lr},{elapsed:.3}",
                self.progress.step
            )
            .map_err(|source| ModelError::Io {
                path: path.display().to_string(),
                source,
            })?;
        }
        on_event(&TrainEvent::Validation {
            step: self.progress.step,
            train_loss,
            val_loss,
            improved,
        });
        Ok(improved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host validation loss against the candle loss it replaced on the CPU, on the same
    /// fixed-seed noise: the same number up to float reassociation.
    #[test]
    fn host_validation_loss_matches_the_candle_loss() {
        let layout = FeatureLayout::new(2, vec![3, 4, 2]).unwrap();
        let net = TabResNetConfig {
            width: 16,
            depth: 2,
            embedding_size: 8,
            seed: 5,
            ..Default::default()
        };
        let config = TrainerConfig {
            eval_batch: 7,
            ..Default::default()
        };
        let trainer = Trainer::new(net.clone(), layout.clone(), config, &Device::Cpu).unwrap();
        let model = TabResNetModel::new(net, layout.clone(), &Device::Cpu).unwrap();
        let c = gnsm_noise::LOG_ONE_HOT_COLD;
        let row = |i: usize| -> Vec<f32> {
            let mut r = vec![(i as f32 * 0.7).sin(), (i as f32 * 0.3).cos()];
            for (g, k) in [3usize, 4, 2].into_iter().enumerate() {
                let hot = (i + g) % k;
                r.extend((0..k).map(|j| if j == hot { 0.0 } else { c }));
            }
            r
        };
        let val: Vec<f32> = (0..20).flat_map(row).collect();
        let host = trainer.validation_loss(&model, val.as_slice()).unwrap();

        let width = layout.width();
        let mut total = 0.0;
        for level in 0..trainer.schedule.levels() {
            let mut rng =
                NoiseRng::seed_from_u64(trainer.config.seed ^ 0x7a11_da7e_0000_0000 ^ level as u64);
            let mut level_sum = 0.0;
            for start in (0..20).step_by(7) {
                let n = 7.min(20 - start);
                let mut noise = Perturbation::default();
                let clean = &val[start * width..(start + n) * width];
                let levels = vec![level; n];
                perturb_batch(
                    clean,
                    &layout,
                    &trainer.schedule,
                    &levels,
                    &mut rng,
                    &mut noise,
                )
                .unwrap();
                let x = Tensor::from_slice(&noise.noisy, (n, width), &Device::Cpu).unwrap();
                let l = Tensor::from_vec(vec![level as u32; n], n, &Device::Cpu).unwrap();
                let out = model.forward(&x, &l).unwrap();
                let targets = trainer.loss.targets(&noise, DType::F32).unwrap();
                let loss = trainer.loss.forward(&out, &targets).unwrap().total;
                level_sum += f64::from(loss.to_scalar::<f32>().unwrap()) * n as f64;
            }
            total += level_sum / 20.0;
        }
        let candle = total / trainer.schedule.levels() as f64;
        approx::assert_relative_eq!(host, candle, max_relative = 1e-5);
    }
}
