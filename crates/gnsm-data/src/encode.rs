use gnsm_noise::{CompactRows, FeatureLayout, LOG_ONE_HOT_COLD, NO_CATEGORY};

use crate::schema::{category_map, missing_error, parse_continuous};
use crate::{DataError, MissingContinuous, Schema, Table, UnseenPolicy, UNSEEN_CATEGORY};

/// How categorical groups are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    /// `log(clip(one_hot, 1e-5, 1))`: hot 0, cold `ln 1e-5` — the GNSM input.
    #[default]
    LogOneHot,
    /// Plain one-hot (hot 1, cold 0), for baselines that see the same data.
    OneHot,
}

/// Encoded rows: a dense row-major f32 matrix laid out by `layout` (continuous block
/// standardised first, then one group per categorical column), ready for a candle tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Number of rows.
    pub rows: usize,
    /// The layout of each row.
    pub layout: FeatureLayout,
    /// rows × layout width, row-major.
    pub data: Vec<f32>,
    /// The table row each encoded row came from.
    pub source_rows: Vec<usize>,
}

impl Encoded {
    /// Encoded row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        let w = self.layout.width();
        &self.data[i * w..(i + 1) * w]
    }
}

impl Schema {
    /// Encode every row of `table` as log-one-hot.
    ///
    /// # Errors
    /// As [`Schema::encode_rows`].
    pub fn encode(&self, table: &Table) -> Result<Encoded, DataError> {
        let rows: Vec<usize> = (0..table.rows()).collect();
        self.encode_rows(table, &rows, Encoding::LogOneHot)
    }

    /// Encode the given rows of `table` (columns matched by name, so a scoring file may order
    /// them differently or lack the label; the label column is never read here).
    ///
    /// # Errors
    /// [`DataError::Schema`] when not fitted, [`DataError::UnknownColumn`] for a feature
    /// column the table lacks, [`DataError::NotNumeric`] / [`DataError::MissingContinuous`]
    /// for bad continuous cells, [`DataError::UnseenCategory`] under
    /// [`UnseenPolicy::Error`], [`DataError::OutOfRange`] for a continuous value the f32
    /// encoding cannot hold.
    pub fn encode_rows(
        &self,
        table: &Table,
        rows: &[usize],
        encoding: Encoding,
    ) -> Result<Encoded, DataError> {
        let compact = self.encode_compact(table, rows)?;
        let layout = compact.layout().clone();
        let (hot, cold) = match encoding {
            Encoding::LogOneHot => (0.0f32, LOG_ONE_HOT_COLD),
            Encoding::OneHot => (1.0f32, 0.0f32),
        };
        let mut data = vec![0.0; rows.len() * layout.width()];
        compact
            .expand_as(0, rows.len(), hot, cold, &mut data)
            .map_err(|e| DataError::Schema(e.to_string()))?;
        Ok(Encoded {
            rows: rows.len(),
            layout,
            data,
            source_rows: rows.to_vec(),
        })
    }

    /// Encode the given rows in compact form ([`CompactRows`]: the standardised continuous
    /// block and one category index per group, 4 bytes per column instead of 4 per
    /// category), which the trainer and the scorer expand to log-one-hot a batch at a time.
    /// The same checks as [`Schema::encode_rows`], which is this expanded.
    ///
    /// ```
    /// use gnsm_data::{CsvOptions, Encoding, Schema, SchemaOptions, Table};
    /// let csv = "a,b\nx,1\ny,2\nx,2\n";
    /// let table = Table::from_reader(csv.as_bytes(), "inline.csv", &CsvOptions::default())?;
    /// let mut schema = Schema::infer(&table, &SchemaOptions::default())?;
    /// schema.fit(&table, &[0, 1, 2])?;
    /// let compact = schema.encode_compact(&table, &[0, 1, 2])?;
    /// assert_eq!(compact.hot(1), &[1, 1]); // y, 2
    /// let dense = schema.encode_rows(&table, &[0, 1, 2], Encoding::LogOneHot)?;
    /// let mut expanded = vec![0.0; dense.data.len()];
    /// compact.expand(0, 3, &mut expanded).unwrap();
    /// assert_eq!(expanded, dense.data);
    /// # Ok::<(), gnsm_data::DataError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Schema::encode_rows`].
    pub fn encode_compact(&self, table: &Table, rows: &[usize]) -> Result<CompactRows, DataError> {
        let layout = self.layout()?;
        let n_cont = layout.continuous();
        let groups = layout.n_groups();
        let mut continuous = vec![0f32; rows.len() * n_cont];
        let mut hot = vec![NO_CATEGORY; rows.len() * groups];
        let find = |name: &str| {
            table
                .column_index(name)
                .ok_or_else(|| DataError::UnknownColumn {
                    option: "schema",
                    name: name.into(),
                    available: table.column_names().join(", "),
                })
        };

        for (offset, spec) in self.continuous_columns().enumerate() {
            let index = find(&spec.name)?;
            let values = parse_continuous(table, index, &self.missing_values)?;
            let ids = table.column(index).ids();
            for (out, &r) in rows.iter().enumerate() {
                let v = match values[ids[r] as usize] {
                    Some(v) => (v - spec.mean) / spec.std,
                    None if self.missing_continuous == MissingContinuous::ImputeMean => 0.0,
                    None => return Err(missing_error(table, index, r)),
                };
                // Finite in f64 but not in the network's f32 (1e39), or a schema whose
                // statistics make it so: name the cell, never feed the network an inf.
                let narrow = v as f32;
                if !narrow.is_finite() {
                    return Err(DataError::OutOfRange {
                        path: table.source().into(),
                        line: table.line(r),
                        column: spec.name.clone(),
                        value: table.column(index).value(r).into(),
                        standardised: v,
                        mean: spec.mean,
                        std: spec.std,
                    });
                }
                continuous[out * n_cont + offset] = narrow;
            }
        }

        for (group, spec) in self.categorical_columns().enumerate() {
            let index = find(&spec.name)?;
            let column = table.column(index);
            let map = category_map(column.distinct(), &spec.categories);
            for (out, &r) in rows.iter().enumerate() {
                let slot = match map[column.ids()[r] as usize] {
                    Some(k) => Some(k),
                    None => match self.unseen {
                        UnseenPolicy::Reserve => Some(spec.categories.len()),
                        UnseenPolicy::Ignore => None,
                        UnseenPolicy::Error => {
                            return Err(DataError::UnseenCategory {
                                path: table.source().into(),
                                line: table.line(r),
                                column: spec.name.clone(),
                                value: column.value(r).into(),
                            })
                        }
                    },
                };
                if let Some(k) = slot {
                    hot[out * groups + group] = k as u32;
                }
            }
        }
        CompactRows::new(layout, continuous, hot).map_err(|e| DataError::Schema(e.to_string()))
    }

