//! What defines a GNSM fit: [`GnsmConfig`] with its presets, strict reading from JSON, and
//! [`TrainOverrides`], the few settings the command line and the examples change.

use gnsm_data::SchemaOptions;
use gnsm_models::{LrSchedule, TabResNetConfig, TrainerConfig};
use msma::MsmaParams;
use serde::{Deserialize, Serialize};

use crate::density::ScoreMethod;
use crate::GnsmError;

/// Everything that defines a GNSM fit.
///
/// [`GnsmConfig::default`] is the detector this library recommends, the same for every
/// table: a width-256, 4-block tab-ResNet trained for 4000 steps of 256 rows (at least 24
/// passes over the training rows, at most 8 minutes, validated on at most 50,000 rows), scored by its expected denoising loss
/// with the frequency prior ([`ScoreMethod::DenoisingLoss`]). [`GnsmConfig::paper`] is the
/// reference pipeline (MSMA on score norms) as the Table 2 reproduction runs it. A
/// configuration read from JSON ([`GnsmConfig::from_json`]) takes the defaults for every key
/// it leaves out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GnsmConfig {
    /// The score network.
    pub network: TabResNetConfig,
    /// Training (noise levels, objective, optimizer, budget).
    pub trainer: TrainerConfig,
    /// How a record's anomaly score comes from the trained network.
    pub score: ScoreMethod,
    /// The mixture on score norms, when `score` is [`ScoreMethod::Msma`].
    pub msma: MsmaParams,
    /// How columns are read.
    pub schema: SchemaOptions,
    /// Train for at least this many passes over the training rows: the step budget is
    /// raised to `min_epochs × rows / batch` when that is more than `trainer.steps` (within
    /// `trainer.max_minutes`), so a large table is not trained on a fraction of its rows.
    /// 0 switches it off.
    pub min_epochs: f64,
    /// Share of the fitting rows held out for validation (early stopping, best weights).
    pub val_fraction: f64,
    /// Share of the inlier rows [`Gnsm::fit`](crate::Gnsm::fit) holds out before anything
    /// is fitted, to calibrate p-values and decisions ([`crate::Calibration`]); 0 switches
    /// calibration off. [`Gnsm::fit_rows`](crate::Gnsm::fit_rows) (the paper protocol)
    /// takes its rows as given and holds none out.
    pub calibration_fraction: f64,
    /// Rows per batch when computing score norms (bounds memory when scoring).
    pub score_batch: usize,
    /// Train the network on a seeded sample of at most this many training rows (`None`:
    /// all of them); the scoring stage (frequency prior or mixture), the validation rows
    /// and the calibration still see every row they would without it. For tables too large
    /// to train on in full within the time budget.
    pub train_sample: Option<usize>,
    /// Seed of the train/validation split (see [`GnsmConfig::with_seed`]).
    pub seed: u64,
    /// Take one unit score step at the lowest noise level before the score norms
    /// ([`gnsm_noise::denoise_step`]), as the reference scorer does for every tabular
    /// dataset (`msma.denoise = True`).
    pub denoise: bool,
}

impl Default for GnsmConfig {
    fn default() -> Self {
        Self {
            network: TabResNetConfig {
                width: 256,
                depth: 4,
                ..TabResNetConfig::default()
            },
            trainer: TrainerConfig {
                steps: 4000,
                batch_size: 256,
                eval_every: 500,
                // A validation loss on 50,000 rows has a negligible standard error; on all
                // the validation rows of a 10-million-row table it would take most of the
                // time budget. No Table 2 set has more validation rows than this.
                val_rows: Some(50_000),
                lr: 1e-3,
                max_minutes: Some(8.0),
                ..TrainerConfig::default()
            },
            min_epochs: 24.0,
            score: ScoreMethod::default(),
            msma: MsmaParams::default(),
            schema: SchemaOptions::default(),
            val_fraction: 0.1,
            calibration_fraction: 0.1,
            score_batch: 2048,
            train_sample: None,
            seed: 0,
            denoise: true,
        }
    }
}

impl GnsmConfig {
    /// The reference pipeline as the Table 2 reproduction (`examples/table2.rs`) runs it: MSMA
    /// on the 20 score norms of the denoised row, a mixture of 3, 5, 7 or 9 components, and a
    /// width-256, 4-block tab-ResNet (the paper's is width 1024 with 20 blocks, trained for
    /// days on a GPU) trained for 4000 steps of 512 rows at lr 1e-3 with cosine decay, no
    /// time budget and no minimum number of passes.
    ///
    /// ```
    /// let paper = gnsm::GnsmConfig::paper();
    /// assert_eq!((paper.network.width, paper.network.depth), (256, 4));
    /// assert!(paper.denoise);
    /// ```
    pub fn paper() -> Self {
        let base = Self::default();
        Self {
            trainer: TrainerConfig {
                steps: 4000,
                batch_size: 512,
                max_minutes: None,
                ..base.trainer
            },
            min_epochs: 0.0,
            score: ScoreMethod::Msma,
            ..base
        }
    }

