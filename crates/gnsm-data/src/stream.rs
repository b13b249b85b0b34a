//! Tables read a bounded number of rows at a time ([`Table::read_chunks`]): the CSV parser
//! behind every CSV read, and Parquet files decoded a batch at a time.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use crate::read::ColumnBuilder;
use crate::{CsvOptions, DataError, Table};

/// Where the newlines of a stream are, so that a byte offset can be turned into a line. The
/// csv crate's own line count is one too low on CRLF files (rust-csv issue 395), so lines
/// are counted here from the bytes.
#[derive(Debug, Default)]
struct NewlineLog {
    /// Offsets of `\n` bytes read but not yet passed by [`NewlineLog::line_of`].
    pending: VecDeque<u64>,
    /// Newlines before the last offset asked about.
    passed: u64,
    /// Bytes read so far.
    read: u64,
}

impl NewlineLog {
    /// The 1-based line holding byte `offset` (offsets asked about never decrease).
    fn line_of(&mut self, offset: u64) -> u64 {
        // `<=`: on CRLF files the csv crate puts a record's start on the `\n` of the
        // previous line's terminator; no record starts at a newline otherwise.
        while self.pending.front().is_some_and(|&nl| nl <= offset) {
            self.pending.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

/// A reader that logs where its newlines are.
struct LineCounting<R> {
    inner: R,
    log: Rc<RefCell<NewlineLog>>,
}

impl<R: Read> Read for LineCounting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut log = self.log.borrow_mut();
        let base = log.read;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' {
                log.pending.push_back(base + i as u64);
            }
        }
        log.read += n as u64;
        Ok(n)
    }
}

/// A CSV stream after its header: hands out its rows as tables of at most a given size.
pub(crate) struct CsvChunks<'a> {
    csv: csv::Reader<LineCounting<Box<dyn Read + 'a>>>,
    newlines: Rc<RefCell<NewlineLog>>,
    source: String,
    header: Vec<String>,
    gz: bool,
    last_line: u64,
    record: csv::ByteRecord,
}

impl<'a> CsvChunks<'a> {
    /// Read the header of `reader` (plain CSV text; `gz` only changes how read errors are
    /// reported).
    pub(crate) fn open(
        reader: Box<dyn Read + 'a>,
        source: &str,
        options: &CsvOptions,
        gz: bool,
    ) -> Result<Self, DataError> {
        let newlines = Rc::new(RefCell::new(NewlineLog::default()));
        let csv = csv::ReaderBuilder::new()
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
            .from_reader(LineCounting {
                inner: reader,
                log: Rc::clone(&newlines),
            });
        let mut chunks = Self {
            csv,
            newlines,
            source: source.into(),
            header: Vec::new(),
            gz,
            last_line: 1,
            record: csv::ByteRecord::new(),
        };
        if !chunks
            .csv
            .read_byte_record(&mut chunks.record)
            .map_err(|e| chunks.csv_error(e, 1))?
        {
            return Err(DataError::EmptyFile {
                path: source.into(),
            });
        }
        let header: Vec<String> = chunks
            .record
            .iter()
            .enumerate()
            .map(|(field, bytes)| chunks.text(bytes, 1, field).map(str::to_owned))
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
        chunks.header = header;
        Ok(chunks)
    }

    fn line_at(&self, byte: u64) -> u64 {
        self.newlines.borrow_mut().line_of(byte)
    }

    fn csv_error(&self, e: csv::Error, line: u64) -> DataError {
        let line = e.position().map_or(line, |p| self.line_at(p.byte()));
        match e.into_kind() {
            csv::ErrorKind::Io(err) if self.gz => DataError::Gzip {
                path: self.source.clone(),
                line,
                message: err.to_string(),
            },
            csv::ErrorKind::Io(err) => DataError::Io {
                path: self.source.clone(),
                source: err,
            },
            other => DataError::Csv {
                path: self.source.clone(),
                line,
                message: format!("{other:?}"),
            },
        }
    }

    fn text<'b>(&self, bytes: &'b [u8], line: u64, field: usize) -> Result<&'b str, DataError> {
        std::str::from_utf8(bytes).map_err(|_| DataError::Utf8 {
            path: self.source.clone(),
            line,
            field: field + 1,
        })
    }

    /// The next at most `rows` data rows (blank lines skipped), `None` at the end.
    pub(crate) fn next_chunk(&mut self, rows: usize) -> Result<Option<Table>, DataError> {
        let width = self.header.len();
        let mut columns: Vec<ColumnBuilder> = self
            .header
            .iter()
            .cloned()
            .map(ColumnBuilder::new)
            .collect();
        let mut lines = Vec::new();
        while lines.len() < rows {
            match self.csv.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(self.csv_error(e, self.last_line + 1)),
            }
            let line = self
                .record
                .position()
                .map_or(self.last_line + 1, |p| self.line_at(p.byte()));
            self.last_line = line;
            // A blank line parses as one empty field; skip it like most readers do.
            if self.record.len() == 1 && self.record[0].is_empty() && width > 1 {
                continue;
            }
            if self.record.len() != width {
                return Err(DataError::Ragged {
                    path: self.source.clone(),
                    line,
                    expected: width,
                    got: self.record.len(),
                });
            }
            for (field, (bytes, column)) in self.record.iter().zip(columns.iter_mut()).enumerate() {
                column.push(self.text(bytes, line, field)?);
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(Table::from_parts(&self.source, columns, lines)))
    }
}

