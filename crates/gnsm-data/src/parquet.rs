//! Parquet input: every column's values as their display strings, interned like CSV cells.

use crate::{DataError, Table};

/// The first (and last) four bytes of a Parquet file.
pub(crate) const MAGIC: &[u8; 4] = b"PAR1";

/// A Parquet file's rows as a [`Table`]; `source` names it in errors.
#[cfg(feature = "parquet")]
pub(crate) fn read(bytes: Vec<u8>, source: &str) -> Result<Table, DataError> {
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use crate::read::{check_unique, ColumnBuilder};

    let bad = |message: String| DataError::Parquet {
        path: source.into(),
        message,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| bad(e.to_string()))?;
    let mut columns: Vec<ColumnBuilder> = Vec::new();
    for field in builder.schema().fields() {
        check_unique(source, &columns, field.name())?;
        columns.push(ColumnBuilder::new(field.name().clone()));
    }
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    // Nulls read as the empty cell, a missing marker of the default schema options.
    let format = FormatOptions::default().with_null("");
    let mut cell = String::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        for (column, array) in columns.iter_mut().zip(batch.columns()) {
            let values = ArrayFormatter::try_new(array.as_ref(), &format)
                .map_err(|e| bad(format!("column {:?}: {e}", column.name())))?;
            for row in 0..batch.num_rows() {
                cell.clear();
                use std::fmt::Write;
                write!(cell, "{}", values.value(row)).map_err(|e| bad(e.to_string()))?;
                column.push(&cell);
            }
        }
    }
    Table::from_built(source, columns)
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
