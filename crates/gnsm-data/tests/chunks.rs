//! Reading a file a bounded number of rows at a time gives the rows and lines of reading it
//! whole, for CSV (quotes, CRLF, blank lines), gzip CSV and Parquet, at every chunk size; row
//! errors in a later chunk name their line.

use std::io::Write;

use gnsm_data::{CsvOptions, DataError, Table};
use proptest::prelude::{prop_assert_eq, proptest, ProptestConfig};

/// Every cell and line of a sequence of chunks, row by row.
fn flatten(chunks: &[Table]) -> (Vec<Vec<String>>, Vec<u64>) {
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for t in chunks {
        for r in 0..t.rows() {
            rows.push(
                (0..t.columns().len())
                    .map(|c| t.column(c).value(r).to_owned())
                    .collect(),
            );
            lines.push(t.line(r));
        }
    }
    (rows, lines)
}

fn csv_text(rows: usize) -> String {
    let mut text = String::from("colour,\"size, cm\",note\r\n");
    for i in 0..rows {
        if i % 7 == 3 {
            text.push_str("\r\n"); // a blank line, skipped
        }
        let note = if i % 5 == 0 {
            "\"two\nlines\""
        } else {
            "plain"
        };
        text.push_str(&format!("c{},{},{note}\r\n", i % 4, i % 9));
    }
    text
}

#[test]
fn chunks_of_every_size_are_the_whole_file() {
    let text = csv_text(200);
    let options = CsvOptions::default();
    let whole = Table::from_reader(text.as_bytes(), "t.csv", &options).unwrap();
    let expected = flatten(std::slice::from_ref(&whole));
    for size in [1, 2, 7, 64, 199, 200, 10_000] {
        let chunks: Vec<Table> = Table::stream_chunks(text.as_bytes(), "t.csv", &options, size)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(chunks.iter().all(|t| t.rows() <= size), "size {size}");
        assert_eq!(chunks.len(), 200_usize.div_ceil(size), "size {size}");
        assert_eq!(flatten(&chunks), expected, "size {size}");
        assert!(chunks
            .iter()
            .all(|t| t.column_names() == whole.column_names()));
    }
}

#[test]
fn gzip_files_stream_in_chunks() {
    let text = csv_text(50);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let whole = Table::read(&path, &CsvOptions::default()).unwrap();
    let chunks: Vec<Table> = Table::read_chunks(&path, &CsvOptions::default(), 8)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(chunks.len(), 7);
    assert_eq!(flatten(&chunks), flatten(&[whole]));
}

#[test]
fn errors_name_their_line_and_end_the_stream() {
    let text = "a,b\n1,2\n3,4\n5\n6,7\n";
    let mut chunks =
        Table::stream_chunks(text.as_bytes(), "t.csv", &CsvOptions::default(), 2).unwrap();
    assert_eq!(chunks.next().unwrap().unwrap().rows(), 2);
    match chunks.next() {
        Some(Err(DataError::Ragged { line, .. })) => assert_eq!(line, 4),
        other => panic!("expected a ragged-row error, got {other:?}"),
    }
    assert!(chunks.next().is_none());
    // A header without rows is one NoRows error; an empty file fails at opening.
    let mut empty =
        Table::stream_chunks(&b"a,b\n"[..], "h.csv", &CsvOptions::default(), 5).unwrap();
    assert!(matches!(empty.next(), Some(Err(DataError::NoRows { .. }))));
    assert!(empty.next().is_none());
    assert!(matches!(
        Table::stream_chunks(&b""[..], "e.csv", &CsvOptions::default(), 5).map(|_| ()),
        Err(DataError::EmptyFile { .. })
    ));
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_files_are_decoded_in_chunks() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    let n = 1000;
    let names: ArrayRef = Arc::new(StringArray::from(
        (0..n).map(|i| format!("v{}", i % 13)).collect::<Vec<_>>(),
    ));
    let numbers: ArrayRef = Arc::new(Int64Array::from((0..n).collect::<Vec<i64>>()));
    let batch = RecordBatch::try_from_iter([("name", names), ("number", numbers)]).unwrap();
    let mut bytes = Vec::new();
    // Small row groups, so chunks cross row-group boundaries.
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(300))
        .build();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let whole = Table::from_stream(&bytes[..], "t.parquet", &CsvOptions::default()).unwrap();
    assert_eq!(whole.line(999), 1001);
    for size in [1, 128, 300, 999, 5000] {
        let chunks: Vec<Table> =
            Table::stream_chunks(&bytes[..], "t.parquet", &CsvOptions::default(), size)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        assert!(chunks.iter().all(|t| t.rows() <= size), "size {size}");
        assert_eq!(
            flatten(&chunks),
            flatten(std::slice::from_ref(&whole)),
            "size {size}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn any_chunk_size_reassembles_the_file(rows in 1usize..120, size in 1usize..40) {
        let text = csv_text(rows);
        let options = CsvOptions::default();
        let whole = Table::from_reader(text.as_bytes(), "t.csv", &options).unwrap();
        let chunks: Vec<Table> = Table::stream_chunks(text.as_bytes(), "t.csv", &options, size)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(flatten(&chunks), flatten(&[whole]));
    }
}
