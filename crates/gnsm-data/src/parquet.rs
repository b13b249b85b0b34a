//! Parquet input: every column's values as their display strings, interned like CSV cells.

use crate::stream::TableChunks;
use crate::DataError;
#[cfg(feature = "parquet")]
use crate::Table;

/// The first (and last) four bytes of a Parquet file.
pub(crate) const MAGIC: &[u8; 4] = b"PAR1";

/// A Parquet file's rows decoded a batch at a time, handed out as tables of at most a given
/// number of rows (row `i` of the file at line `i + 2`, as [`read`] numbers them).
#[cfg(feature = "parquet")]
pub(crate) struct ParquetChunks {
    source: String,
    names: Vec<String>,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    pending: Option<arrow_array::RecordBatch>,
    next_line: u64,
}

#[cfg(feature = "parquet")]
impl ParquetChunks {
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The next at most `rows` rows, `None` at the end.
    pub(crate) fn next_chunk(&mut self, rows: usize) -> Result<Option<Table>, DataError> {
        let source = self.source.clone();
        let bad = |message: String| DataError::Parquet {
            path: source.clone(),
            message,
        };
        let mut columns = crate::arrow::BatchColumns::from_names(&self.source, &self.names);
        let mut count = 0usize;
        loop {
            let batch = match self.pending.take() {
                Some(batch) => batch,
                None => match self.reader.next() {
                    Some(batch) => batch.map_err(|e| bad(e.to_string()))?,
                    None => break,
                },
            };
            if count > 0 && count + batch.num_rows() > rows {
                self.pending = Some(batch);
                break;
            }
            count += batch.num_rows();
            columns.push(&batch, &bad)?;
            if count >= rows {
                break;
            }
        }
        if count == 0 {
            return Ok(None);
        }
        let lines = (self.next_line..self.next_line + count as u64).collect();
        self.next_line += count as u64;
        Ok(Some(columns.finish_with_lines(lines)))
    }
}

/// A Parquet file read `rows` rows at a time (batches of at most `rows`, 8,192 at most).
#[cfg(feature = "parquet")]
pub(crate) fn chunks(
    bytes: Vec<u8>,
    source: &str,
    rows: usize,
) -> Result<TableChunks<'static>, DataError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let bad = |message: String| DataError::Parquet {
        path: source.into(),
        message,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| bad(e.to_string()))?;
    let names = crate::arrow::BatchColumns::new(source, builder.schema())?.names();
    if names.is_empty() {
        return Err(DataError::EmptyFile {
            path: source.into(),
        });
    }
    let reader = builder
        .with_batch_size(rows.clamp(1, 8192))
        .build()
        .map_err(|e| bad(e.to_string()))?;
    Ok(TableChunks::parquet(
        ParquetChunks {
            source: source.into(),
            names,
            reader,
            pending: None,
            next_line: 2,
        },
        rows,
    ))
}

/// Without the `parquet` feature a Parquet file is a clear error, not garbled CSV.
#[cfg(not(feature = "parquet"))]
pub(crate) fn chunks(
    _bytes: Vec<u8>,
    source: &str,
    _rows: usize,
) -> Result<TableChunks<'static>, DataError> {
    Err(DataError::Parquet {
        path: source.into(),
        message: "a Parquet file; this build reads Parquet only with the `parquet` feature \
                  (on by default in the gnsm command)"
            .into(),
    })
}
