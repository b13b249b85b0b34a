//! `gnsm score --format parquet`: the scored rows as a Parquet file, written in row groups of
//! a few thousand rows from the spilled JSON records (memory stays bounded).

use std::io::BufRead;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::builder::{BooleanBuilder, Float64Builder, StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use parquet::arrow::ArrowWriter;

use crate::io::Sink;

/// Rows per record batch.
const BATCH: usize = 8192;

/// The builders of one batch: fixed columns, the key column, then five per contributor.
struct Batch {
    row: UInt64Builder,
    line: UInt64Builder,
    score: Float64Builder,
    rank: UInt64Builder,
    p_value: Float64Builder,
    is_anomaly: BooleanBuilder,
    id: Option<StringBuilder>,
    contributors: Vec<(
        StringBuilder,
        StringBuilder,
        StringBuilder,
        Float64Builder,
        BooleanBuilder,
    )>,
}

impl Batch {
    fn new(columns: usize, id: bool) -> Self {
        Self {
            row: UInt64Builder::new(),
            line: UInt64Builder::new(),
            score: Float64Builder::new(),
            rank: UInt64Builder::new(),
            p_value: Float64Builder::new(),
            is_anomaly: BooleanBuilder::new(),
            id: id.then(StringBuilder::new),
            contributors: (0..columns)
                .map(|_| {
                    (
                        StringBuilder::new(),
                        StringBuilder::new(),
                        StringBuilder::new(),
                        Float64Builder::new(),
                        BooleanBuilder::new(),
                    )
                })
                .collect(),
        }
    }

    fn push(&mut self, record: &serde_json::Value, rank: usize) {
        let u = |k: &str| record[k].as_u64();
        self.row.append_option(u("row"));
        self.line.append_option(u("line"));
        self.score.append_option(record["score"].as_f64());
        self.rank.append_value(rank as u64);
        self.p_value.append_option(record["p_value"].as_f64());
        self.is_anomaly
            .append_option(record["is_anomaly"].as_bool());
        if let Some(id) = &mut self.id {
            id.append_option(record["id"].as_str());
        }
        let listed = record["contributions"].as_array();
        for (i, (feature, value, expected, share, unseen)) in
            self.contributors.iter_mut().enumerate()
        {
            let c = listed.and_then(|l| l.get(i));
            let s = |k: &str| c.and_then(|c| c[k].as_str());
            feature.append_option(s("feature"));
            value.append_option(s("value"));
            expected.append_option(s("expected"));
            share.append_option(c.and_then(|c| c["share"].as_f64()));
            unseen.append_option(c.and_then(|c| c["unseen"].as_bool()));
        }
    }

    fn finish(&mut self, id_name: Option<&str>) -> Result<RecordBatch> {
        let mut columns: Vec<(String, ArrayRef)> = vec![
            ("row".into(), Arc::new(self.row.finish())),
            ("line".into(), Arc::new(self.line.finish())),
            ("score".into(), Arc::new(self.score.finish())),
            ("rank".into(), Arc::new(self.rank.finish())),
            ("p_value".into(), Arc::new(self.p_value.finish())),
            ("is_anomaly".into(), Arc::new(self.is_anomaly.finish())),
        ];
        if let (Some(id), Some(name)) = (&mut self.id, id_name) {
            columns.push((name.into(), Arc::new(id.finish())));
        }
        for (i, (feature, value, expected, share, unseen)) in
            self.contributors.iter_mut().enumerate()
        {
            let i = i + 1;
            columns.push((format!("column_{i}"), Arc::new(feature.finish())));
            columns.push((format!("value_{i}"), Arc::new(value.finish())));
            columns.push((format!("expected_{i}"), Arc::new(expected.finish())));
            columns.push((format!("share_{i}"), Arc::new(share.finish())));
            columns.push((format!("unseen_{i}"), Arc::new(unseen.finish())));
        }
        Ok(RecordBatch::try_from_iter(columns)?)
    }
}

/// Write the spilled JSON records (one per line, in row order) with their ranks.
pub fn write(
    sink: Sink,
    spilled: impl BufRead,
    rank: &[usize],
    columns: usize,
    id: Option<&str>,
) -> Result<Sink> {
    let mut batch = Batch::new(columns, id.is_some());
    let mut writer: Option<ArrowWriter<Sink>> = None;
    let mut sink = Some(sink);
    let mut pending = 0usize;
    let mut flush = |batch: &mut Batch, writer: &mut Option<ArrowWriter<Sink>>| -> Result<()> {
        let records = batch.finish(id)?;
        if writer.is_none() {
            let target = sink.take().context("the output was already handed over")?;
            *writer = Some(ArrowWriter::try_new(target, records.schema(), None)?);
        }
        writer
            .as_mut()
            .context("a Parquet writer")?
            .write(&records)?;
        Ok(())
    };
    for (i, line) in spilled.lines().enumerate() {
        let record: serde_json::Value = serde_json::from_str(&line?)?;
        batch.push(&record, rank[i]);
        pending += 1;
        if pending == BATCH {
            flush(&mut batch, &mut writer)?;
            pending = 0;
        }
    }
    if pending > 0 || writer.is_none() {
        flush(&mut batch, &mut writer)?;
    }
    Ok(writer.context("a Parquet writer")?.into_inner()?)
}