/// A file's rows, a bounded number at a time: every chunk is a [`Table`] with the file's
/// columns and the rows' own line numbers. Made by [`Table::read_chunks`] or
/// [`Table::stream_chunks`].
pub struct TableChunks<'a> {
    inner: Chunks<'a>,
    rows: usize,
    yielded: bool,
}

enum Chunks<'a> {
    Csv(Box<CsvChunks<'a>>),
    #[cfg(feature = "parquet")]
    Parquet(crate::parquet::ParquetChunks),
    Done,
}

impl Chunks<'_> {
    fn source(&self) -> &str {
        match self {
            Chunks::Csv(csv) => &csv.source,
            #[cfg(feature = "parquet")]
            Chunks::Parquet(p) => p.source(),
            Chunks::Done => "",
        }
    }
}

impl<'a> TableChunks<'a> {
    /// Every row as one table: the first chunk of a reader opened with `usize::MAX` rows
    /// (which is the whole file, or the file's error).
    pub(crate) fn into_table(mut self) -> Result<Table, DataError> {
        let source = self.inner.source().to_owned();
        self.next()
            .unwrap_or(Err(DataError::NoRows { path: source }))
    }

    pub(crate) fn csv(chunks: CsvChunks<'a>, rows: usize) -> Self {
        Self {
            inner: Chunks::Csv(Box::new(chunks)),
            rows: rows.max(1),
            yielded: false,
        }
    }

    #[cfg(feature = "parquet")]
    pub(crate) fn parquet(chunks: crate::parquet::ParquetChunks, rows: usize) -> Self {
        Self {
            inner: Chunks::Parquet(chunks),
            rows: rows.max(1),
            yielded: false,
        }
    }
}

impl Iterator for TableChunks<'_> {
    type Item = Result<Table, DataError>;

    /// The next chunk. A file without data rows gives one [`DataError::NoRows`]; after an
    /// error the iterator ends.
    fn next(&mut self) -> Option<Self::Item> {
        let next = match &mut self.inner {
            Chunks::Csv(csv) => csv.next_chunk(self.rows),
            #[cfg(feature = "parquet")]
            Chunks::Parquet(p) => p.next_chunk(self.rows),
            Chunks::Done => return None,
        };
        match next {
            Ok(Some(table)) => {
                self.yielded = true;
                Some(Ok(table))
            }
            Ok(None) => {
                let source = self.inner.source().to_owned();
                self.inner = Chunks::Done;
                (!self.yielded).then_some(Err(DataError::NoRows { path: source }))
            }
            Err(e) => {
                self.inner = Chunks::Done;
                Some(Err(e))
            }
        }
    }
}

impl Table {
    /// Read a file as [`Table::read`] does, but at most `rows` rows at a time, so memory
    /// stays bounded however long the file is (CSV and gzip CSV stream; a Parquet file's
    /// compressed bytes are held, its rows decoded a batch at a time). Every chunk has the
    /// file's columns; lines are the file's.
    ///
    /// ```
    /// use gnsm_data::{CsvOptions, Table};
    /// let csv = "colour,size\nred,S\n\nblue,M\nred,L\n";
    /// let chunks: Vec<Table> = Table::stream_chunks(csv.as_bytes(), "inline.csv", &CsvOptions::default(), 2)?
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(chunks.len(), 2);
    /// assert_eq!((chunks[0].rows(), chunks[1].rows()), (2, 1));
    /// assert_eq!(chunks[1].column(1).value(0), "L");
    /// assert_eq!(chunks[1].line(0), 5); // the blank line 3 was skipped
    /// # Ok::<(), gnsm_data::DataError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Table::read`]: opening and header errors here, row errors from the iterator.
    pub fn read_chunks(
        path: impl AsRef<Path>,
        options: &CsvOptions,
        rows: usize,
    ) -> Result<TableChunks<'static>, DataError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| DataError::Io {
            path: shown.clone(),
            source,
        })?;
        let by_name = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        Self::open_stream(Box::new(file), &shown, options, by_name, rows)
    }

    /// [`Table::read_chunks`] on a stream such as standard input (CSV, gzip CSV or
    /// Parquet, told by the first bytes); `source` names it in errors.
    ///
    /// # Errors
    /// As [`Table::read_chunks`].
    pub fn stream_chunks<'a>(
        reader: impl Read + 'a,
        source: &str,
        options: &CsvOptions,
        rows: usize,
    ) -> Result<TableChunks<'a>, DataError> {
        Self::open_stream(Box::new(reader), source, options, false, rows)
    }
}
