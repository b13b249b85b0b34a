//! Atomic file writes.

use std::io::Write;
use std::path::Path;

use crate::DataError;

/// Write `bytes` to `path` atomically: a temporary file in the same directory, flushed to
/// disk, then renamed over `path`. A crash leaves the old file or the new one, never half.
///
/// # Errors
/// [`DataError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
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
    result.map_err(|source| DataError::Io {
        path: path.display().to_string(),
        source,
    })
}
