//! safetensors files with a JSON header in their metadata, written atomically.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::de::DeserializeOwned;

use crate::ModelError;

/// Write `bytes` to `path` atomically (temporary file in the same directory, fsync, rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let result = (|| {
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(bytes)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    })();
    result.map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Serialise named tensors and string metadata as safetensors, atomically.
pub(crate) fn save_tensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<(), ModelError> {
    let views: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let bytes = safetensors::tensor::serialize(views, Some(metadata)).map_err(|e| {
        ModelError::Checkpoint {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    })?;
    write_atomic(path, &bytes)
}

/// Named tensors and string metadata of a safetensors file.
pub(crate) type TensorFile = (HashMap<String, Tensor>, HashMap<String, String>);

/// Read every tensor and the metadata of a safetensors file.
pub(crate) fn load_tensors(path: &Path, device: &Device) -> Result<TensorFile, ModelError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: shown.clone(),
        source,
    })?;
    let bad = |reason: String| ModelError::Checkpoint {
        path: shown.clone(),
        reason,
    };
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let tensors =
        candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| bad(e.to_string()))?;
    Ok((tensors, metadata))
}

/// Parse the JSON header stored under `key` in the metadata.
pub(crate) fn header<T: DeserializeOwned>(
    path: &Path,
    metadata: &HashMap<String, String>,
    key: &str,
) -> Result<T, ModelError> {
    let bad = |reason: String| ModelError::Checkpoint {
        path: path.display().to_string(),
        reason,
    };
    let json = metadata
        .get(key)
        .ok_or_else(|| bad(format!("no {key:?} header: not a gnsm file")))?;
    serde_json::from_str(json).map_err(|e| bad(format!("bad {key:?} header: {e}")))
}
