use thiserror::Error;

/// Everything that can go wrong in `gnsm-data`. Errors about file contents name the file,
/// the line (1-based, the header being line 1) and, where there is one, the column and value.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file cannot be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A gzip stream that is corrupt or truncated.
    #[error("{path}: corrupt or truncated gzip stream near line {line}: {message}")]
    Gzip {
        /// The file.
        path: String,
        /// The last line read before the failure.
        line: u64,
        /// The decoder's message.
        message: String,
    },
    /// A file with no header row.
    #[error("{path}: the file is empty (a header row is required)")]
    EmptyFile {
        /// The file.
        path: String,
    },
    /// A file with a header but no data rows.
    #[error("{path}: the file has a header but no data rows")]
    NoRows {
        /// The file.
        path: String,
    },
    /// A row with a different number of fields than the header.
    #[error("{path}, line {line}: {got} fields, but the header has {expected}")]
    Ragged {
        /// The file.
        path: String,
        /// The line.
        line: u64,
        /// Fields in the header.
        expected: usize,
        /// Fields in the row.
        got: usize,
    },
    /// A Parquet file that cannot be read.
    #[error("{path}: cannot read as Parquet: {message}")]
    Parquet {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// An Arrow IPC stream that cannot be read ([`Table::from_arrow_ipc`](crate::Table::from_arrow_ipc)).
    #[error("{path}: cannot read as an Arrow stream: {message}")]
    Arrow {
        /// The table's name.
        path: String,
        /// Why.
        message: String,
    },
    /// In-memory columns of different lengths ([`Table::from_columns`](crate::Table::from_columns)).
    #[error("{path}: column {column:?} has {got} values, the first column {expected}")]
    ColumnLength {
        /// The table's name.
        path: String,
        /// The column.
        column: String,
        /// Values in the first column.
        expected: usize,
        /// Values in this one.
        got: usize,
    },
    /// Bytes that are not UTF-8.
    #[error("{path}, line {line}: invalid UTF-8 in field {field}")]
    Utf8 {
        /// The file.
        path: String,
        /// The line.
        line: u64,
        /// The 1-based field.
        field: usize,
    },
    /// Any other CSV syntax error.
    #[error("{path}, line {line}: {message}")]
    Csv {
        /// The file.
        path: String,
        /// The line.
        line: u64,
        /// The parser's message.
        message: String,
    },
    /// Two columns with one name.
    #[error(
        "{path}: column name {name:?} appears twice in the header (columns {first} and {second})"
    )]
    DuplicateColumn {
        /// The file.
        path: String,
        /// The name.
        name: String,
        /// 1-based position of the first.
        first: usize,
        /// 1-based position of the second.
        second: usize,
    },
    /// An option names a column that the file lacks.
    #[error("{option} names column {name:?}, which is not in the header (columns: {available})")]
    UnknownColumn {
        /// Which option.
        option: &'static str,
        /// The name.
        name: String,
        /// The header, comma-separated.
        available: String,
    },
    /// A label column whose values are not the two expected ones.
    #[error("{path}, line {line}: label column {column:?} has value {value:?}; expected one of {expected:?}")]
    LabelValue {
        /// The file.
        path: String,
        /// The line.
        line: u64,
        /// The label column.
        column: String,
        /// The value found.
        value: String,
        /// The allowed values.
        expected: Vec<String>,
    },
    /// A label column that does not have exactly two values, or an unknown anomaly value.
    #[error("label column {column:?}: {message}")]
    Label {
        /// The label column.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A value in a continuous column that is not a finite number.
    #[error("{path}, line {line}, column {column:?}: {value:?} is not a finite number (declare the column categorical or ignored, or fix the value)")]
    NotNumeric {
        /// The file.
        path: String,
        /// The line.
        line: u64,
        /// The column.
        column: String,
        /// The value.
        value: String,
    },
    /// A missing value in a continuous column under the `Error` policy.
    #[error("{path}, line {line}, column {column:?}: missing value {value:?} in a continuous column (set the missing policy to impute the training mean, or fix the value)")]
    MissingContinuous {
        /// The file.
        path: String,
        /// The line.
        line: u64,
        /// The column.
        column: String,
        /// The value.
        value: String,
    },
    /// A categorical column with more distinct values than allowed.
    #[error("column {column:?} has {distinct} distinct values, more than the limit of {limit} for a categorical column: it is probably an identifier or a number; declare it continuous or ignored, or raise the limit")]
    TooManyCategories {
        /// The column.
        column: String,
        /// Its distinct values.
        distinct: usize,
        /// The limit.
        limit: usize,
    },
    /// A categorical column with a distinct value in (nearly) every row: an identifier.
    #[error("column {column:?} has {distinct} distinct values in {rows} rows: it looks like an identifier, which carries no information about how typical a row is; ignore it (--ignore {column}) or declare it categorical (--categorical {column}) to keep it")]
    IdentifierColumn {
        /// The column.
        column: String,
        /// Its distinct values.
        distinct: usize,
        /// Rows in the table.
        rows: usize,
    },
    /// A standardised continuous value that does not fit the encoding (f32).
    #[error("{path}, line {line}, column {column:?}: value {value:?} is out of range ({standardised} after standardising with mean {mean} and std {std}); fix the value or ignore the column")]
    OutOfRange {
        /// The file.
        path: String,
        /// The line.
        line: u64,
        /// The column.
        column: String,
        /// The cell as written.
        value: String,
        /// The standardised value.
        standardised: f64,
        /// The training mean.
        mean: f64,
        /// The training standard deviation.
        std: f64,
    },
    /// A category not seen when the schema was fitted, under the `Error` policy.
    #[error("{path}, line {line}, column {column:?}: category {value:?} was not seen when the schema was fitted")]
    UnseenCategory {
        /// The file.
        path: String,
        /// The line.
        line: u64,
        /// The column.
        column: String,
        /// The value.
        value: String,
    },
    /// A schema that cannot be used (not fitted, newer version, inconsistent).
    #[error("schema: {0}")]
    Schema(String),
    /// No categorical or continuous feature left, or a group with one category.
    #[error("feature layout: {0}")]
    Layout(#[from] gnsm_noise::NoiseError),
    /// A dataset directory or registry problem.
    #[error("{0}")]
    Dataset(String),
}
