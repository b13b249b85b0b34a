//! Safe file output: whole files replaced atomically, special files written in place, and
//! inputs never overwritten (see [`OutputFile`]).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::DataError;

/// Distinguishes temporary files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

const TMP_MARK: &str = ".gnsm-tmp-";

/// How an [`OutputFile`] reaches its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A temporary file renamed over the destination on [`OutputFile::commit`].
    Atomic,
    /// The destination itself (a FIFO, device or other special file), written in order.
    InPlace,
}

/// A file being written.
///
/// The one writer of the workspace. Every model, schema, report and score file goes through
/// this type, so they share its guarantees:
/// - a regular destination (or a new one) is written to a temporary file in the same
///   directory, flushed to disk, renamed over the destination and the directory flushed: a
///   crash leaves the old file or the new one, never half of one;
/// - the temporary file is named `.<name>.gnsm-tmp-<pid>-<n>`, removed on every error, and a
///   leftover one (from a process that was killed) is removed by the next write to the same
///   destination;
/// - a new file gets the usual permissions (`0666` less the umask); a replaced file keeps its
///   mode;
/// - a destination that exists and is not a regular file (a FIFO, a device such as
///   `/dev/null`, `/dev/stdout`, or a symlink to one) is opened and written in place, in
///   order: renaming over it would replace the device with a file;
/// - a destination that is a directory, or lies in a directory that does not exist, is an
///   error before anything is written ([`OutputFile::check`] tells before any expensive work).
///
/// ```
/// use std::io::Write;
/// use gnsm_data::OutputFile;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("scores.csv");
/// let mut out = OutputFile::create(&path)?;
/// writeln!(out, "row,score")?;
/// // Nothing at `path` until the commit.
/// assert!(!path.exists());
/// out.commit()?;
/// assert_eq!(std::fs::read_to_string(&path)?, "row,score\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OutputFile {
    dest: PathBuf,
    tmp: Option<PathBuf>,
    file: Option<BufWriter<File>>,
}

