use std::collections::HashMap;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use crate::stream::{CsvChunks, TableChunks};
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

/// Builds a [`Column`], interning each distinct cell once.
pub(crate) struct ColumnBuilder {
    column: Column,
    map: HashMap<String, u32>,
}

impl ColumnBuilder {
    pub(crate) fn new(name: String) -> Self {
        Self {
            column: Column {
                name,
                values: Vec::new(),
                ids: Vec::new(),
            },
            map: HashMap::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) {
        let id = match self.map.get(text) {
            Some(&id) => id,
            None => {
                let id = self.column.values.len() as u32;
                self.map.insert(text.to_owned(), id);
                self.column.values.push(text.to_owned());
                id
            }
        };
        self.column.ids.push(id);
    }

    pub(crate) fn len(&self) -> usize {
        self.column.ids.len()
    }

    pub(crate) fn name(&self) -> &str {
        &self.column.name
    }

    pub(crate) fn finish(self) -> Column {
        self.column
    }
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

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Table {
    /// Read a CSV file, or a gzip-compressed one (`.gz` extension or gzip magic bytes),
    /// streaming: the file is never held in memory as text. A Parquet file (told by its
    /// magic bytes; the `parquet` feature) is read whole, every value as its display string
    /// (nulls as the empty cell, which is a missing marker by default); its row `i` is
    /// reported as line `i + 2`, the line it would have in a CSV export. The file is opened once, so a
    /// pipe or a process substitution (`<(...)`) reads as well as a file.
    ///
    /// # Errors
    /// [`DataError::Io`] when the file cannot be read, and the content errors of
    /// [`Table::from_reader`] ([`DataError::Gzip`] for a corrupt or truncated stream).
    pub fn read(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self, DataError> {
        Self::read_chunks(path, options, usize::MAX)?.into_table()
    }

    /// Read CSV, or gzip-compressed CSV (told by its magic bytes), from a stream such as
    /// standard input; `source` names it in errors.
    ///
    /// ```
    /// use std::io::Write;
    /// use gnsm_data::{CsvOptions, Table};
    /// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    /// gz.write_all(b"a,b\nx,1\n")?;
    /// let bytes = gz.finish()?;
    /// let table = Table::from_stream(&bytes[..], "<stdin>", &CsvOptions::default())?;
    /// assert_eq!(table.column(0).value(0), "x");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Table::read`].
    pub fn from_stream(
        reader: impl Read,
        source: &str,
        options: &CsvOptions,
    ) -> Result<Self, DataError> {
        Self::stream_chunks(reader, source, options, usize::MAX)?.into_table()
    }

    /// Sniff the magic bytes on the one stream (they are handed back to the parser), then
    /// read it as Parquet, gzip CSV (`gzip` forces it) or plain CSV, `rows` rows at a time.
    pub(crate) fn open_stream<'a>(
        mut reader: Box<dyn Read + 'a>,
        source: &str,
        options: &CsvOptions,
        gzip: bool,
        rows: usize,
    ) -> Result<TableChunks<'a>, DataError> {
        let io = |e: std::io::Error| DataError::Io {
            path: source.into(),
            source: e,
        };
        let mut magic = Vec::with_capacity(4);
        (&mut reader).take(4).read_to_end(&mut magic).map_err(io)?;
        if magic == crate::parquet::MAGIC {
            // Parquet keeps its index at the end: the file is read whole (compressed).
            reader.read_to_end(&mut magic).map_err(io)?;
            return crate::parquet::chunks(magic, source, rows);
        }
        let gz = gzip || magic.starts_with(&GZIP_MAGIC);
        let stream = BufReader::with_capacity(1 << 16, Cursor::new(magic).chain(reader));
        let text: Box<dyn Read + 'a> = if gz {
            Box::new(MultiGzDecoder::new(stream))
        } else {
            Box::new(stream)
        };
        Ok(TableChunks::csv(
            CsvChunks::open(text, source, options, gz)?,
            rows,
        ))
    }

