//! Checkpoints: the whole run state in the checksummed envelope, and exact resume.

use super::*;

impl Trainer {
    /// Path of the best-weights file written beside a checkpoint.
    pub fn best_path(checkpoint: &Path) -> PathBuf {
        checkpoint.with_extension("best.safetensors")
    }

    /// Write the full training state (weights, EMA and best weights, AdamW moments, step,
    /// RNG state, batch order, counters, configs and layout) to `path`, atomically; the
    /// best EMA weights also go to [`Trainer::best_path`] as a loadable [`TabResNetModel`].
    ///
    /// # Errors
    /// [`ModelError::Io`] or [`ModelError::Checkpoint`].
    pub fn save_checkpoint(&self, path: &Path, seconds: f64) -> Result<(), ModelError> {
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        for (prefix, model) in [
            ("param/", &self.model),
            ("ema/", &self.ema),
            ("best/", &self.best),
        ] {
            tensors.extend(
                model
                    .tensors()
                    .into_iter()
                    .map(|(k, t)| (format!("{prefix}{k}"), t)),
            );
        }
        tensors.extend(self.optimizer.state());
        let order = Tensor::from_slice(&self.order, self.order.len(), &Device::Cpu)?;
        tensors.push(("sampler/order".into(), order));
        let state = TrainState {
            model: self.model.header(),
            config: self.config.clone(),
            adam_steps: self.optimizer.steps_taken(),
            run: Some(self.run.clone()),
            progress: Progress {
                seconds,
                ..self.progress.clone()
            },
        };
        crate::io::save_envelope(
            path,
            CHECKPOINT_FORMAT,
            CHECKPOINT_VERSION,
            &state,
            &tensors,
        )?;
        self.best.save(Self::best_path(path))
    }

    /// Continue a run from a checkpoint written by [`Trainer::save_checkpoint`], exactly:
    /// training on from here gives the same weights as a run that never stopped. The run
    /// options come back too (it checkpoints and logs where the first run did);
    /// [`Trainer::set_run_options`] changes them.
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] for a file that is not a gnsm checkpoint, from a newer
    /// format, or incomplete; [`ModelError::Io`].
    pub fn resume(path: &Path, device: &Device) -> Result<Self, ModelError> {
        let shown = path.display().to_string();
        let file = crate::io::load_envelope::<TrainState>(
            path,
            CHECKPOINT_FORMAT,
            CHECKPOINT_VERSION,
            device,
        )?;
        let (state, tensors) = (file.header, file.tensors);
        let model =
            TabResNetModel::from_tensors(state.model.clone(), &tensors, "param/", path, device)?;
        let mut trainer = Self::with_model(model, state.config.clone())?;
        let ema =
            TabResNetModel::from_tensors(state.model.clone(), &tensors, "ema/", path, device)?;
        trainer.ema.copy_from(&ema)?;
        let best = TabResNetModel::from_tensors(state.model, &tensors, "best/", path, device)?;
        trainer.best.copy_from(&best)?;
        trainer
            .optimizer
            .restore(&tensors, state.adam_steps, &shown)?;
        trainer.order = tensors
            .get("sampler/order")
            .ok_or_else(|| ModelError::Checkpoint {
                path: shown.clone(),
                reason: "missing sampler/order".into(),
            })?
            .to_vec1::<u32>()?;
        trainer.progress = state.progress;
        // A checkpoint from before run options were saved apart was written by a run that
        // checkpointed to it.
        trainer.run = state.run.unwrap_or_else(|| RunOptions {
            checkpoint: Some(path.to_path_buf()),
            log_csv: None,
        });
        Ok(trainer)
    }
}
