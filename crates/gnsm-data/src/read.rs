use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use crate::DataError;

/// How a CSV file is parsed. Every cell is read as a string: `1`, `01` and `94` stay
/// categories unless a column is declared continuous.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CsvOptions {
    /// Field delimiter (default `,`).
    pub delimiter: u8,
    /// Quote character (default `"`).
    pub quote: u8,
    /// Whether quotes are interpreted at all (default true).
    pub quoting: bool,
    /// Trim surrounding whitespace from every field (default false: census values keep
    /// their spelling).
    pub trim: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
            quoting: true,
            trim: false,
        }
    }
}

/// One column of a [`Table`]: its distinct strings in order of first appearance, and one
/// index into them per row. Interning keeps a 300k-row file at 4 bytes per cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    name: String,
    values: Vec<String>,
    ids: Vec<u32>,
}

impl Column {
    /// The header name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Distinct values, in order of first appearance.
    pub fn distinct(&self) -> &[String] {
        &self.values
    }

    /// Per-row index into [`Column::distinct`].
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The value of row `row`.
    pub fn value(&self, row: usize) -> &str {
        &self.values[self.ids[row] as usize]
    }
}

/// A CSV file read into memory as interned string columns, with the line number of every
/// row for error messages.
///
/// ```
/// use gnsm_data::{CsvOptions, Table};
/// let csv = "colour,size,label\nred,1,0\nblue,01,0\nred,1,1\n";
/// let table = Table::from_reader(csv.as_bytes(), "inline.csv", &CsvOptions::default())?;
/// assert_eq!(table.rows(), 3);
/// assert_eq!(table.column_names(), vec!["colour", "size", "label"]);
/// // `1` and `01` are different categories: cells are strings.
/// assert_eq!(table.column(1).distinct(), &["1".to_string(), "01".to_string()]);
/// assert_eq!(table.line(2), 4);
/// # Ok::<(), gnsm_data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    source: String,
    columns: Vec<Column>,
    lines: Vec<u64>,
}

fn is_gzip(path: &Path) -> std::io::Result<bool> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
    {
        return Ok(true);
    }
    let mut magic = [0u8; 2];
    let n = File::open(path)?.read(&mut magic)?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

impl Table {
    /// Read a CSV file, or a gzip-compressed one (`.gz` extension or gzip magic bytes),
    /// streaming: the file is never held in memory as text.
    ///
    /// # Errors
    /// [`DataError::Io`] when the file cannot be read, and the content errors of
    /// [`Table::from_reader`] ([`DataError::Gzip`] for a corrupt or truncated stream).
    pub fn read(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self, DataError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let io = |source| DataError::Io {
            path: shown.clone(),
            source,
        };
        let gz = is_gzip(path).map_err(io)?;
        let file = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
        if gz {
            Self::parse(MultiGzDecoder::new(file), &shown, options, true)
        } else {
            Self::parse(file, &shown, options, false)
        }
    }

    /// Read CSV text from any reader; `source` names it in errors.
    ///
    /// # Errors
    /// [`DataError::EmptyFile`], [`DataError::NoRows`], [`DataError::Ragged`],
    /// [`DataError::DuplicateColumn`], [`DataError::Utf8`], [`DataError::Csv`],
    /// [`DataError::Io`].
    pub fn from_reader(
        reader: impl Read,
        source: &str,
        options: &CsvOptions,
    ) -> Result<Self, DataError> {
        Self::parse(reader, source, options, false)
    }

    fn parse(
        reader: impl Read,
        source: &str,
        options: &CsvOptions,
        gz: bool,
    ) -> Result<Self, DataError> {
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .quote(options.quote)
            .quoting(options.quoting)
            .trim(if options.trim {
                csv::Trim::All
            } else {
                csv::Trim::None
            })
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        let mut record = csv::ByteRecord::new();
        let mut last_line = 1u64;
        let csv_error = |e: csv::Error, line: u64| -> DataError {
            let line = e.position().map_or(line, |p| p.line());
            match e.into_kind() {
                csv::ErrorKind::Io(err) if gz => DataError::Gzip {
                    path: source.into(),
                    line,
                    message: err.to_string(),
                },
                csv::ErrorKind::Io(err) => DataError::Io {
                    path: source.into(),
                    source: err,
                },
                other => DataError::Csv {
                    path: source.into(),
                    line,
                    message: format!("{other:?}"),
                },
            }
        };
        let to_str = |bytes: &[u8], line: u64, field: usize| -> Result<String, DataError> {
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| DataError::Utf8 {
                    path: source.into(),
                    line,
                    field: field + 1,
                })
        };

        // Header.
        if !csv
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(e, 1))?
        {
            return Err(DataError::EmptyFile {
                path: source.into(),
            });
        }
        let header: Vec<String> = record
            .iter()
            .enumerate()
            .map(|(i, f)| to_str(f, 1, i))
            .collect::<Result<_, _>>()?;
        if header.len() == 1 && header[0].is_empty() {
            return Err(DataError::EmptyFile {
                path: source.into(),
            });
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            if let Some(first) = seen.insert(name, i) {
                return Err(DataError::DuplicateColumn {
                    path: source.into(),
                    name: name.clone(),
                    first: first + 1,
                    second: i + 1,
                });
            }
        }
        let width = header.len();
        let mut maps: Vec<HashMap<String, u32>> = vec![HashMap::new(); width];
        let mut columns: Vec<Column> = header
            .into_iter()
            .map(|name| Column {
                name,
                values: Vec::new(),
                ids: Vec::new(),
            })
            .collect();
        let mut lines = Vec::new();

        loop {
            match csv.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_error(e, last_line + 1)),
            }
            let line = record.position().map_or(last_line + 1, |p| p.line());
            last_line = line;
            // A blank line parses as one empty field; skip it like most readers do.
            if record.len() == 1 && record[0].is_empty() && width > 1 {
                continue;
            }
            if record.len() != width {
                return Err(DataError::Ragged {
                    path: source.into(),
                    line,
                    expected: width,
                    got: record.len(),
                });
            }
            for (field, (bytes, (column, map))) in record
                .iter()
                .zip(columns.iter_mut().zip(maps.iter_mut()))
                .enumerate()
            {
                let text = std::str::from_utf8(bytes).map_err(|_| DataError::Utf8 {
                    path: source.into(),
                    line,
                    field: field + 1,
                })?;
                let id = match map.get(text) {
                    Some(&id) => id,
                    None => {
                        let id = column.values.len() as u32;
                        map.insert(text.to_owned(), id);
                        column.values.push(text.to_owned());
                        id
                    }
                };
                column.ids.push(id);
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(DataError::NoRows {
                path: source.into(),
            });
        }
        Ok(Self {
            source: source.into(),
            columns,
            lines,
        })
    }

    /// The file name (or the name given to [`Table::from_reader`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Number of data rows.
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// The columns, in header order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Column `i`.
    pub fn column(&self, i: usize) -> &Column {
        &self.columns[i]
    }

    /// Header names.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// Position of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The 1-based line of row `row` in the file (the header is line 1).
    pub fn line(&self, row: usize) -> u64 {
        self.lines[row]
    }
}
