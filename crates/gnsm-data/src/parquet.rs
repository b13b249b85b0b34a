//! Parquet input: every column's values as their display strings, interned like CSV cells.

use crate::{DataError, Table};

/// The first (and last) four bytes of a Parquet file.
pub(crate) const MAGIC: &[u8; 4] = b"PAR1";

/// A Parquet file's rows as a [`Table`]; `source` names it in errors.
#[cfg(feature = "parquet")]
pub(crate) fn read(bytes: Vec<u8>, source: &str) -> Result<Table, DataError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let bad = |message: String| DataError::Parquet {
        path: source.into(),
        message,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| bad(e.to_string()))?;
    let mut columns = crate::arrow::BatchColumns::new(source, builder.schema())?;
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    for batch in reader {
        columns.push(&batch.map_err(|e| bad(e.to_string()))?, &bad)?;
    }
    columns.finish()
}

/// Without the `parquet` feature a Parquet file is a clear error, not garbled CSV.
#[cfg(not(feature = "parquet"))]
pub(crate) fn read(_bytes: Vec<u8>, source: &str) -> Result<Table, DataError> {
    Err(DataError::Parquet {
        path: source.into(),
        message: "a Parquet file; this build reads Parquet only with the `parquet` feature \
                  (on by default in the gnsm command)"
            .into(),
    })
}
