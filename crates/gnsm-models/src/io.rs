//! The one file envelope of the workspace: a safetensors file whose metadata holds a format
//! name, a version, a JSON header and a SHA-256 checksum over all of them and every tensor.
//!
//! Networks ([`TabResNetModel`](crate::TabResNetModel), [`UNetModel`](crate::UNetModel)), trainer
//! checkpoints and whole detectors (the `gnsm` crate) are written and read here, so they
//! share one format check and one integrity check: a file whose header or weights changed
//! by one bit since it was written is refused on load, never used. Files go through
//! [`gnsm_data::OutputFile`] (atomic replacement, permissions kept, no temporary file left).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use candle_core::{Device, Tensor};
use safetensors::View;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ModelError;

/// Metadata keys of the envelope.
const FORMAT_KEY: &str = "format";
const VERSION_KEY: &str = "version";
const HEADER_KEY: &str = "header";
const CHECKSUM_KEY: &str = "sha256";

/// What [`load_envelope`] read.
#[derive(Debug)]
pub struct Envelope<T> {
    /// The JSON header.
    pub header: T,
    /// The format version the file was written with.
    pub version: u32,
    /// The tensors, by name.
    pub tensors: HashMap<String, Tensor>,
}

fn bad(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Checkpoint {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// SHA-256 over the format, version, header and every tensor (name, dtype, shape, bytes) in
/// name order, as lowercase hex.
fn checksum<'a, V: View + 'a>(
    format: &str,
    version: u32,
    header: &str,
    tensors: impl IntoIterator<Item = (&'a str, V)>,
) -> String {
    let mut hash = Sha256::new();
    let field = |hash: &mut Sha256, bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(&mut hash, format.as_bytes());
    field(&mut hash, &version.to_le_bytes());
    field(&mut hash, header.as_bytes());
    let mut sorted: Vec<(&str, V)> = tensors.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (name, view) in sorted {
        field(&mut hash, name.as_bytes());
        field(&mut hash, format!("{:?}", view.dtype()).as_bytes());
        for &d in view.shape() {
            hash.update((d as u64).to_le_bytes());
        }
        field(&mut hash, &view.data());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `tensors` and `header` as one safetensors file of `format` at `version`, with its
/// checksum, through [`gnsm_data::OutputFile`].
///
/// # Errors
/// [`ModelError::Io`] naming `path`, [`ModelError::Checkpoint`] when the header does not
/// serialise.
pub fn save_envelope<T: Serialize>(
    path: &Path,
    format: &str,
    version: u32,
    header: &T,
    tensors: &[(String, Tensor)],
) -> Result<(), ModelError> {
    let json = serde_json::to_string(header).map_err(|e| bad(path, e.to_string()))?;
    let sum = checksum(
        format,
        version,
        &json,
        tensors.iter().map(|(k, t)| (k.as_str(), t)),
    );
    let metadata = HashMap::from([
        (FORMAT_KEY.to_string(), format.to_string()),
        (VERSION_KEY.to_string(), version.to_string()),
        (HEADER_KEY.to_string(), json),
        (CHECKSUM_KEY.to_string(), sum),
    ]);
    let views: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let bytes = safetensors::tensor::serialize(views, Some(metadata))
        .map_err(|e| bad(path, e.to_string()))?;
    let io = |source| ModelError::Io {
        path: path.display().to_string(),
        source,
    };
    let from_data = |e: gnsm_data::DataError| match e {
        gnsm_data::DataError::Io { source, .. } => io(source),
        other => bad(path, other.to_string()),
    };
    let mut out = gnsm_data::OutputFile::create(path).map_err(from_data)?;
    out.write_all(&bytes).map_err(io)?;
    out.commit().map_err(from_data)
}

/// Read a file written by [`save_envelope`]: the format must be `format`, the version at
/// most `newest`, and the checksum must match, before the header is parsed or a tensor
/// is loaded onto `device`.
///
/// # Errors
/// [`ModelError::Io`] when unreadable, [`ModelError::Checkpoint`] for a file that is not a
/// safetensors envelope, of another format or a newer version, or whose checksum does not
/// match (corrupt or edited).
pub fn load_envelope<T: DeserializeOwned>(
    path: &Path,
    format: &str,
    newest: u32,
    device: &Device,
) -> Result<Envelope<T>, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        bad(
            path,
            format!("not a safetensors file (corrupt or truncated?): {e}"),
        )
    })?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let get = |key: &str| {
        metadata
            .get(key)
            .ok_or_else(|| bad(path, format!("not a {format} file: no {key:?} entry")))
    };
    let found = get(FORMAT_KEY)?;
    if found != format {
        return Err(bad(
            path,
            format!("a {found:?} file, not a {format:?} file"),
        ));
    }
    let version: u32 = get(VERSION_KEY)?
        .parse()
        .map_err(|_| bad(path, "the format version is not a number"))?;
    if version > newest {
        return Err(bad(
            path,
            format!("{format} version {version} is newer than this build reads ({newest}); upgrade gnsm"),
        ));
    }
    let json = get(HEADER_KEY)?;
    let expected = get(CHECKSUM_KEY)?;
    let views = file.tensors();
    let actual = checksum(
        format,
        version,
        json,
        views.iter().map(|(k, v)| (k.as_str(), v)),
    );
    if &actual != expected {
        return Err(bad(
            path,
            "checksum mismatch: the file was changed or damaged after it was written; refusing to use it",
        ));
    }
    let header: T =
        serde_json::from_str(json).map_err(|e| bad(path, format!("bad header: {e}")))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| bad(path, e.to_string()))?;
    Ok(Envelope {
        header,
        version,
        tensors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Header {
        n: u32,
    }

    fn tensors() -> Vec<(String, Tensor)> {
        vec![
            (
                "b".into(),
                Tensor::new(&[1.0f32, 2.0, 3.0], &Device::Cpu).unwrap(),
            ),
            (
                "a".into(),
                Tensor::new(&[[0.5f32], [0.25]], &Device::Cpu).unwrap(),
            ),
        ]
    }

    #[test]
    fn round_trip_and_every_flipped_bit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        save_envelope(&path, "test-format", 3, &Header { n: 7 }, &tensors()).unwrap();
        let back: Envelope<Header> = load_envelope(&path, "test-format", 3, &Device::Cpu).unwrap();
        assert_eq!(back.header, Header { n: 7 });
        assert_eq!(back.version, 3);
        assert_eq!(
            back.tensors["b"].to_vec1::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0]
        );

        let good = std::fs::read(&path).unwrap();
        // Flip one bit of every byte position in turn (a sample across the file): each
        // damaged file is refused, whether the bit lands in the header or a weight.
        for pos in (0..good.len()).step_by(3) {
            let mut bytes = good.clone();
            bytes[pos] ^= 0x10;
            std::fs::write(&path, &bytes).unwrap();
            let result: Result<Envelope<Header>, _> =
                load_envelope(&path, "test-format", 3, &Device::Cpu);
            assert!(result.is_err(), "a flipped bit at byte {pos} loaded");
        }
    }

    #[test]
    fn other_formats_and_newer_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        save_envelope(&path, "test-format", 3, &Header { n: 7 }, &tensors()).unwrap();
        let err = load_envelope::<Header>(&path, "other", 3, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("not a \"other\" file"), "{err}");
        let err = load_envelope::<Header>(&path, "test-format", 2, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
