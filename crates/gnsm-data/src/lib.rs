//! Schema-aware reading and encoding of tabular files for Gumbel Noise Score Matching.
//!
//! 1. [`Table::read`] streams a CSV or gzip-compressed CSV into interned string columns
//!    (every cell a string: `1`, `01`, `94` are categories unless declared continuous),
//!    keeping each row's line number for error messages; [`Table::read_chunks`] reads any
//!    file (CSV, gzip CSV, Parquet) a bounded number of rows at a time.
//! 2. [`Schema::infer`] decides each column's kind from the user's overrides;
//!    [`Schema::fit`] learns the sorted vocabularies and the continuous statistics from the
//!    chosen rows; the schema yields the [`gnsm_noise::FeatureLayout`] and round-trips
//!    through versioned JSON.
//! 3. [`Schema::encode`] writes the reference input: the standardised continuous block, then
//!    each categorical group as `log(clip(one_hot, 1e-5, 1))`; [`Schema::decode_row`] goes
//!    back to strings for reports.
//! 4. [`paper_split`] is the paper's seeded 80/10/10 inlier split, and [`PaperDataset`] the
//!    registry of the seven Table 2 datasets ([`default_data_dir`]).
//!
//! Bad input is an error that names the file, line, column and value — never a panic.
//!
//! ```
//! use gnsm_data::{CsvOptions, Schema, SchemaOptions, Table};
//! let csv = "a,b\nx,1\ny,2\nx,2\n";
//! let table = Table::from_reader(csv.as_bytes(), "inline.csv", &CsvOptions::default())?;
//! let mut schema = Schema::infer(&table, &SchemaOptions::default())?;
//! schema.fit(&table, &[0, 1, 2])?;
//! let encoded = schema.encode(&table)?;
//! // Groups {x, y, <unseen>} and {1, 2, <unseen>}; row 0 = (x, 1).
//! let cold = gnsm_noise::LOG_ONE_HOT_COLD;
//! assert_eq!(encoded.row(0), &[0.0, cold, cold, 0.0, cold, cold]);
//! # Ok::<(), gnsm_data::DataError>(())
//! ```

mod arrow;
mod encode;
mod error;
mod io;
mod parquet;
mod read;
mod registry;
mod schema;
mod split;
mod stream;

pub use encode::{labels_of, rows_with_label, Encoded, Encoding};
pub use error::DataError;
pub use io::{same_file, OutputFile, OutputKind};
pub use read::{Column, CsvOptions, Table};
pub use registry::{default_data_dir, PaperData, PaperDataset};
pub use schema::{
    ColumnKind, ColumnSchema, LabelSpec, MissingContinuous, Schema, SchemaOptions, UnseenPolicy,
    SCHEMA_VERSION, UNSEEN_CATEGORY,
};
pub use split::{paper_split, split_sizes, Split, VocabularyRule};
pub use stream::TableChunks;