    /// Decode an encoded row back to one string per feature, in layout order (see
    /// [`Schema::feature_names`]): continuous values de-standardised, categorical groups by
    /// their largest entry ([`UNSEEN_CATEGORY`] for the reserved slot, `<none>` for an
    /// all-cold group).
    ///
    /// # Errors
    /// [`DataError::Schema`] when not fitted or the row has the wrong width.
    pub fn decode_row(&self, row: &[f32]) -> Result<Vec<String>, DataError> {
        let layout = self.layout()?;
        if row.len() != layout.width() {
            return Err(DataError::Schema(format!(
                "a row to decode has {} values; the layout has {}",
                row.len(),
                layout.width()
            )));
        }
        let mut out = Vec::with_capacity(layout.continuous() + layout.n_groups());
        for (j, spec) in self.continuous_columns().enumerate() {
            let v = f64::from(row[j]) * spec.std + spec.mean;
            // The encoding is f32: print the 7 significant digits it carries.
            out.push(format!(
                "{}",
                format!("{v:.6e}").parse::<f64>().unwrap_or(v)
            ));
        }
        for (group, spec) in self.categorical_columns().enumerate() {
            let values = &row[layout.group_range(group)];
            let (best, &max) = values
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .expect("groups have at least two entries");
            let all_cold = values.iter().all(|&v| v == max);
            out.push(if all_cold {
                "<none>".into()
            } else if best >= spec.categories.len() {
                UNSEEN_CATEGORY.into()
            } else {
                spec.categories[best].clone()
            });
        }
        Ok(out)
    }
}

/// Rows of `table` whose label marks an inlier (`false`) or anomaly (`true`), by the
/// schema's label; all rows when there is no label.
///
/// # Errors
/// [`DataError::LabelValue`] for an unknown label value.
pub fn rows_with_label(
    schema: &Schema,
    table: &Table,
    anomalous: bool,
) -> Result<Vec<usize>, DataError> {
    let all: Vec<usize> = (0..table.rows()).collect();
    Ok(match row_labels(schema, table, &all)? {
        Some(labels) => all
            .into_iter()
            .filter(|&r| labels[r] == anomalous)
            .collect(),
        None => all,
    })
}

/// The anomaly flag of the given rows by the schema's label; `None` when the schema has no
/// label or the table lacks its column.
fn row_labels(
    schema: &Schema,
    table: &Table,
    rows: &[usize],
) -> Result<Option<Vec<bool>>, DataError> {
    let Some(label) = &schema.label else {
        return Ok(None);
    };
    let Some(index) = table.column_index(&label.column) else {
        return Ok(None);
    };
    let column = table.column(index);
    rows.iter()
        .map(|&r| match column.value(r) {
            v if v == label.anomaly_value => Ok(true),
            v if v == label.normal_value => Ok(false),
            v => Err(DataError::LabelValue {
                path: table.source().into(),
                line: table.line(r),
                column: label.column.clone(),
                value: v.into(),
                expected: vec![label.normal_value.clone(), label.anomaly_value.clone()],
            }),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The anomaly flag of every row of `table` by the schema's label.
///
/// # Errors
/// [`DataError::Schema`] when the schema has no label or the table lacks its column, and
/// [`DataError::LabelValue`] for an unknown value.
pub fn labels_of(schema: &Schema, table: &Table) -> Result<Vec<bool>, DataError> {
    let label = schema
        .label
        .as_ref()
        .ok_or_else(|| DataError::Schema("the schema has no label column".into()))?;
    if table.column_index(&label.column).is_none() {
        return Err(DataError::Schema(format!(
            "{}: no label column {:?}",
            table.source(),
            label.column
        )));
    }
    let all: Vec<usize> = (0..table.rows()).collect();
    Ok(row_labels(schema, table, &all)?.unwrap_or_default())
}
