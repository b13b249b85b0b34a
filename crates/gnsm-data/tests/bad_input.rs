//! Every kind of bad input is a clear error naming where it is — never a panic.

use std::io::Write;

use gnsm_data::{
    CsvOptions, DataError, MissingContinuous, Schema, SchemaOptions, Table, UnseenPolicy,
};

fn read(text: &[u8]) -> Result<Table, DataError> {
    Table::from_reader(text, "t.csv", &CsvOptions::default())
}

fn schema(table: &Table, options: &SchemaOptions) -> Result<Schema, DataError> {
    let mut schema = Schema::infer(table, options)?;
    let rows: Vec<usize> = (0..table.rows()).collect();
    schema.fit(table, &rows)?;
    Ok(schema)
}

#[test]
fn empty_file_and_header_only() {
    assert!(matches!(read(b""), Err(DataError::EmptyFile { .. })));
    assert!(matches!(
        read(b"a,b,label\n"),
        Err(DataError::NoRows { .. })
    ));
    assert!(matches!(read(b"a,b,label"), Err(DataError::NoRows { .. })));
}

#[test]
fn ragged_row_names_its_line() {
    let err = read(b"a,b\n1,2\n3\n4,5\n").unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Ragged {
                line: 3,
                expected: 2,
                got: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("t.csv, line 3"));
}

