//! The keyword arguments of `gnsm.GNSM(**config)`: the command line's settings under the
//! same names, read strictly (an unknown keyword is an error naming it).

use gnsm::data::{MissingContinuous, UnseenPolicy};
use gnsm::{GnsmConfig, GnsmError, TrainOverrides};
use serde::Deserialize;

/// What `gnsm.GNSM(...)` was given, as the Python wrapper sends it (JSON, `None`s left out).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Options {
    /// `"default"` (the library's detector) or `"paper"` (MSMA on score norms).
    preset: Option<String>,
    /// A configuration (the JSON of `GnsmConfig`) merged over the preset; keys left out keep
    /// the preset's values.
    config: Option<serde_json::Value>,
    /// Seed of the split, the weights and the noise (the command line's `--seed`, default 0).
    seed: Option<u64>,
    steps: Option<usize>,
    max_minutes: Option<f64>,
    width: Option<usize>,
    depth: Option<usize>,
    batch_size: Option<usize>,
    lr: Option<f64>,
    denoise: Option<bool>,
    components: Option<Vec<usize>>,
    /// Columns read as numbers.
    continuous: Option<Vec<String>>,
    /// Columns read as categories even when they look like identifiers.
    categorical: Option<Vec<String>>,
    /// Columns left out.
    ignored: Option<Vec<String>>,
    /// Cells read as missing.
    missing_values: Option<Vec<String>>,
    /// Fill missing continuous cells with the training mean instead of refusing them.
    impute_mean: Option<bool>,
    /// `"reserve"`, `"ignore"` or `"error"` for a category not seen at fit time.
    unseen: Option<UnseenPolicy>,
    max_categories: Option<usize>,
    calibration_fraction: Option<f64>,
    /// Train on a seeded sample of at most this many rows (the command line's `--sample`).
    sample: Option<usize>,
}

impl Options {
    /// Read the wrapper's JSON.
    pub(crate) fn from_json(text: &str) -> Result<Self, GnsmError> {
        serde_json::from_str(text)
            .map_err(|e| GnsmError::Invalid(format!("GNSM(...) keyword arguments: {e}")))
    }

    /// The configuration: the preset, the `config` mapping over it, then the keywords.
    pub(crate) fn config(&self) -> Result<GnsmConfig, GnsmError> {
        let base = match self.preset.as_deref().unwrap_or("default") {
            "default" => GnsmConfig::default(),
            "paper" => GnsmConfig::paper(),
            other => {
                return Err(GnsmError::Invalid(format!(
                    "preset = {other:?}: expected \"default\" or \"paper\""
                )))
            }
        };
        let base = match &self.config {
            None => base,
            Some(given) => {
                let mut merged = serde_json::to_value(&base)
                    .map_err(|e| GnsmError::Invalid(format!("configuration: {e}")))?;
                merge(&mut merged, given);
                // from_json names an unknown key of `config` by its dotted path.
                GnsmConfig::from_json(&merged.to_string())?
            }
        };
        if self.components.is_some() && !matches!(base.score, gnsm::ScoreMethod::Msma) {
            return Err(GnsmError::Invalid(
                "components sizes the MSMA mixture, and this configuration scores by the \
                 denoising loss; add preset=\"paper\""
                    .into(),
            ));
        }
        let mut config = TrainOverrides {
            steps: self.steps,
            max_minutes: self.max_minutes,
            width: self.width,
            depth: self.depth,
            batch_size: self.batch_size,
            lr: self.lr,
            denoise: self.denoise,
            components: self.components.clone().unwrap_or_default(),
            ..TrainOverrides::default()
        }
        .apply(base);
        let schema = &mut config.schema;
        let set = |target: &mut Vec<String>, given: &Option<Vec<String>>| {
            if let Some(given) = given {
                target.clone_from(given);
            }
        };
        set(&mut schema.continuous, &self.continuous);
        set(&mut schema.categorical, &self.categorical);
        set(&mut schema.ignored, &self.ignored);
        set(&mut schema.missing_values, &self.missing_values);
        if self.impute_mean == Some(true) {
            schema.missing_continuous = MissingContinuous::ImputeMean;
        }
        if let Some(unseen) = self.unseen {
            schema.unseen = unseen;
        }
        if let Some(max) = self.max_categories {
            schema.max_categories = max;
        }
        if let Some(fraction) = self.calibration_fraction {
            config.calibration_fraction = fraction;
        }
        if self.sample.is_some() {
            config.train_sample = self.sample;
        }
        let config = config.with_seed(self.seed.unwrap_or(0));
        config.validate()?;
        Ok(config)
    }
}

/// `given` written over `target`, objects merged key by key.
fn merge(target: &mut serde_json::Value, given: &serde_json::Value) {
    match (target, given) {
        (serde_json::Value::Object(t), serde_json::Value::Object(g)) => {
            for (key, value) in g {
                match t.get_mut(key) {
                    Some(inner) => merge(inner, value),
                    None => {
                        t.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, given) => *target = given.clone(),
    }
}
