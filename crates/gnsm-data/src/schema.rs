use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use gnsm_noise::FeatureLayout;
use serde::{Deserialize, Serialize};

use crate::{DataError, Table};

/// Whether a categorical column with `distinct` values over `rows` rows is (nearly) one value
/// per row, as an identifier is: such a column carries no density information, and each
/// value would sit in its own group slot seen once. At least 20 rows, 95 % distinct.
fn looks_like_identifier(distinct: usize, rows: usize) -> bool {
    rows >= 20 && distinct * 20 >= rows * 19
}

/// The schema format version this build writes and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The name of the extra slot of [`UnseenPolicy::Reserve`], as [`Schema::decode_row`]
/// reports it.
pub const UNSEEN_CATEGORY: &str = "<unseen>";

/// What a column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// One-hot encoded; one group of the layout.
    Categorical,
    /// Standardised with the training mean and standard deviation.
    Continuous,
    /// Read and dropped.
    Ignored,
    /// The anomaly label (never a feature).
    Label,
}

/// What to do with a missing value (a cell in [`Schema::missing_values`]) in a continuous
/// column. Categorical columns keep missing markers as categories of their own (census keeps
/// `?` that way, as the reference does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingContinuous {
    /// Fail, naming file, line and column.
    #[default]
    Error,
    /// Replace with the training mean (0 after standardisation).
    ImputeMean,
}

/// What to do with a category that was not seen when the schema was fitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnseenPolicy {
    /// Fail, naming column, value and line.
    Error,
    /// Encode the group as all cold (every entry `ln 1e-5`).
    Ignore,
    /// Give every group one extra slot at fit time that training never marks hot; unseen
    /// values land there. The default: a never-seen value is itself evidence of an anomaly,
    /// and a slot the network has only ever seen cold makes that record read as unlikely,
    /// where `Ignore` would feed the network an input unlike any training row without saying
    /// why, and `Error` would refuse to score exactly the records one wants flagged.
    #[default]
    Reserve,
}

/// How a schema is inferred from a file: the user's overrides and policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SchemaOptions {
    /// Columns to treat as continuous (everything else is categorical).
    pub continuous: Vec<String>,
    /// Columns to drop.
    pub ignored: Vec<String>,
    /// Columns declared categorical. Every column that is not continuous, ignored or the
    /// label is categorical anyway; declaring one only lifts the identifier check (a column
    /// with a distinct value in nearly every row is refused unless declared).
    pub categorical: Vec<String>,
    /// The label column, if the file has one.
    pub label: Option<String>,
    /// The label value that marks an anomaly; inferred only for labels `0`/`1` (→ `1`).
    pub anomaly_value: Option<String>,
    /// A categorical column with more distinct values than this is refused as a likely
    /// identifier or number (default 1000).
    pub max_categories: usize,
    /// Cells that mean "missing" (default `""`, `?`, `NA`).
    pub missing_values: Vec<String>,
    /// Missing values in continuous columns (default: error).
    pub missing_continuous: MissingContinuous,
    /// Unseen categories at encoding time (default: reserve a slot).
    pub unseen: UnseenPolicy,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        Self {
            continuous: Vec::new(),
            ignored: Vec::new(),
            categorical: Vec::new(),
            label: None,
            anomaly_value: None,
            max_categories: 1000,
            missing_values: vec![String::new(), "?".into(), "NA".into()],
            missing_continuous: MissingContinuous::default(),
            unseen: UnseenPolicy::default(),
        }
    }
}

/// One column of a [`Schema`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSchema {
    /// Header name.
    pub name: String,
    /// What the column is.
    pub kind: ColumnKind,
    /// Categorical: the sorted vocabulary (empty until fitted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Continuous: the training mean.
    #[serde(default)]
    pub mean: f64,
    /// Continuous: the training standard deviation (1 for a constant column).
    #[serde(default)]
    pub std: f64,
}

/// The label column and its two values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSpec {
    /// The column.
    pub column: String,
    /// The value that marks an anomaly.
    pub anomaly_value: String,
    /// The value that marks an inlier.
    pub normal_value: String,
}

