//! A fitted [`Gnsm`] as one file: the network's weights as safetensors tensors and the rest
//! (configuration, schema, density stage, training summary) as a JSON header, in the
//! checksummed envelope of gnsm-models ([`gnsm_models::save_envelope`]).
//!
//! Format versions: 2 (this build) carries a SHA-256 checksum over the header and every
//! weight, verified before anything is used. Version 1 files (no checksum) still load; their
//! configuration predates the denoising switch when it lacks the key, and then scores without
//! it, as it did.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use gnsm_data::{ColumnKind, Schema};
use gnsm_models::{TabResNetModel, TrainSummary, WeightsHeader};
use msma::Msma;

use crate::density::{SavedStage, Stage};
use serde::{Deserialize, Serialize};

use crate::scorer::Scorer;
use crate::{Calibration, Gnsm, GnsmConfig, GnsmError};

const FORMAT: &str = "gnsm-model";
const VERSION: u32 = 2;
/// Prefix of the network's tensors in the file.
const MODEL_PREFIX: &str = "model/";

/// The JSON header of a model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    config: GnsmConfig,
    schema: Schema,
    stage: SavedStage,
    model: WeightsHeader,
    /// How the network was trained (absent in the oldest files).
    #[serde(default)]
    training: Option<TrainSummary>,
    /// Held-out inlier scores for p-values (absent in older files and uncalibrated fits).
    #[serde(default)]
    calibration: Option<Calibration>,
}

fn bad(path: &Path, reason: impl Into<String>) -> GnsmError {
    GnsmError::Artifact {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

impl Gnsm {
    /// Save as one checksummed safetensors file (weights as tensors; schema, MSMA,
    /// configuration and training summary as a JSON header), atomically: a crash leaves the
    /// old file or the new one, and a replaced file keeps its permissions.
    ///
    /// # Errors
    /// [`GnsmError::Model`] wrapping the I/O error, naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), GnsmError> {
        let header = Header {
            config: self.config.clone(),
            schema: self.schema.clone(),
            stage: self.stage.saved(),
            model: self.scorer.model().header(),
            training: self.training.clone(),
            calibration: self.calibration.clone(),
        };
        let tensors: Vec<(String, Tensor)> = self
            .scorer
            .model()
            .tensors()
            .into_iter()
            .map(|(k, t)| (format!("{MODEL_PREFIX}{k}"), t))
            .collect();
        Ok(gnsm_models::save_envelope(
            path.as_ref(),
            FORMAT,
            VERSION,
            &header,
            &tensors,
        )?)
    }

    /// Load a detector written by [`Gnsm::save`], checking it before use: the checksum (a
    /// changed bit anywhere is refused), the format version, and that the schema, network
    /// and density stage fit together with finite, valid parameters.
    ///
    /// # Errors
    /// [`GnsmError::Io`] when unreadable, [`GnsmError::Artifact`] (or the model error) for a
    /// corrupt, edited or foreign file, or one from a newer format version.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, GnsmError> {
        let path = path.as_ref();
        let (header, tensors) =
            match gnsm_models::load_envelope::<Header>(path, FORMAT, VERSION, device) {
                Ok(file) => (file.header, file.tensors),
                Err(gnsm_models::ModelError::Io { path, source }) => {
                    return Err(GnsmError::Io { path, source })
                }
                Err(e) => match load_version_1(path, device)? {
                    Some(old) => old,
                    None => {
                        return Err(match e {
                            gnsm_models::ModelError::Checkpoint { path, reason } => {
                                GnsmError::Artifact {
                                    path,
                                    reason: format!("cannot be used as a GNSM model: {reason}"),
                                }
                            }
                            other => other.into(),
                        })
                    }
                },
            };
        let model =
            TabResNetModel::from_tensors(header.model, &tensors, MODEL_PREFIX, path, device)?;
        check(path, &header.config, &header.schema, &header.stage, &model)?;
        let scorer = Scorer::new(
            model,
            header.config.trainer.noise.build()?,
            header.config.score_batch,
        )?;
        let stage = Stage::restore(header.stage, &scorer);
        let mut config = header.config;
        if let Some(params) = stage.denoising_params() {
            // A file from before the one-hot density term reads its settings as the default's.
            config.score = crate::ScoreMethod::DenoisingLoss(params.clone());
        }
        Ok(Self {
            stage,
            scorer,
            config,
            schema: header.schema,
            training: header.training,
            calibration: header.calibration,
        })
    }
}

