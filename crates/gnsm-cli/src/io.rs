//! Where data comes from and where results go, checked before any work: `-` is standard
//! input or output, an output that is one of the inputs is refused, and files are written
//! through [`gnsm::data::OutputFile`] (atomic for regular files, in place for devices and
//! FIFOs).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use gnsm::data::{same_file, CsvOptions, OutputFile, Table};

/// The name `-` stands for standard input or output.
pub const STDIO: &str = "-";

/// Read a table from a file, or from standard input for `-` (plain or gzip-compressed).
pub fn read_table(path: &Path, options: &CsvOptions) -> Result<Table> {
    if path.as_os_str() == STDIO {
        let stdin = std::io::stdin();
        return Ok(Table::from_stream(stdin.lock(), "<stdin>", options)?);
    }
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    Ok(Table::read(path, options)?)
}

/// Read a table from a file, or from standard input for `-`, at most `rows` rows at a time
/// (memory stays bounded however long the input is).
pub fn read_chunks(
    path: &Path,
    options: &CsvOptions,
    rows: usize,
) -> Result<gnsm::data::TableChunks<'static>> {
    if path.as_os_str() == STDIO {
        return Ok(Table::stream_chunks(
            std::io::stdin(),
            "<stdin>",
            options,
            rows,
        )?);
    }
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    Ok(Table::read_chunks(path, options, rows)?)
}

/// A checked output location.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file (regular or special).
    File(PathBuf),
}

impl Destination {
    /// Check `path` as an output before any work: `-` is standard output; a path naming one
    /// of `inputs` (same canonical path or same inode) is refused, so an input is never
    /// overwritten; a directory or a missing parent directory is refused.
    pub fn check(path: &Path, inputs: &[PathBuf], what: &str) -> Result<Self> {
        if path.as_os_str() == STDIO {
            return Ok(Self::Stdout);
        }
        if let Some(input) = inputs
            .iter()
            .find(|i| i.as_os_str() != STDIO && same_file(path, i))
        {
            bail!(
                "{}: the {what} would overwrite the input {}; choose another file",
                path.display(),
                input.display()
            );
        }
        OutputFile::check(path)?;
        Ok(Self::File(path.to_path_buf()))
    }

    /// Whether results go to standard output (then human messages go to standard error).
    pub fn is_stdout(&self) -> bool {
        matches!(self, Self::Stdout)
    }

    /// Start writing.
    pub fn open(&self) -> Result<Sink> {
        Ok(match self {
            Self::Stdout => Sink::Stdout(BufWriter::new(std::io::stdout())),
            Self::File(path) => Sink::File(OutputFile::create(path)?),
        })
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdout => f.write_str("standard output"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// An output being written.
pub enum Sink {
    /// Standard output.
    Stdout(BufWriter<std::io::Stdout>),
    /// A file; nothing reaches the destination until [`Sink::finish`].
    File(OutputFile),
}

impl Sink {
    /// Flush, and for a file put it in place.
    pub fn finish(self) -> Result<()> {
        match self {
            Self::Stdout(mut out) => out.flush()?,
            Self::File(file) => file.commit()?,
        }
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Stdout(out) => out.write(buf),
            Self::File(file) => file.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Stdout(out) => out.flush(),
            Self::File(file) => file.flush(),
        }
    }
}

/// A text cell for a CSV file that a spreadsheet opens: a value starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return would run as a formula (OWASP's CSV injection rule), so
/// it gets a leading `'`, unless it is a plain number (`-3.5` stays a number).
pub fn spreadsheet_safe(cell: &str) -> String {
    let risky = cell
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    if risky && cell.parse::<f64>().is_err() {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// Text from the data made safe for a terminal: control characters (escape sequences,
/// bells, carriage returns) are shown escaped instead of acting.
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("+1+2"), "'+1+2");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("-3.5"), "-3.5");
        assert_eq!(spreadsheet_safe("plain"), "plain");
    }

    #[test]
    fn control_characters_do_not_reach_the_terminal() {
        assert_eq!(
            terminal_safe("a\u{1b}[31mb\u{7}\r"),
            "a\\u{1b}[31mb\\u{7}\\r"
        );
        assert_eq!(terminal_safe("naïve"), "naïve");
    }

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d.csv");
        std::fs::write(&data, "a\n1\n").unwrap();
        let same = dir.path().join(".").join("d.csv");
        let err = Destination::check(&same, std::slice::from_ref(&data), "scores").unwrap_err();
        assert!(err.to_string().contains("overwrite the input"), "{err}");
        #[cfg(unix)]
        {
            let link = dir.path().join("hard.csv");
            std::fs::hard_link(&data, &link).unwrap();
            assert!(Destination::check(&link, std::slice::from_ref(&data), "scores").is_err());
        }
        assert!(Destination::check(&dir.path().join("new.csv"), &[data], "scores").is_ok());
        assert!(Destination::check(Path::new("-"), &[], "scores")
            .unwrap()
            .is_stdout());
    }
}