fn io_error(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

impl OutputFile {
    /// Check that `path` can be written, without touching it: not a directory, and its
    /// directory exists. Returns how it would be written.
    ///
    /// # Errors
    /// [`DataError::Io`] naming `path`.
    pub fn check(path: &Path) -> Result<OutputKind, DataError> {
        let invalid = |msg: &str| {
            io_error(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, msg),
            )
        };
        if path.as_os_str().is_empty() {
            return Err(invalid("an empty path is not a file name"));
        }
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.is_dir() {
                return Err(invalid("is a directory; name a file"));
            }
            if !meta.is_file() {
                return Ok(OutputKind::InPlace);
            }
        }
        if path.file_name().is_none() {
            return Err(invalid("names a directory; name a file"));
        }
        let dir = parent_of(path);
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(OutputKind::Atomic),
            Ok(_) => Err(invalid("its parent is not a directory")),
            Err(_) => Err(invalid(&format!(
                "the directory {} does not exist",
                dir.display()
            ))),
        }
    }

    /// Start writing `path` (see the module documentation for what happens where).
    ///
    /// # Errors
    /// [`DataError::Io`] naming `path` (never the temporary file).
    pub fn create(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let dest = path.as_ref().to_path_buf();
        match Self::check(&dest)? {
            OutputKind::InPlace => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&dest)
                    .map_err(|e| io_error(&dest, e))?;
                Ok(Self {
                    dest,
                    tmp: None,
                    file: Some(BufWriter::with_capacity(1 << 16, file)),
                })
            }
            OutputKind::Atomic => {
                let name = dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let dir = parent_of(&dest);
                remove_stale(dir, &name);
                let mut attempt = 0;
                let (tmp, file) = loop {
                    let tmp = dir.join(format!(
                        ".{name}{TMP_MARK}{}-{}",
                        std::process::id(),
                        COUNTER.fetch_add(1, Ordering::Relaxed)
                    ));
                    // `create_new` lets the OS apply the umask to 0666, as for any new file.
                    match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                        Ok(f) => break (tmp, f),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                            attempt += 1;
                        }
                        Err(e) => return Err(io_error(&dest, e)),
                    }
                };
                let out = Self {
                    dest,
                    tmp: Some(tmp),
                    file: Some(BufWriter::with_capacity(1 << 16, file)),
                };
                // A replaced file keeps its permissions.
                if let Ok(meta) = std::fs::metadata(&out.dest) {
                    if let Some(tmp) = &out.tmp {
                        std::fs::set_permissions(tmp, meta.permissions())
                            .map_err(|e| io_error(&out.dest, e))?;
                    }
                }
                Ok(out)
            }
        }
    }

    /// Write a whole file at once: [`OutputFile::create`], write, [`OutputFile::commit`].
    ///
    /// # Errors
    /// [`DataError::Io`] naming `path`.
    pub fn write_bytes(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), DataError> {
        let path = path.as_ref();
        let mut out = Self::create(path)?;
        out.write_all(bytes).map_err(|e| io_error(path, e))?;
        out.commit()
    }

    /// How this file reaches its destination.
    pub fn kind(&self) -> OutputKind {
        if self.tmp.is_some() {
            OutputKind::Atomic
        } else {
            OutputKind::InPlace
        }
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Finish: flush, then (atomic case) sync, rename over the destination and sync the
    /// directory. Dropping an `OutputFile` without committing removes the temporary file and
    /// leaves the destination as it was.
    ///
    /// # Errors
    /// [`DataError::Io`] naming the destination.
    pub fn commit(mut self) -> Result<(), DataError> {
        let writer = self
            .file
            .take()
            .expect("an uncommitted output has its file");
        let file = writer
            .into_inner()
            .map_err(|e| io_error(&self.dest, e.into_error()))?;
        let Some(tmp) = self.tmp.clone() else {
            return Ok(());
        };
        file.sync_all().map_err(|e| io_error(&self.dest, e))?;
        drop(file);
        std::fs::rename(&tmp, &self.dest).map_err(|e| io_error(&self.dest, e))?;
        self.tmp = None;
        // The rename is durable only once the directory is.
        if let Ok(dir) = File::open(parent_of(&self.dest)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file
            .as_mut()
            .expect("an uncommitted output has its file")
            .write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file
            .as_mut()
            .expect("an uncommitted output has its file")
            .flush()
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            drop(self.file.take());
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Remove temporary files of `name` in `dir` left by processes that no longer run (Linux:
/// checked through `/proc`; elsewhere nothing is removed).
fn remove_stale(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{name}{TMP_MARK}");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Write `bytes` to `path` through [`OutputFile`].
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    OutputFile::write_bytes(path, bytes)
}

/// Whether two paths name the same file: the same canonical path, or (Unix) the same device
/// and inode (hard links, bind mounts). Paths that do not exist are never the same file.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let a = dir.path().join("a.csv");
/// std::fs::write(&a, "x\n")?;
/// let b = dir.path().join(".").join("a.csv");
/// assert!(gnsm_data::same_file(&a, &b));
/// assert!(!gnsm_data::same_file(&a, &dir.path().join("new.csv")));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (a.canonicalize(), b.canonicalize()) {
        if x == y {
            return true;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino() && x.is_file();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncommitted_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gnsm");
        std::fs::write(&path, "old").unwrap();
        {
            let mut out = OutputFile::create(&path).unwrap();
            out.write_all(b"new").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temporary_files_of_dead_processes_are_removed() {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // No pid is that large (Linux caps pids at 2^22).
        let stale = dir.path().join(".m.gnsm.gnsm-tmp-4000000000-0");
        std::fs::write(&stale, "half").unwrap();
        let other = dir.path().join(".other.gnsm-tmp-4000000000-0");
        std::fs::write(&other, "half").unwrap();
        write_file(&dir.path().join("m.gnsm"), b"x").unwrap();
        assert!(!stale.exists());
        assert!(other.exists(), "only the destination's own leftovers go");
    }

    #[cfg(unix)]
    #[test]
    fn modes_follow_the_umask_for_new_files_and_are_kept_for_replaced_ones() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.csv");
        write_file(&new, b"x").unwrap();
        let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
        // Whatever the umask, a plain create gives the same mode.
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let expected = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, expected);

        let kept = dir.path().join("kept.gnsm");
        std::fs::write(&kept, "old").unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_file(&kept, b"new").unwrap();
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn directories_and_missing_parents_are_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputFile::check(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        let missing = dir.path().join("no/such/dir/out.csv");
        let err = OutputFile::create(&missing).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(err.starts_with(&missing.display().to_string()), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_written_in_place() {
        let null = Path::new("/dev/null");
        if !null.exists() {
            return;
        }
        assert_eq!(OutputFile::check(null).unwrap(), OutputKind::InPlace);
        let mut out = OutputFile::create(null).unwrap();
        out.write_all(b"discarded").unwrap();
        out.commit().unwrap();
        let meta = std::fs::metadata(null).unwrap();
        assert!(!meta.is_file(), "/dev/null is still a device");
    }
}