impl Gnsm {
    /// The format version of a model file, read from its header alone (no weights are
    /// loaded and nothing is verified: [`Gnsm::load`] does that).
    ///
    /// # Errors
    /// [`GnsmError::Io`] when unreadable, [`GnsmError::Artifact`] for a file that is not a
    /// GNSM model.
    pub fn file_version(path: impl AsRef<Path>) -> Result<u32, GnsmError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| GnsmError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
        let meta = meta.metadata().as_ref();
        let version = match meta.and_then(|m| m.get("format").map(|f| (f, m.get("version")))) {
            Some((format, Some(version))) if format == FORMAT => version.parse().ok(),
            _ => meta
                .and_then(|m| m.get("gnsm"))
                .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
                .filter(|v| v.get("format").and_then(|f| f.as_str()) == Some(FORMAT))
                .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64))
                .and_then(|v| u32::try_from(v).ok()),
        };
        version.ok_or_else(|| bad(path, "not a GNSM model file"))
    }
}

/// The header of a version 1 file, less its MSMA part.
#[derive(Deserialize)]
struct OldHeader {
    config: GnsmConfig,
    schema: Schema,
    model: WeightsHeader,
    #[serde(default)]
    training: Option<TrainSummary>,
}

/// A model file's header and tensors.
type Loaded = (Header, HashMap<String, Tensor>);

/// A version 1 file (plain safetensors, the header under the `gnsm` metadata key, no
/// checksum), or `None` when the file is not one.
fn load_version_1(path: &Path, device: &Device) -> Result<Option<Loaded>, GnsmError> {
    let bytes = std::fs::read(path).map_err(|source| GnsmError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let Ok((_, meta)) = safetensors::SafeTensors::read_metadata(&bytes) else {
        return Ok(None);
    };
    let Some(json) = meta.metadata().as_ref().and_then(|m| m.get("gnsm")) else {
        return Ok(None);
    };
    let mut value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| bad(path, format!("bad header: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT)
        || value.get("version").and_then(serde_json::Value::as_u64) != Some(1)
    {
        return Ok(None);
    }
    // Files from before the denoising switch scored without it; every version 1 file
    // scores with MSMA.
    if let Some(config) = value.get_mut("config").and_then(|c| c.as_object_mut()) {
        config
            .entry("denoise")
            .or_insert(serde_json::Value::Bool(false));
        config.insert("score".into(), serde_json::json!("msma"));
    }
    let msma: Msma = serde_json::from_value(value["msma"].take())
        .map_err(|e| bad(path, format!("bad header: {e}")))?;
    let old: OldHeader =
        serde_json::from_value(value).map_err(|e| bad(path, format!("bad header: {e}")))?;
    let header = Header {
        config: old.config,
        schema: old.schema,
        stage: SavedStage::Msma(Box::new(msma)),
        model: old.model,
        training: old.training,
        calibration: None,
    };
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)?;
    Ok(Some((header, tensors)))
}

/// The parts of a loaded detector must fit together and hold usable values.
fn check(
    path: &Path,
    config: &GnsmConfig,
    schema: &Schema,
    stage: &SavedStage,
    model: &TabResNetModel,
) -> Result<(), GnsmError> {
    config
        .validate()
        .map_err(|e| bad(path, format!("bad configuration: {e}")))?;
    let layout = schema.layout()?;
    if &layout != model.layout() {
        return Err(bad(
            path,
            "the schema's layout does not match the network's",
        ));
    }
    for column in &schema.columns {
        if column.kind == ColumnKind::Continuous
            && !(column.mean.is_finite() && column.std.is_finite() && column.std > 0.0)
        {
            return Err(bad(
                path,
                format!(
                    "continuous column {:?} has unusable statistics (mean {}, std {})",
                    column.name, column.mean, column.std
                ),
            ));
        }
    }
    let levels = config.trainer.noise.levels;
    match stage {
        SavedStage::Msma(msma) if msma.gmm().n_features() != levels => {
            return Err(bad(
                path,
                format!(
                    "the density stage expects {} levels, the noise schedule has {levels}",
                    msma.gmm().n_features()
                ),
            ))
        }
        SavedStage::Denoising {
            params,
            prior,
            one_hot,
            ..
        } => {
            params
                .validate()
                .map_err(|e| bad(path, format!("bad scoring settings: {e}")))?;
            if let Some(prior) = prior {
                prior.check(&layout).map_err(|reason| bad(path, reason))?;
            }
            if let Some(one_hot) = one_hot {
                one_hot.check(&layout).map_err(|reason| bad(path, reason))?;
            }
        }
        SavedStage::Msma(_) => {}
    }
    Ok(())
}