/// Everything needed to turn rows of a file into the model's input and back: each column's
/// kind and, once fitted, its vocabulary or standardisation. Serialisable (JSON, versioned).
///
/// ```
/// use gnsm_data::{CsvOptions, Schema, SchemaOptions, Table};
/// let csv = "colour,weight,label\nred,1.5,0\nblue,2.5,0\nred,2.0,1\n";
/// let table = Table::from_reader(csv.as_bytes(), "inline.csv", &CsvOptions::default())?;
/// let options = SchemaOptions {
///     continuous: vec!["weight".into()],
///     label: Some("label".into()),
///     ..Default::default()
/// };
/// let mut schema = Schema::infer(&table, &options)?;
/// schema.fit(&table, &[0, 1])?; // fit on the inliers
/// let layout = schema.layout()?;
/// // 1 continuous + colour {blue, red} + the reserved unseen slot.
/// assert_eq!((layout.continuous(), layout.groups()), (1, &[3][..]));
/// let encoded = schema.encode(&table)?;
/// assert_eq!(gnsm_data::labels_of(&schema, &table)?, vec![false, false, true]);
/// assert_eq!(schema.decode_row(encoded.row(2))?, vec!["2", "red"]);
/// # Ok::<(), gnsm_data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// Format version ([`SCHEMA_VERSION`]).
    pub version: u32,
    /// Every column of the file it was inferred from, in file order.
    pub columns: Vec<ColumnSchema>,
    /// The label, if any.
    pub label: Option<LabelSpec>,
    /// Cells that mean "missing".
    pub missing_values: Vec<String>,
    /// Missing values in continuous columns.
    pub missing_continuous: MissingContinuous,
    /// Unseen categories.
    pub unseen: UnseenPolicy,
    /// Whether [`Schema::fit`] has run.
    pub fitted: bool,
}

fn unknown(option: &'static str, name: &str, table: &Table) -> DataError {
    DataError::UnknownColumn {
        option,
        name: name.into(),
        available: table.column_names().join(", "),
    }
}

impl Schema {
    /// Infer the column kinds of `table` with the user's overrides: continuous, ignored and
    /// label columns as named, every other column categorical.
    ///
    /// # Errors
    /// [`DataError::UnknownColumn`] for a name not in the header, [`DataError::Label`] for a
    /// label column without exactly two values (or one, when the anomaly value is given)
    /// or whose anomaly value cannot be inferred, [`DataError::TooManyCategories`] for a
    /// categorical column over the limit.
    pub fn infer(table: &Table, options: &SchemaOptions) -> Result<Self, DataError> {
        for name in &options.continuous {
            table
                .column_index(name)
                .ok_or_else(|| unknown("continuous", name, table))?;
        }
        for name in &options.ignored {
            table
                .column_index(name)
                .ok_or_else(|| unknown("ignored", name, table))?;
        }
        for name in &options.categorical {
            table
                .column_index(name)
                .ok_or_else(|| unknown("categorical", name, table))?;
        }
        let label = match &options.label {
            None => None,
            Some(name) => {
                let index = table
                    .column_index(name)
                    .ok_or_else(|| unknown("label", name, table))?;
                Some(infer_label(
                    name,
                    table.column(index).distinct(),
                    options.anomaly_value.as_deref(),
                )?)
            }
        };
        let mut columns = Vec::with_capacity(table.columns().len());
        for column in table.columns() {
            let name = column.name();
            let kind = if label.as_ref().is_some_and(|l| l.column == name) {
                ColumnKind::Label
            } else if options.ignored.iter().any(|c| c == name) {
                ColumnKind::Ignored
            } else if options.continuous.iter().any(|c| c == name) {
                ColumnKind::Continuous
            } else {
                let declared = options.categorical.iter().any(|c| c == name);
                let distinct = column.distinct().len();
                if !declared && looks_like_identifier(distinct, table.rows()) {
                    return Err(DataError::IdentifierColumn {
                        column: name.into(),
                        distinct,
                        rows: table.rows(),
                    });
                }
                if distinct > options.max_categories {
                    return Err(DataError::TooManyCategories {
                        column: name.into(),
                        distinct,
                        limit: options.max_categories,
                    });
                }
                ColumnKind::Categorical
            };
            columns.push(ColumnSchema {
                name: name.into(),
                kind,
                categories: Vec::new(),
                mean: 0.0,
                std: 1.0,
            });
        }
        Ok(Self {
            version: SCHEMA_VERSION,
            columns,
            label,
            missing_values: options.missing_values.clone(),
            missing_continuous: options.missing_continuous,
            unseen: options.unseen,
            fitted: false,
        })
    }

