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
        model: &ScoreModel,
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
                let x = Tensor::from_slice(&noise.noisy, (n, width), device)?;
                let l = Tensor::from_vec(vec![level as u32; n], n, device)?;
                let out = model.infer(&x, &l)?;
                let targets = self.loss.targets(&noise, DType::F32)?;
                let loss = f64::from(
                    self.loss
                        .forward(&out, &targets)?
                        .total
                        .to_scalar::<f32>()?,
                );
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
        if let (Some(file), Some(path)) = (log.as_mut(), &self.config.log_csv) {
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
