//! Arrow input: the record batches of a Parquet file or an Arrow IPC stream as a [`Table`],
//! every value as its display string (nulls as the empty cell), interned like CSV cells.

#[cfg(feature = "arrow")]
use crate::read::{check_unique, ColumnBuilder};
use crate::{DataError, Table};

/// Columns being filled from record batches, one builder per field.
#[cfg(feature = "arrow")]
pub(crate) struct BatchColumns {
    source: String,
    columns: Vec<ColumnBuilder>,
    cell: String,
}

#[cfg(feature = "arrow")]
impl BatchColumns {
    /// Builders for the fields of `schema`; a repeated field name is an error.
    pub(crate) fn new(source: &str, schema: &arrow_schema::Schema) -> Result<Self, DataError> {
        let mut columns: Vec<ColumnBuilder> = Vec::new();
        for field in schema.fields() {
            check_unique(source, &columns, field.name())?;
            columns.push(ColumnBuilder::new(field.name().clone()));
        }
        Ok(Self {
            source: source.into(),
            columns,
            cell: String::new(),
        })
    }

    /// Builders for columns named `names` (already checked unique).
    #[cfg(feature = "parquet")]
    pub(crate) fn from_names(source: &str, names: &[String]) -> Self {
        Self {
            source: source.into(),
            columns: names.iter().cloned().map(ColumnBuilder::new).collect(),
            cell: String::new(),
        }
    }

    /// The column names.
    #[cfg(feature = "parquet")]
    pub(crate) fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name().to_owned()).collect()
    }

    /// Append a batch's rows; `bad` turns a message into the caller's error.
    pub(crate) fn push(
        &mut self,
        batch: &arrow_array::RecordBatch,
        bad: &dyn Fn(String) -> DataError,
    ) -> Result<(), DataError> {
        use arrow_cast::display::{ArrayFormatter, FormatOptions};
        use std::fmt::Write;
        if batch.num_columns() != self.columns.len() {
            return Err(bad(format!(
                "a record batch of {} columns in a schema of {}",
                batch.num_columns(),
                self.columns.len()
            )));
        }
        // Nulls read as the empty cell, a missing marker of the default schema options.
        let format = FormatOptions::default().with_null("");
        for (column, array) in self.columns.iter_mut().zip(batch.columns()) {
            let values = ArrayFormatter::try_new(array.as_ref(), &format)
                .map_err(|e| bad(format!("column {:?}: {e}", column.name())))?;
            for row in 0..batch.num_rows() {
                self.cell.clear();
                write!(self.cell, "{}", values.value(row))
                    .map_err(|e| bad(format!("column {:?}: {e}", column.name())))?;
                column.push(&self.cell);
            }
        }
        Ok(())
    }

    /// The table of every batch pushed.
    pub(crate) fn finish(self) -> Result<Table, DataError> {
        Table::from_built(&self.source, self.columns)
    }

    /// The table of the batches pushed, its rows at `lines`.
    #[cfg(feature = "parquet")]
    pub(crate) fn finish_with_lines(self, lines: Vec<u64>) -> Table {
        Table::from_parts(&self.source, self.columns, lines)
    }
}

/// The rows of an Arrow IPC stream as a [`Table`].
#[cfg(feature = "arrow")]
pub(crate) fn read_ipc_stream(bytes: &[u8], source: &str) -> Result<Table, DataError> {
    let bad = |message: String| DataError::Arrow {
        path: source.into(),
        message,
    };
    let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|e| bad(e.to_string()))?;
    let mut columns = BatchColumns::new(source, &reader.schema())?;
    for batch in reader {
        columns.push(&batch.map_err(|e| bad(e.to_string()))?, &bad)?;
    }
    columns.finish()
}

/// Without the `arrow` feature an Arrow stream is a clear error.
#[cfg(not(feature = "arrow"))]
pub(crate) fn read_ipc_stream(_bytes: &[u8], source: &str) -> Result<Table, DataError> {
    Err(DataError::Arrow {
        path: source.into(),
        message: "this build reads Arrow streams only with the `arrow` feature".into(),
    })
}