    /// The step budget for `train_rows` training rows: `trainer.steps`, raised to
    /// `min_epochs` passes over the rows.
    ///
    /// ```
    /// let config = gnsm::GnsmConfig::default();
    /// assert_eq!(config.training_steps(1_000), 4000);
    /// assert_eq!(config.training_steps(224_000), 21_000); // 24 passes of 256-row steps
    /// ```
    pub fn training_steps(&self, train_rows: usize) -> usize {
        let epochs =
            (self.min_epochs * train_rows as f64 / self.trainer.batch_size.max(1) as f64).ceil();
        if epochs.is_finite() && epochs > self.trainer.steps as f64 {
            epochs.min(1e9) as usize
        } else {
            self.trainer.steps
        }
    }

    /// Use `seed` everywhere: split, initial weights, batches and noise, k-means start.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.network.seed = seed;
        self.trainer.seed = seed;
        self.msma.gmm.seed = seed;
        self
    }

    /// Check every setting, naming the first bad one.
    ///
    /// ```
    /// let mut config = gnsm::GnsmConfig::default();
    /// assert!(config.validate().is_ok());
    /// config.val_fraction = 1.5;
    /// assert!(config.validate().unwrap_err().to_string().contains("val_fraction"));
    /// ```
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] (or the component's own error) naming the setting.
    pub fn validate(&self) -> Result<(), GnsmError> {
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return Err(GnsmError::Invalid(format!(
                "val_fraction = {}: must be strictly between 0 and 1",
                self.val_fraction
            )));
        }
        if !(self.calibration_fraction >= 0.0 && self.calibration_fraction <= 0.5) {
            return Err(GnsmError::Invalid(format!(
                "calibration_fraction = {}: must lie in [0, 0.5]",
                self.calibration_fraction
            )));
        }
        if !(self.min_epochs.is_finite() && self.min_epochs >= 0.0) {
            return Err(GnsmError::Invalid(format!(
                "min_epochs = {}: must be finite and >= 0",
                self.min_epochs
            )));
        }
        if self.train_sample == Some(0) {
            return Err(GnsmError::Invalid(
                "train_sample = 0: the network needs at least one training row".into(),
            ));
        }
        if self.score_batch == 0 {
            return Err(GnsmError::Invalid(
                "score_batch = 0: must be at least 1".into(),
            ));
        }
        if self.trainer.steps == 0 {
            return Err(GnsmError::Invalid(
                "trainer.steps = 0: a model needs at least one training step".into(),
            ));
        }
        if let ScoreMethod::DenoisingLoss(params) = &self.score {
            params.validate()?;
        }
        self.network.validate()?;
        self.trainer.validate()?;
        self.msma.validate()?;
        Ok(())
    }

    /// Read a configuration from JSON: keys left out take the library defaults
    /// ([`GnsmConfig::default`]), a key this build does not know is an error naming it (a
    /// misspelt key would otherwise be ignored silently), and the result is validated.
    ///
    /// ```
    /// use gnsm::GnsmConfig;
    /// let config = GnsmConfig::from_json(r#"{"network": {"width": 64}}"#)?;
    /// assert_eq!(config.network.width, 64);
    /// assert_eq!(config.denoise, GnsmConfig::default().denoise);
    /// let typo = GnsmConfig::from_json(r#"{"network": {"widht": 64}}"#).unwrap_err();
    /// assert!(typo.to_string().contains("network.widht"));
    /// # Ok::<(), gnsm::GnsmError>(())
    /// ```
    ///
    /// # Errors
    /// [`GnsmError::Invalid`] for malformed JSON, unknown keys, wrong types or bad values.
    pub fn from_json(text: &str) -> Result<Self, GnsmError> {
        let given: serde_json::Value =
            serde_json::from_str(text).map_err(|e| GnsmError::Invalid(format!("not JSON: {e}")))?;
        let config: Self = serde_json::from_value(given.clone())
            .map_err(|e| GnsmError::Invalid(format!("not a GNSM configuration: {e}")))?;
        let known = serde_json::to_value(&config)
            .map_err(|e| GnsmError::Invalid(format!("cannot serialise the configuration: {e}")))?;
        if let Some(path) = unknown_key(&given, &known, "") {
            return Err(GnsmError::Invalid(format!(
                "unknown configuration key {path:?} (misspelt, or from another version?)"
            )));
        }
        config.validate()?;
        Ok(config)
    }
}

/// The first key of `given` (depth first) that `known` does not have, as a dotted path.
fn unknown_key(
    given: &serde_json::Value,
    known: &serde_json::Value,
    prefix: &str,
) -> Option<String> {
    let (serde_json::Value::Object(given), serde_json::Value::Object(known)) = (given, known)
    else {
        return None;
    };
    for (key, value) in given {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match known.get(key) {
            None => return Some(path),
            Some(inner) => {
                if let Some(found) = unknown_key(value, inner, &path) {
                    return Some(found);
                }
            }
        }
    }
    None
}

