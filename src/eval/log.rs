//! A results file that several runs append to.

use std::path::{Path, PathBuf};

use gnsm_data::OutputFile;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::GnsmError;

/// A JSON array of results in a file, appended to one entry at a time. The file is read
/// again before every append, so runs sharing it (other datasets or settings, in other
/// processes) keep each other's entries; every write replaces the file atomically.
///
/// ```
/// use gnsm::eval::ResultsLog;
/// let dir = tempfile::tempdir()?;
/// let log = ResultsLog::new(dir.path().join("results.json"));
/// assert!(log.read::<u32>()?.is_empty());
/// log.append(&7u32)?;
/// assert_eq!(log.append(&8u32)?, vec![7, 8]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResultsLog {
    path: PathBuf,
}

impl ResultsLog {
    /// A log at `path` (created on the first append).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every entry (none when the file does not exist yet).
    ///
    /// # Errors
    /// [`GnsmError::Io`] when unreadable, [`GnsmError::Invalid`] when not a results file of
    /// `T`.
    pub fn read<T: DeserializeOwned>(&self) -> Result<Vec<T>, GnsmError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                GnsmError::Invalid(format!("{}: not a results file: {e}", self.path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(GnsmError::Io {
                path: self.path.display().to_string(),
                source,
            }),
        }
    }

    /// Append `entry` and return every entry.
    ///
    /// # Errors
    /// As [`ResultsLog::read`], and write errors.
    pub fn append<T: Serialize + DeserializeOwned>(&self, entry: &T) -> Result<Vec<T>, GnsmError> {
        let mut entries: Vec<T> = self.read()?;
        let value = serde_json::to_value(entry)
            .and_then(serde_json::from_value)
            .map_err(|e| GnsmError::Invalid(format!("cannot serialise a result: {e}")))?;
        entries.push(value);
        let bytes = serde_json::to_vec_pretty(&entries)
            .map_err(|e| GnsmError::Invalid(format!("cannot serialise results: {e}")))?;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| GnsmError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        OutputFile::write_bytes(&self.path, &bytes)?;
        Ok(entries)
    }
}