    /// Read CSV text (not compressed) from any reader; `source` names it in errors.
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
        TableChunks::csv(
            CsvChunks::open(Box::new(reader), source, options, false)?,
            usize::MAX,
        )
        .into_table()
    }

    /// A table built in memory from named columns of cells (every cell a string, as read
    /// from a file); `source` names it in errors. Row `i` is reported as line `i + 2`, as if
    /// the columns had been written to a CSV file under a header.
    ///
    /// ```
    /// use gnsm_data::Table;
    /// let table = Table::from_columns(
    ///     "in-memory",
    ///     [("colour", vec!["red", "blue", "red"]), ("size", vec!["S", "M", "S"])],
    /// )?;
    /// assert_eq!((table.rows(), table.column_names()), (3, vec!["colour", "size"]));
    /// assert_eq!(table.column(0).distinct(), &["red".to_string(), "blue".to_string()]);
    /// assert_eq!(table.line(0), 2);
    /// # Ok::<(), gnsm_data::DataError>(())
    /// ```
    ///
    /// # Errors
    /// [`DataError::EmptyFile`] without columns, [`DataError::NoRows`] without rows,
    /// [`DataError::DuplicateColumn`], [`DataError::ColumnLength`] for columns of different
    /// lengths.
    pub fn from_columns<N, V, C>(
        source: &str,
        columns: impl IntoIterator<Item = (N, C)>,
    ) -> Result<Self, DataError>
    where
        N: Into<String>,
        V: AsRef<str>,
        C: IntoIterator<Item = V>,
    {
        let mut built: Vec<ColumnBuilder> = Vec::new();
        for (name, cells) in columns {
            let name = name.into();
            check_unique(source, &built, &name)?;
            let mut column = ColumnBuilder::new(name);
            for cell in cells {
                column.push(cell.as_ref());
            }
            if let Some(first) = built.first() {
                if first.len() != column.len() {
                    return Err(DataError::ColumnLength {
                        path: source.into(),
                        column: column.name().into(),
                        expected: first.len(),
                        got: column.len(),
                    });
                }
            }
            built.push(column);
        }
        Self::from_built(source, built)
    }

    /// A table from an Arrow IPC stream (the bytes pyarrow's `ipc.new_stream` writes): every
    /// value as its display string, nulls as the empty cell (a missing marker by default),
    /// as [`Table::read`] reads a Parquet file; row `i` is reported as line `i + 2`. Needs
    /// the `arrow` feature (without it, an error).
    ///
    /// ```
    /// # #[cfg(feature = "arrow")] {
    /// use std::sync::Arc;
    /// use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("colour", Arc::new(StringArray::from(vec![Some("red"), None])) as ArrayRef),
    ///     ("size", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
    /// ])
    /// .unwrap();
    /// let mut bytes = Vec::new();
    /// let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema()).unwrap();
    /// writer.write(&batch).unwrap();
    /// writer.finish().unwrap();
    /// drop(writer);
    /// let table = gnsm_data::Table::from_arrow_ipc(&bytes, "frame")?;
    /// assert_eq!(table.column_names(), vec!["colour", "size"]);
    /// assert_eq!((table.column(0).value(1), table.column(1).value(1)), ("", "2"));
    /// # }
    /// # Ok::<(), gnsm_data::DataError>(())
    /// ```
    ///
    /// # Errors
    /// [`DataError::Arrow`] for bytes that are not an Arrow stream (or a build without the
    /// feature), [`DataError::EmptyFile`], [`DataError::NoRows`],
    /// [`DataError::DuplicateColumn`].
    pub fn from_arrow_ipc(bytes: &[u8], source: &str) -> Result<Self, DataError> {
        crate::arrow::read_ipc_stream(bytes, source)
    }

    /// A table of equally long built columns with the line of each row.
    pub(crate) fn from_parts(source: &str, built: Vec<ColumnBuilder>, lines: Vec<u64>) -> Self {
        Self {
            source: source.into(),
            columns: built.into_iter().map(ColumnBuilder::finish).collect(),
            lines,
        }
    }

    /// A table of equally long built columns, row `i` at line `i + 2`.
    pub(crate) fn from_built(source: &str, built: Vec<ColumnBuilder>) -> Result<Self, DataError> {
        let Some(rows) = built.first().map(ColumnBuilder::len) else {
            return Err(DataError::EmptyFile {
                path: source.into(),
            });
        };
        if rows == 0 {
            return Err(DataError::NoRows {
                path: source.into(),
            });
        }
        Ok(Self {
            source: source.into(),
            columns: built.into_iter().map(ColumnBuilder::finish).collect(),
            lines: (2..rows as u64 + 2).collect(),
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

/// [`DataError::DuplicateColumn`] when `name` is already among `built`.
pub(crate) fn check_unique(
    source: &str,
    built: &[ColumnBuilder],
    name: &str,
) -> Result<(), DataError> {
    match built.iter().position(|c| c.name() == name) {
        Some(first) => Err(DataError::DuplicateColumn {
            path: source.into(),
            name: name.into(),
            first: first + 1,
            second: built.len() + 1,
        }),
        None => Ok(()),
    }
}
