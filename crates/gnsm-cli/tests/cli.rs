//! The `gnsm` command line: each subcommand, and the errors a shell user gets.

// The planted dataset shared with the library's tests.
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::process::{Command, Output};

fn gnsm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gnsm"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("the gnsm binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn fit_score_and_eval() {
    let (dir, path) = support::planted_file("cli");
    let data = path.to_str().unwrap();
    let model = dir.join("m.gnsm");
    let model = model.to_str().unwrap();
    let small = ["--steps", "200", "--width", "32", "--depth", "1", "--quiet"];

    // One `--components` value fixes the mixture size (the default chooses among 3,5,7,9).
    let mut args = vec!["fit", data, "--out", model, "--label", "label"];
    args.extend(small);
    args.extend(["--preset", "paper", "--components", "2"]);
    let out = gnsm(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("fitted on"), "{}", text(&out));
    assert!(
        text(&out).contains("60 held out to calibrate"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains(" 2 MSMA components"), "{}", text(&out));

    // `info` verifies the file and says what it holds.
    let out = gnsm(&["info", model]);
    assert!(out.status.success(), "{}", text(&out));
    let info = text(&out);
    for expected in [
        "format version 2",
        "file sha256 ",
        "label \"label\"",
        "categorical, ",
        "tab-ResNet width 32, depth 1",
        "training: 200 steps",
        "MSMA: a 2-component Gaussian mixture",
        "calibration: 60 held-out inlier scores",
    ] {
        assert!(
            info.contains(expected),
            "{expected:?} missing from:\n{info}"
        );
    }

    let scores = dir.join("scores.csv");
    let out = gnsm(&[
        "score",
        model,
        data,
        "--out",
        scores.to_str().unwrap(),
        "--top",
        "3",
        "--alpha",
        "0.05",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let csv = std::fs::read_to_string(&scores).unwrap();
    assert!(csv.starts_with(
        "row,line,score,rank,p_value,is_anomaly,column_1,value_1,expected_1,share_1,unseen_1,"
    ));
    assert_eq!(csv.lines().count(), 621);
    // Every row has a p-value in (0, 1] and a decision; planted anomalies (the last 20
    // rows) are flagged more often than inliers.
    let mut flags = [0usize; 2];
    for (i, line) in csv.lines().skip(1).enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let p: f64 = fields[4].parse().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{line}");
        if fields[5] == "true" {
            flags[usize::from(i >= 600)] += 1;
        } else {
            assert_eq!(fields[5], "false", "{line}");
        }
    }
    assert!(
        flags[1] as f64 / 20.0 > flags[0] as f64 / 600.0,
        "{flags:?}"
    );
    assert!(
        text(&out).contains("rows flagged anomalous"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("most anomalous"));

    let json = dir.join("scores.json");
    let out = gnsm(&[
        "score",
        model,
        data,
        "--out",
        json.to_str().unwrap(),
        "--format",
        "json",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 620);

    // JSON Lines on standard output, with a key column copied beside each score.
    let out = gnsm(&[
        "score", model, data, "--out", "-", "--format", "jsonl", "--id", "b", "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 620);
    assert!(records[0]["id"].as_str().unwrap().starts_with('v'));
    assert!(records[0]["p_value"].as_f64().is_some());
    let out = gnsm(&["score", model, data, "--out", "-", "--id", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--id \"nope\""), "{}", text(&out));

    let report = dir.join("report.json");
    let mut args = vec![
        "eval",
        data,
        "--seeds",
        "1",
        "--report",
        report.to_str().unwrap(),
        "--compare",
        "--no-denoise",
    ];
    args.extend(small);
    let out = gnsm(&args);
    assert!(out.status.success(), "{}", text(&out));
    for detector in ["GNSM", "IForest", "ECOD", "GMM one-hot"] {
        assert!(text(&out).contains(detector), "{}", text(&out));
    }
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(parsed["seeds"].as_array().unwrap().len(), 1);
    // The default score's one-hot term: reported in the file, and said in the seed's line.
    let term = &parsed["seeds"][0]["one_hot"];
    assert!(term["gap"].as_f64().unwrap().is_finite(), "{term}");
    let said = if term["used"].as_bool().unwrap() {
        format!("one-hot mixture (gap {:.2})", term["gap"].as_f64().unwrap())
    } else {
        format!(
            "loss alone (one-hot gap {:.2})",
            term["gap"].as_f64().unwrap()
        )
    };
    assert!(text(&out).contains(&said), "{said:?} in {}", text(&out));
    assert_eq!(parsed["baselines"].as_array().unwrap().len(), 3);
    for b in parsed["baselines"].as_array().unwrap() {
        let ap = b["ap"].as_f64().unwrap();
        assert!(ap > 0.0 && ap <= 100.0, "{b}");
    }
    support::cleanup(&dir);
}

#[test]
fn errors_a_shell_user_can_act_on() {
    let (dir, path) = support::planted_file("cli-errors");
    let data = path.to_str().unwrap();
    let out_model = dir.join("m.gnsm");
    let out_model = out_model.to_str().unwrap();

    // Bad path.
    let out = gnsm(&["fit", "/no/such/file.csv", "--out", out_model]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("/no/such/file.csv: no such file"),
        "{}",
        text(&out)
    );

    // Bad column name.
    let out = gnsm(&[
        "fit",
        data,
        "--out",
        out_model,
        "--continuous",
        "nope",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("\"nope\""), "{}", text(&out));

    // Bad value, with line and column: declare a categorical column continuous.
    let out = gnsm(&[
        "fit",
        data,
        "--out",
        out_model,
        "--continuous",
        "a",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out);
    assert!(
        msg.contains("line 2") && msg.contains("\"a\"") && msg.contains("\"v"),
        "{msg}"
    );

    // A mixture size for a score that has no mixture: refused, not ignored.
    let out = gnsm(&["fit", data, "--out", out_model, "--components", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--preset paper"), "{}", text(&out));

    // The schema flags: missing markers and mean imputation, the unseen policy, the
    // category cap.
    let gappy = dir.join("gappy.csv");
    let mut rows = String::from("c,w\n");
    for i in 0..40 {
        let w = if i == 7 {
            "-".to_string()
        } else {
            format!("{}.5", i % 5)
        };
        rows.push_str(&format!("k{},{w}\n", i % 3));
    }
    std::fs::write(&gappy, rows).unwrap();
    let gappy = gappy.to_str().unwrap();
    let tiny = ["--steps", "5", "--width", "8", "--depth", "1", "--quiet"];
    let fit = |extra: &[&str]| {
        let mut args = vec!["fit", gappy, "--out", out_model, "--continuous", "w"];
        args.extend(extra);
        args.extend(tiny);
        gnsm(&args)
    };
    let out = fit(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("line 9"), "{}", text(&out));
    assert!(fit(&["--missing", "-", "--impute-mean"]).status.success());
    let out = fit(&["--missing", "-", "--impute-mean", "--max-categories", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("\"c\""), "{}", text(&out));
    assert!(
        fit(&["--missing", "-", "--impute-mean", "--unseen", "error"])
            .status
            .success()
    );
    let unseen = dir.join("unseen.csv");
    std::fs::write(&unseen, "c,w\nk1,1.5\nk9,2.5\n").unwrap();
    let scores = dir.join("unseen-scores.csv");
    let out = gnsm(&[
        "score",
        out_model,
        unseen.to_str().unwrap(),
        "--out",
        scores.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("line 3") && text(&out).contains("\"k9\""),
        "{}",
        text(&out)
    );

    // Evaluation without labels.
    let nolabel = dir.join("nolabel.csv");
    std::fs::write(&nolabel, "x,y\na,b\nc,d\n").unwrap();
    let out = gnsm(&["eval", nolabel.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--label"), "{}", text(&out));

    // A device this binary was not built for names the feature, before any data is read.
    let out = gnsm(&[
        "fit",
        "/no/such.csv",
        "--out",
        out_model,
        "--device",
        "cuda:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--features cuda"), "{}", text(&out));

    // A decision level outside (0, 1), refused before the model is read.
    let out = gnsm(&["score", data, data, "--out", out_model, "--alpha", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("alpha = 2"), "{}", text(&out));

    // A file that is not a model.
    let out = gnsm(&["score", data, data, "--out", out_model]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("GNSM model"), "{}", text(&out));

    // `info` on a file that is not a model, and on a damaged model.
    let out = gnsm(&["info", data]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("GNSM model"), "{}", text(&out));

    // A command line that does not parse.
    let out = gnsm(&["fit"]);
    assert_eq!(out.status.code(), Some(2));
    let out = gnsm(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    support::cleanup(&dir);
}

/// The planted CSV as a Parquet file of string columns.
fn planted_parquet(path: &std::path::Path) {
    use std::sync::Arc;
    let text = support::planted_csv();
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let columns: Vec<(&str, arrow_array::ArrayRef)> = names
        .iter()
        .enumerate()
        .map(|(c, &name)| {
            let values: Vec<&str> = rows.iter().map(|r| r[c]).collect();
            let array: arrow_array::ArrayRef = Arc::new(arrow_array::StringArray::from(values));
            (name, array)
        })
        .collect();
    let batch = arrow_array::RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn a_parquet_file_scores_as_its_csv() {
    let (dir, path) = support::planted_file("cli-parquet");
    let data = path.to_str().unwrap();
    let parquet = dir.join("planted.parquet");
    planted_parquet(&parquet);
    let model = dir.join("m.gnsm");
    let model = model.to_str().unwrap();
    let out = gnsm(&[
        "fit", data, "--out", model, "--label", "label", "--steps", "50", "--width", "16",
        "--depth", "1", "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let scores = |input: &str| -> Vec<f64> {
        let out = gnsm(&[
            "score", model, input, "--out", "-", "--format", "jsonl", "--quiet",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["score"].as_f64().unwrap()
            })
            .collect()
    };
    let from_csv = scores(data);
    assert_eq!(from_csv.len(), 620);
    assert_eq!(scores(parquet.to_str().unwrap()), from_csv);

    // Parquet out: the same rows and scores, typed columns, the key column included.
    let out_path = dir.join("scores.parquet");
    let out = gnsm(&[
        "score",
        model,
        data,
        "--out",
        out_path.to_str().unwrap(),
        "--format",
        "parquet",
        "--id",
        "a",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let file = std::fs::File::open(&out_path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut got = Vec::new();
    let mut names = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        names = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let score = batch
            .column_by_name("score")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .unwrap()
            .clone();
        got.extend(score.values().iter().copied());
    }
    assert_eq!(got, from_csv);
    assert_eq!(
        &names[..8],
        [
            "row",
            "line",
            "score",
            "rank",
            "p_value",
            "is_anomaly",
            "a",
            "column_1"
        ]
    );
    support::cleanup(&dir);
}
