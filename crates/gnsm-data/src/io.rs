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
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|source| DataError::Io {
        path: path.display().to_string(),
        source,
    })
}