/// The settings a command line or an experiment changes on top of a configuration: each
/// `None` (or empty) leaves the configuration's value.
///
/// ```
/// use gnsm::{GnsmConfig, TrainOverrides};
/// let overrides = TrainOverrides { width: Some(64), lr: Some(1e-4), ..Default::default() };
/// let config = overrides.apply(GnsmConfig::default());
/// assert_eq!(config.network.width, 64);
/// assert_eq!(config.trainer.lr, 1e-4);
/// assert_eq!(config.network.depth, GnsmConfig::default().network.depth);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainOverrides {
    /// Training steps, exactly (switches `min_epochs` off).
    pub steps: Option<usize>,
    /// Wall-clock training budget per fit, minutes. Given without `steps`, time decides:
    /// the step budget is raised to a million so the schedule spans the time.
    pub max_minutes: Option<f64>,
    /// Network width.
    pub width: Option<usize>,
    /// Residual blocks.
    pub depth: Option<usize>,
    /// Dropout inside the residual blocks.
    pub dropout: Option<f64>,
    /// Rows per training step.
    pub batch_size: Option<usize>,
    /// Learning rate (a cosine floor above it is lowered to it).
    pub lr: Option<f64>,
    /// Keep the learning rate constant instead of the cosine decay.
    pub constant_lr: bool,
    /// Validate every this many steps.
    pub eval_every: Option<usize>,
    /// Switch the denoising step before the score norms.
    pub denoise: Option<bool>,
    /// Mixture sizes the density stage chooses among; one value fixes the size.
    pub components: Vec<usize>,
}

impl TrainOverrides {
    /// `config` with these settings applied.
    pub fn apply(&self, mut config: GnsmConfig) -> GnsmConfig {
        if let Some(steps) = self.steps {
            // Asked for by number: exactly that many, not raised to `min_epochs` passes.
            config.trainer.steps = steps;
            config.min_epochs = 0.0;
        }
        if let Some(minutes) = self.max_minutes {
            config.trainer.max_minutes = Some(minutes);
            if self.steps.is_none() {
                config.trainer.steps = config.trainer.steps.max(1_000_000);
            }
        }
        if let Some(w) = self.width {
            config.network.width = w;
        }
        if let Some(d) = self.depth {
            config.network.depth = d;
        }
        if let Some(p) = self.dropout {
            config.network.dropout = p;
        }
        if let Some(b) = self.batch_size {
            config.trainer.batch_size = b;
        }
        if let Some(lr) = self.lr {
            config.trainer.lr = lr;
            if let LrSchedule::Cosine { min_lr } = config.trainer.schedule {
                config.trainer.schedule = LrSchedule::Cosine {
                    min_lr: min_lr.min(lr),
                };
            }
        }
        if self.constant_lr {
            config.trainer.schedule = LrSchedule::Constant;
        }
        if let Some(every) = self.eval_every {
            config.trainer.eval_every = every;
        }
        if let Some(denoise) = self.denoise {
            config.denoise = denoise;
        }
        if !self.components.is_empty() {
            config.msma = config.msma.with_components(&self.components);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_json_object_is_the_default() {
        assert_eq!(GnsmConfig::from_json("{}").unwrap(), GnsmConfig::default());
    }

    #[test]
    fn bad_values_and_unknown_keys_name_the_key() {
        let err = GnsmConfig::from_json(r#"{"val_fraction": 1.5}"#).unwrap_err();
        assert!(err.to_string().contains("val_fraction"), "{err}");
        let err = GnsmConfig::from_json(r#"{"trainer": {"noise": {"tau_mn": 2}}}"#).unwrap_err();
        assert!(err.to_string().contains("trainer.noise.tau_mn"), "{err}");
        let err = GnsmConfig::from_json(r#"{"trainer": {"steps": 0}}"#).unwrap_err();
        assert!(err.to_string().contains("steps"), "{err}");
        let err =
            GnsmConfig::from_json(r#"{"msma": {"selection": {"candidates": [0]}}}"#).unwrap_err();
        assert!(err.to_string().contains("candidates"), "{err}");
        let err = GnsmConfig::from_json(r#"{"network": {"width": "wide"}}"#).unwrap_err();
        assert!(
            err.to_string().contains("not a GNSM configuration"),
            "{err}"
        );
    }

    #[test]
    fn overrides_touch_only_what_they_name() {
        let base = GnsmConfig::paper();
        assert_eq!(TrainOverrides::default().apply(base.clone()), base);
        let timed = TrainOverrides {
            max_minutes: Some(2.0),
            ..Default::default()
        }
        .apply(base.clone());
        assert_eq!(timed.trainer.steps, 1_000_000);
        // A step count asked for is kept, even below `min_epochs` passes.
        let counted = TrainOverrides {
            steps: Some(50),
            ..Default::default()
        }
        .apply(GnsmConfig::default());
        assert_eq!(counted.training_steps(100_000), 50);
        let fixed = TrainOverrides {
            components: vec![5],
            denoise: Some(false),
            constant_lr: true,
            ..Default::default()
        }
        .apply(base);
        assert_eq!(fixed.msma.gmm.n_components, 5);
        assert!(fixed.msma.selection.is_none());
        assert!(!fixed.denoise);
        assert_eq!(fixed.trainer.schedule, LrSchedule::Constant);
    }
}
