//! Parquet input: the same cells as CSV, nulls as missing, a damaged file a clear error.
#![cfg(feature = "parquet")]

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray};
use gnsm_data::{CsvOptions, DataError, Table};
use parquet::arrow::ArrowWriter;

fn parquet_bytes() -> Vec<u8> {
    let colour: ArrayRef = Arc::new(StringArray::from(vec![Some("red"), None, Some("blue")]));
    let size: ArrayRef = Arc::new(Int64Array::from(vec![1, 10, 1]));
    let weight: ArrayRef = Arc::new(Float64Array::from(vec![1.5, 2.0, -0.25]));
    let city: ArrayRef = Arc::new(
        vec!["oslo", "rome", "oslo"]
            .into_iter()
            .collect::<DictionaryArray<Int32Type>>(),
    );
    let batch = RecordBatch::try_from_iter([
        ("colour", colour),
        ("size", size),
        ("weight", weight),
        ("city", city),
    ])
    .unwrap();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out
}

#[test]
fn parquet_reads_as_the_same_cells_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    std::fs::write(&path, parquet_bytes()).unwrap();
    let table = Table::read(&path, &CsvOptions::default()).unwrap();
    let csv = "colour,size,weight,city\nred,1,1.5,oslo\n,10,2.0,rome\nblue,1,-0.25,oslo\n";
    let expected = Table::from_reader(csv.as_bytes(), "t.csv", &CsvOptions::default()).unwrap();
    assert_eq!(table.column_names(), expected.column_names());
    for c in 0..4 {
        let got: Vec<&str> = (0..3).map(|r| table.column(c).value(r)).collect();
        let want: Vec<&str> = (0..3).map(|r| expected.column(c).value(r)).collect();
        // Arrow prints 2.0 as "2.0" and CSV kept "2.0": the same strings.
        assert_eq!(got, want, "column {c}");
    }
    assert_eq!(table.line(0), 2);
    // From a stream (standard input) as well.
    let bytes = parquet_bytes();
    let streamed = Table::from_stream(&bytes[..], "<stdin>", &CsvOptions::default()).unwrap();
    assert_eq!(streamed.column(3).value(1), "rome");
}

#[test]
fn a_damaged_parquet_file_is_a_clear_error() {
    let mut bytes = parquet_bytes();
    bytes.truncate(bytes.len() / 2);
    let err = Table::from_stream(&bytes[..], "cut.parquet", &CsvOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::Parquet { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("cut.parquet: cannot read as Parquet"),
        "{err}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// A Parquet file with bytes changed or cut never panics the reader.
    #[test]
    fn damaged_parquet_never_panics(
        flips in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 1..8),
        cut in 0usize..4096,
    ) {
        let mut bytes = parquet_bytes();
        let n = bytes.len();
        for (at, value) in flips {
            bytes[at % n] = value;
        }
        bytes.truncate(n - cut % n);
        let _ = Table::from_stream(&bytes[..], "fuzz.parquet", &CsvOptions::default());
    }
}

fn ipc_bytes(batches: &[RecordBatch]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer =
        arrow_ipc::writer::StreamWriter::try_new(&mut out, &batches[0].schema()).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.finish().unwrap();
    drop(writer);
    out
}

#[test]
fn an_arrow_stream_reads_as_the_same_cells_as_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    std::fs::write(&path, parquet_bytes()).unwrap();
    let from_parquet = Table::read(&path, &CsvOptions::default()).unwrap();
    let batches: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
            bytes::Bytes::from(parquet_bytes()),
            2,
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(batches.len(), 2, "two batches, appended in order");
    let from_ipc = Table::from_arrow_ipc(&ipc_bytes(&batches), "frame").unwrap();
    assert_eq!(from_ipc.column_names(), from_parquet.column_names());
    for c in 0..4 {
        let got: Vec<&str> = (0..3).map(|r| from_ipc.column(c).value(r)).collect();
        let want: Vec<&str> = (0..3).map(|r| from_parquet.column(c).value(r)).collect();
        assert_eq!(got, want, "column {c}");
    }
    assert_eq!(from_ipc.source(), "frame");
}

#[test]
fn bytes_that_are_not_an_arrow_stream_are_a_clear_error() {
    let err = Table::from_arrow_ipc(b"colour,size\nred,1\n", "frame").unwrap_err();
    assert!(matches!(err, DataError::Arrow { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("frame: cannot read as an Arrow stream"),
        "{err}"
    );
    // A stream with a schema and no rows is a table without rows.
    let empty = RecordBatch::try_from_iter([(
        "colour",
        Arc::new(StringArray::from(Vec::<&str>::new())) as ArrayRef,
    )])
    .unwrap();
    let err = Table::from_arrow_ipc(&ipc_bytes(&[empty]), "frame").unwrap_err();
    assert!(matches!(err, DataError::NoRows { .. }), "{err}");
}