#[test]
fn duplicate_column_names() {
    let err = read(b"a,b,a\n1,2,3\n").unwrap_err();
    assert!(
        matches!(
            err,
            DataError::DuplicateColumn {
                first: 1,
                second: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unknown_column_in_an_override() {
    let table = read(b"a,b\n1,2\n3,4\n").unwrap();
    for options in [
        SchemaOptions {
            continuous: vec!["c".into()],
            ..Default::default()
        },
        SchemaOptions {
            ignored: vec!["zz".into()],
            ..Default::default()
        },
        SchemaOptions {
            label: Some("label".into()),
            ..Default::default()
        },
    ] {
        let err = Schema::infer(&table, &options).unwrap_err();
        assert!(matches!(err, DataError::UnknownColumn { .. }), "{err}");
        assert!(err.to_string().contains("columns: a, b"), "{err}");
    }
}

#[test]
fn label_values_other_than_the_two_expected() {
    let table = read(b"a,label\nx,0\ny,1\nx,2\n").unwrap();
    let options = SchemaOptions {
        label: Some("label".into()),
        ..Default::default()
    };
    assert!(matches!(
        Schema::infer(&table, &options),
        Err(DataError::Label { .. })
    ));
    // Non 0/1 labels need the anomaly value.
    let table = read(b"a,label\nx,no\ny,yes\n").unwrap();
    assert!(matches!(
        Schema::infer(&table, &options),
        Err(DataError::Label { .. })
    ));
    let ok = SchemaOptions {
        anomaly_value: Some("yes".into()),
        ..options.clone()
    };
    let mut s = Schema::infer(&table, &ok).unwrap();
    s.fit(&table, &[0, 1]).unwrap();
    // Scoring never reads the label; evaluating a file whose label has a third value
    // names its line.
    let other = read(b"a,label\nx,no\ny,maybe\n").unwrap();
    assert!(s.encode(&other).is_ok());
    let err = gnsm_data::labels_of(&s, &other).unwrap_err();
    assert!(
        matches!(err, DataError::LabelValue { line: 3, .. }),
        "{err}"
    );
}

#[test]
fn non_numeric_and_non_finite_continuous_values() {
    let options = SchemaOptions {
        continuous: vec!["w".into()],
        ..Default::default()
    };
    for (text, bad, line) in [
        (&b"k,w\nx,1.5\ny,abc\n"[..], "abc", 3),
        (&b"k,w\nx,inf\ny,2\n"[..], "inf", 2),
        (&b"k,w\nx,1\ny,NaN\nz,3\n"[..], "NaN", 3),
    ] {
        let table = read(text).unwrap();
        let err = schema(&table, &options).unwrap_err();
        match &err {
            DataError::NotNumeric {
                line: l,
                column,
                value,
                ..
            } => {
                assert_eq!(
                    (*l, column.as_str(), value.as_str()),
                    (line, "w", bad),
                    "{err}"
                );
            }
            other => panic!("expected NotNumeric, got {other}"),
        }
    }
}

#[test]
fn missing_continuous_value_is_an_error_or_imputed() {
    let table = read(b"k,w\nx,1\ny,\nz,3\n").unwrap();
    let options = SchemaOptions {
        continuous: vec!["w".into()],
        ..Default::default()
    };
    let err = schema(&table, &options).unwrap_err();
    assert!(
        matches!(err, DataError::MissingContinuous { line: 3, .. }),
        "{err}"
    );
    let impute = SchemaOptions {
        missing_continuous: MissingContinuous::ImputeMean,
        ..options
    };
    let s = schema(&table, &impute).unwrap();
    let enc = s.encode(&table).unwrap();
    // Mean of {1, 3} = 2, std 1: rows → -1, 0 (imputed), 1.
    let w: Vec<f32> = (0..3).map(|r| enc.row(r)[0]).collect();
    assert_eq!(w, vec![-1.0, 0.0, 1.0]);
}

#[test]
fn constant_continuous_column_has_no_division_by_zero() {
    let table = read(b"k,w\nx,4\ny,4\n").unwrap();
    let options = SchemaOptions {
        continuous: vec!["w".into()],
        ..Default::default()
    };
    let s = schema(&table, &options).unwrap();
    let enc = s.encode(&table).unwrap();
    assert!(enc.data.iter().all(|v| v.is_finite()));
    assert_eq!(enc.row(0)[0], 0.0);
}

#[test]
fn invalid_utf8_names_line_and_field() {
    let err = read(b"a,b\nok,fine\nx,\xff\xfe\n").unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Utf8 {
                line: 3,
                field: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_gzip_stream() {
    let dir = std::env::temp_dir().join(format!("gnsm-data-gz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut encoder = flate2_encoder();
    for i in 0..5000 {
        writeln!(encoder, "v{},{}", i % 17, i % 2).unwrap();
    }
    let bytes = encoder.finish().unwrap();
    let path = dir.join("t.csv.gz");
    std::fs::write(&path, &bytes).unwrap();
    let whole = Table::read(&path, &CsvOptions::default()).unwrap();
    assert_eq!(whole.rows(), 5000);
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = Table::read(&path, &CsvOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    assert!(matches!(
        Table::read(dir.join("missing.csv"), &CsvOptions::default()),
        Err(DataError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn flate2_encoder() -> flate2::write::GzEncoder<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b"key,label\n").unwrap();
    e
}

#[test]
fn too_many_categories_is_refused_with_advice() {
    // 50 codes, each twice: many categories, but not an identifier.
    let mut text = String::from("id,x\n");
    for i in 0..100 {
        text.push_str(&format!("{},a\n", i % 50));
    }
    let table = read(text.as_bytes()).unwrap();
    let options = SchemaOptions {
        max_categories: 20,
        ..Default::default()
    };
    let err = Schema::infer(&table, &options).unwrap_err();
    assert!(matches!(
        err,
        DataError::TooManyCategories {
            distinct: 50,
            limit: 20,
            ..
        }
    ));
    assert!(err.to_string().contains("declare it continuous or ignored"));
    let ignored = SchemaOptions {
        ignored: vec!["id".into()],
        ..options
    };
    assert!(Schema::infer(&table, &ignored).is_ok());
}

#[test]
fn unseen_categories_follow_the_policy() {
    let train = read(b"c,d\nx,p\ny,q\n").unwrap();
    let test = read(b"c,d\nz,p\n").unwrap();
    let mut s = Schema::infer(
        &train,
        &SchemaOptions {
            unseen: UnseenPolicy::Error,
            ..Default::default()
        },
    )
    .unwrap();
    s.fit(&train, &[0, 1]).unwrap();
    let err = s.encode(&test).unwrap_err();
    assert!(
        matches!(err, DataError::UnseenCategory { line: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("\"z\""));

    s.unseen = UnseenPolicy::Ignore;
    let enc = s.encode(&test).unwrap();
    assert_eq!(enc.layout.groups(), &[2, 2]);
    assert!(enc.row(0)[..2].iter().all(|&v| v < -11.0));
    assert_eq!(s.decode_row(enc.row(0)).unwrap(), vec!["<none>", "p"]);

    let mut reserve = Schema::infer(&train, &SchemaOptions::default()).unwrap();
    reserve.fit(&train, &[0, 1]).unwrap();
    let enc = reserve.encode(&test).unwrap();
    assert_eq!(enc.layout.groups(), &[3, 3]);
    assert_eq!(enc.row(0)[2], 0.0);
    assert_eq!(
        reserve.decode_row(enc.row(0)).unwrap(),
        vec!["<unseen>", "p"]
    );
    // The reserved slot is never hot in the training rows.
    let train_enc = reserve.encode(&train).unwrap();
    assert!((0..2).all(|r| train_enc.row(r)[2] < -11.0 && train_enc.row(r)[5] < -11.0));
}

#[test]
fn newer_or_corrupt_schema_files_are_errors() {
    let table = read(b"c\nx\ny\n").unwrap();
    let s = schema(&table, &SchemaOptions::default()).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(Schema::from_json(json.as_bytes()).unwrap(), s);
    let newer = json.replace("\"version\":1", "\"version\":7");
    assert!(
        matches!(Schema::from_json(newer.as_bytes()), Err(DataError::Schema(m)) if m.contains("version"))
    );
    assert!(Schema::from_json(&json.as_bytes()[..json.len() / 2]).is_err());
    let single = read(b"c,d\nx,1\nx,2\n").unwrap();
    let mut s = Schema::infer(
        &single,
        &SchemaOptions {
            unseen: UnseenPolicy::Error,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        matches!(s.fit(&single, &[0, 1]), Err(DataError::Schema(m)) if m.contains("single category"))
    );
}

#[test]
fn crlf_files_report_the_lines_an_editor_shows() {
    // The csv crate counts one line too few on CRLF files (rust-csv #395).
    let err = read(b"a,b\r\nx,1\r\ny,2\r\nz\r\n").unwrap_err();
    assert!(matches!(err, DataError::Ragged { line: 4, .. }), "{err}");
    let table = read(b"a,b\r\nx,1\r\n\"multi\r\nline\",2\r\nz,3\r\n").unwrap();
    assert_eq!(
        (0..table.rows()).map(|r| table.line(r)).collect::<Vec<_>>(),
        vec![2, 3, 5]
    );
    // LF files are unchanged.
    let table = read(b"a,b\nx,1\n\ny,2\n").unwrap();
    assert_eq!(table.line(1), 4);
}

#[test]
fn a_pipe_keeps_its_first_bytes_and_may_be_gzip() {
    // A reader that hands out one byte at a time, like a slow pipe.
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }
    let text = b"education,label\nhigh,0\nlow,1\n";
    let table = Table::from_stream(Trickle(text), "<stdin>", &CsvOptions::default()).unwrap();
    assert_eq!(table.column_names(), vec!["education", "label"]);
    assert_eq!(table.rows(), 2);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text).unwrap();
    let bytes = gz.finish().unwrap();
    let table = Table::from_stream(Trickle(&bytes), "<stdin>", &CsvOptions::default()).unwrap();
    assert_eq!(table.column_names(), vec!["education", "label"]);

    // A named pipe (FIFO) read by path: opened once, no byte lost.
    #[cfg(unix)]
    {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("data.csv");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let writer = {
                let fifo = fifo.clone();
                std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
            };
            let table = Table::read(&fifo, &CsvOptions::default()).unwrap();
            writer.join().unwrap();
            assert_eq!(table.column_names(), vec!["education", "label"]);
            assert_eq!(table.rows(), 2);
        }
    }
}

#[test]
fn an_identifier_column_is_refused_unless_declared() {
    let mut text = String::from("id,colour,label\n");
    for i in 0..900 {
        text.push_str(&format!("r{i},{},0\n", ["red", "blue"][i % 2]));
    }
    let table = read(text.as_bytes()).unwrap();
    let options = SchemaOptions {
        label: Some("label".into()),
        anomaly_value: Some("1".into()),
        ..Default::default()
    };
    let err = Schema::infer(&table, &options).unwrap_err();
    assert!(
        matches!(&err, DataError::IdentifierColumn { column, distinct: 900, rows: 900 } if column == "id"),
        "{err}"
    );
    assert!(err.to_string().contains("--ignore id"), "{err}");
    // Declared, or ignored, it is accepted.
    for options in [
        SchemaOptions {
            categorical: vec!["id".into()],
            ..options.clone()
        },
        SchemaOptions {
            ignored: vec!["id".into()],
            ..options.clone()
        },
    ] {
        assert!(Schema::infer(&table, &options).is_ok());
    }
}

#[test]
fn a_constant_column_is_kept_with_an_unseen_slot_and_refused_without() {
    let table = read(b"a,b\nx,k\ny,k\nx,k\n").unwrap();
    let reserve = schema(&table, &SchemaOptions::default()).unwrap();
    assert_eq!(reserve.layout().unwrap().groups(), &[3, 2]);
    let err = schema(
        &table,
        &SchemaOptions {
            unseen: UnseenPolicy::Error,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("single category"), "{err}");
}

#[test]
fn a_value_too_large_for_the_encoding_names_its_cell() {
    let train = read(b"w,c\n1.5,a\n2.5,b\n").unwrap();
    let fitted = schema(
        &train,
        &SchemaOptions {
            continuous: vec!["w".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let test = read(b"w,c\n2.0,a\n1e39,b\n").unwrap();
    let err = fitted.encode(&test).unwrap_err();
    assert!(
        matches!(&err, DataError::OutOfRange { line: 3, column, value, .. } if column == "w" && value == "1e39"),
        "{err}"
    );
    assert!(err.to_string().contains("t.csv, line 3"), "{err}");
}

#[test]
fn in_memory_tables_match_csv_and_refuse_bad_shapes() {
    // The same cells as a CSV file and as in-memory columns give the same table (lines too).
    let csv = "a,b\nx,1\ny,2\nx,3\n";
    let from_csv = read(csv.as_bytes()).unwrap();
    let built =
        Table::from_columns("t.csv", [("a", ["x", "y", "x"]), ("b", ["1", "2", "3"])]).unwrap();
    assert_eq!(built.column_names(), from_csv.column_names());
    for c in 0..2 {
        assert_eq!(built.column(c).distinct(), from_csv.column(c).distinct());
        assert_eq!(built.column(c).ids(), from_csv.column(c).ids());
    }
    assert_eq!(
        (0..3).map(|r| built.line(r)).collect::<Vec<_>>(),
        (0..3).map(|r| from_csv.line(r)).collect::<Vec<_>>()
    );

    let err = Table::from_columns("m", [("a", vec!["x", "y"]), ("b", vec!["1"])]).unwrap_err();
    assert!(
        matches!(&err, DataError::ColumnLength { column, expected: 2, got: 1, .. } if column == "b"),
        "{err}"
    );
    let err = Table::from_columns("m", [("a", vec!["x"]), ("a", vec!["y"])]).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::DuplicateColumn {
                first: 1,
                second: 2,
                ..
            }
        ),
        "{err}"
    );
    let none: [(&str, Vec<&str>); 0] = [];
    assert!(matches!(
        Table::from_columns("m", none),
        Err(DataError::EmptyFile { .. })
    ));
    let empty: [(&str, Vec<&str>); 1] = [("a", vec![])];
    assert!(matches!(
        Table::from_columns("m", empty),
        Err(DataError::NoRows { .. })
    ));
}