    /// Fit the vocabularies (sorted distinct values) and continuous statistics (mean,
    /// population standard deviation; 1 when constant) on the given rows of `table`.
    ///
    /// # Errors
    /// [`DataError::UnknownColumn`] when the table lacks a schema column,
    /// [`DataError::NotNumeric`] or [`DataError::MissingContinuous`] for bad continuous
    /// values, [`DataError::Schema`] for an empty row set.
    pub fn fit(&mut self, table: &Table, rows: &[usize]) -> Result<(), DataError> {
        if rows.is_empty() {
            return Err(DataError::Schema("cannot fit on zero rows".into()));
        }
        for spec in &mut self.columns {
            let index = table
                .column_index(&spec.name)
                .ok_or_else(|| unknown("schema", &spec.name, table))?;
            let column = table.column(index);
            match spec.kind {
                ColumnKind::Categorical => {
                    let mut present = vec![false; column.distinct().len()];
                    for &r in rows {
                        present[column.ids()[r] as usize] = true;
                    }
                    let vocabulary: BTreeSet<&str> = column
                        .distinct()
                        .iter()
                        .zip(&present)
                        .filter(|(_, &p)| p)
                        .map(|(v, _)| v.as_str())
                        .collect();
                    spec.categories = vocabulary.into_iter().map(str::to_owned).collect();
                }
                ColumnKind::Continuous => {
                    let values = parse_continuous(table, index, &self.missing_values)?;
                    let (mut sum, mut count) = (0.0, 0usize);
                    for &r in rows {
                        match values[column.ids()[r] as usize] {
                            Some(v) => {
                                sum += v;
                                count += 1;
                            }
                            None if self.missing_continuous == MissingContinuous::Error => {
                                return Err(missing_error(table, index, r));
                            }
                            None => {}
                        }
                    }
                    if count == 0 {
                        return Err(DataError::Schema(format!(
                            "continuous column {:?} has no values in the fitting rows",
                            spec.name
                        )));
                    }
                    let mean = sum / count as f64;
                    let mut var = 0.0;
                    for &r in rows {
                        if let Some(v) = values[column.ids()[r] as usize] {
                            var += (v - mean) * (v - mean);
                        }
                    }
                    let std = (var / count as f64).sqrt();
                    spec.mean = mean;
                    // A constant column standardises to zeros instead of dividing by zero.
                    spec.std = if std > 0.0 && std.is_finite() {
                        std
                    } else {
                        1.0
                    };
                }
                ColumnKind::Ignored | ColumnKind::Label => {}
            }
        }
        self.fitted = true;
        // Surface layout errors (a group of one category) at fit time.
        self.layout()?;
        Ok(())
    }

    /// Fit the vocabularies on `vocabulary` rows and the continuous statistics on
    /// `statistics` rows (an evaluation may take its vocabulary from every row but must
    /// standardise with inlier statistics).
    ///
    /// # Errors
    /// As [`Schema::fit`].
    pub fn fit_with(
        &mut self,
        table: &Table,
        vocabulary: &[usize],
        statistics: &[usize],
    ) -> Result<(), DataError> {
        let mut on_statistics = self.clone();
        on_statistics.fit(table, statistics)?;
        self.fit(table, vocabulary)?;
        for (col, fitted) in self.columns.iter_mut().zip(&on_statistics.columns) {
            col.mean = fitted.mean;
            col.std = fitted.std;
        }
        Ok(())
    }

    /// Whether the schema reserves an unseen slot per group.
    pub fn reserves_unseen(&self) -> bool {
        self.unseen == UnseenPolicy::Reserve
    }

    /// The continuous columns, in file order (the first block of the layout).
    pub fn continuous_columns(&self) -> impl Iterator<Item = &ColumnSchema> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Continuous)
    }

    /// The categorical columns, in file order (the groups of the layout).
    pub fn categorical_columns(&self) -> impl Iterator<Item = &ColumnSchema> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Categorical)
    }

    /// The names of the features in layout order: continuous columns, then categorical
    /// columns (one name per group).
    pub fn feature_names(&self) -> Vec<&str> {
        self.continuous_columns()
            .chain(self.categorical_columns())
            .map(|c| c.name.as_str())
            .collect()
    }

    /// The feature layout of the encoded rows.
    ///
    /// # Errors
    /// [`DataError::Schema`] before fitting or when a group has a single category, and
    /// [`DataError::Layout`] when no feature is left. A constant column is a group of two
    /// under [`UnseenPolicy::Reserve`] (its one value, or unseen) and is kept: an unseen
    /// value there is news. Under the other policies it is a group of one, which carries no
    /// information, and is refused.
    pub fn layout(&self) -> Result<FeatureLayout, DataError> {
        if !self.fitted {
            return Err(DataError::Schema("the schema is not fitted yet".into()));
        }
        let extra = usize::from(self.reserves_unseen());
        let groups: Vec<usize> = self
            .categorical_columns()
            .map(|c| c.categories.len() + extra)
            .collect();
        if let Some((column, _)) = self
            .categorical_columns()
            .zip(&groups)
            .find(|(_, &k)| k < 2)
        {
            return Err(DataError::Schema(format!(
                "categorical column {:?} has a single category {:?} in the fitting rows: it carries no information; ignore it",
                column.name, column.categories
            )));
        }
        Ok(FeatureLayout::new(
            self.continuous_columns().count(),
            groups,
        )?)
    }

    /// Write as pretty JSON, atomically (temporary file + rename).
    ///
    /// # Errors
    /// [`DataError::Io`] naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), DataError> {
        let path = path.as_ref();
        let json = serde_json::to_vec_pretty(self).map_err(|e| DataError::Schema(e.to_string()))?;
        crate::io::write_file(path, &json)
    }

    /// Read a schema written by [`Schema::save`].
    ///
    /// # Errors
    /// [`DataError::Io`], or [`DataError::Schema`] for invalid JSON or a newer version.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&bytes).map_err(|e| match e {
            DataError::Schema(m) => DataError::Schema(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parse a schema from JSON.
    ///
    /// # Errors
    /// [`DataError::Schema`] for invalid JSON or a newer version.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DataError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| DataError::Schema(e.to_string()))?;
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v <= u64::from(SCHEMA_VERSION) => {}
            other => {
                return Err(DataError::Schema(format!(
                    "schema version {other:?} is not supported (this build reads up to {SCHEMA_VERSION})"
                )))
            }
        }
        serde_json::from_value(value).map_err(|e| DataError::Schema(e.to_string()))
    }
}

