//! Atomic file writes.

use std::io::Write;
use std::path::Path;

use crate::MsmaError;

/// Write `bytes` to `path` atomically: write a temporary file in the same directory, flush
/// it to disk, then rename it over `path`. A crash leaves either the old file or the new one.
///
/// # Errors
/// [`MsmaError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MsmaError> {
    let io = |source| MsmaError::Io {
        path: path.display().to_string(),
        source,
    };
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
    result.map_err(io)
}
