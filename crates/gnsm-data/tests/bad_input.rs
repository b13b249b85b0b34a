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
    // Scoring a file whose label has a third value names its line.
    let other = read(b"a,label\nx,no\ny,maybe\n").unwrap();
    let err = s.encode(&other).unwrap_err();
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
    let mut text = String::from("id,x\n");
    for i in 0..50 {
        text.push_str(&format!("{i},a\n"));
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