fn infer_label(
    name: &str,
    values: &[String],
    anomaly: Option<&str>,
) -> Result<LabelSpec, DataError> {
    let err = |message: String| DataError::Label {
        column: name.into(),
        message,
    };
    if values.len() > 2 {
        return Err(err(format!(
            "{} distinct values {:?}; a label needs exactly two (inlier and anomaly)",
            values.len(),
            values.iter().take(10).collect::<Vec<_>>()
        )));
    }
    let anomaly = match anomaly {
        Some(a) => a.to_owned(),
        None => {
            let mut sorted: Vec<&str> = values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            // The 0/1 convention, also for a file of one class: all `0` is clean training
            // data, all `1` is all anomalies (refused below with that reason).
            if sorted == ["0", "1"] || sorted == ["0"] || sorted == ["1"] {
                "1".into()
            } else {
                return Err(err(format!(
                    "values {values:?}: name the anomaly value (only 0/1 labels are inferred)"
                )));
            }
        }
    };
    let normal: Vec<&String> = values.iter().filter(|v| **v != anomaly).collect();
    match normal.as_slice() {
        [normal] => Ok(LabelSpec {
            column: name.into(),
            anomaly_value: anomaly,
            normal_value: (*normal).clone(),
        }),
        [] if values.len() == 1 => Err(err(format!(
            "every row has the anomaly value {anomaly:?}: there are no inlier rows to fit on"
        ))),
        [] => Err(err("no values at all".into())),
        _ => Err(err(format!(
            "the anomaly value {anomaly:?} is not among the values {values:?}"
        ))),
    }
}

/// Parse every distinct value of a continuous column once: `Some(x)` for a finite number,
/// `None` for a missing marker; anything else is an error naming its first line.
pub(crate) fn parse_continuous(
    table: &Table,
    index: usize,
    missing: &[String],
) -> Result<Vec<Option<f64>>, DataError> {
    let column = table.column(index);
    let parsed: Vec<Result<Option<f64>, ()>> = column
        .distinct()
        .iter()
        .map(|v| {
            if missing.iter().any(|m| m == v) {
                Ok(None)
            } else {
                match v.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() => Ok(Some(x)),
                    _ => Err(()),
                }
            }
        })
        .collect();
    if let Some(bad) = parsed.iter().position(Result::is_err) {
        let row = column
            .ids()
            .iter()
            .position(|&id| id as usize == bad)
            .unwrap_or(0);
        return Err(DataError::NotNumeric {
            path: table.source().into(),
            line: table.line(row),
            column: column.name().into(),
            value: column.distinct()[bad].clone(),
        });
    }
    Ok(parsed.into_iter().map(|p| p.unwrap_or(None)).collect())
}

pub(crate) fn missing_error(table: &Table, index: usize, row: usize) -> DataError {
    let column = table.column(index);
    DataError::MissingContinuous {
        path: table.source().into(),
        line: table.line(row),
        column: column.name().into(),
        value: column.value(row).into(),
    }
}

/// Map from a table column's distinct-value ids to category indices of `categories`.
pub(crate) fn category_map(distinct: &[String], categories: &[String]) -> Vec<Option<usize>> {
    let index: HashMap<&str, usize> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    distinct
        .iter()
        .map(|v| index.get(v.as_str()).copied())
        .collect()
}
