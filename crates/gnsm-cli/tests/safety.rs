//! The defects a hostile run of the CLI found, each pinned: no file is destroyed, no wrong
//! answer leaves with exit 0, every bad argument is refused before any work.

// The planted dataset shared with the library's tests.
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn gnsm(args: &[&str]) -> Output {
    gnsm_with_stdin(args, None)
}

fn gnsm_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gnsm"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gnsm binary runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const SMALL: [&str; 7] = ["--steps", "30", "--width", "16", "--depth", "1", "--quiet"];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small model of the planted data in `dir`.
fn fit(dir: &Path, data: &Path) -> PathBuf {
    let model = dir.join("m.gnsm");
    let mut args = vec!["fit", s(data), "--out", s(&model), "--label", "label"];
    args.extend(SMALL);
    let out = gnsm(&args);
    assert!(out.status.success(), "{}", text(&out));
    model
}

#[test]
fn outputs_never_replace_inputs_and_special_files_are_written_in_place() {
    let (dir, data) = support::planted_file("safety-out");
    let original = std::fs::read(&data).unwrap();
    // fit --out DATA: refused before any work, the data intact.
    let mut args = vec!["fit", s(&data), "--out", s(&data), "--label", "label"];
    args.extend(SMALL);
    let out = gnsm(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("overwrite the input"), "{}", text(&out));
    assert_eq!(std::fs::read(&data).unwrap(), original);

    let model = fit(&dir, &data);
    let model_bytes = std::fs::read(&model).unwrap();
    // score --out DATA or --out MODEL (also through another spelling of the path).
    let other_spelling = dir.join(".").join("m.gnsm");
    for target in [s(&data), s(&model), s(&other_spelling)] {
        let out = gnsm(&["score", s(&model), s(&data), "--out", target, "--quiet"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("overwrite the input"), "{}", text(&out));
    }
    assert_eq!(std::fs::read(&data).unwrap(), original);
    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);

    // A device stays a device.
    #[cfg(unix)]
    if Path::new("/dev/null").exists() {
        let out = gnsm(&[
            "score",
            s(&model),
            s(&data),
            "--out",
            "/dev/null",
            "--quiet",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    }

    // `--out -` writes the scores to stdout, the summary to stderr.
    let out = gnsm(&["score", s(&model), s(&data), "--out", "-", "--top", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(stdout.starts_with("row,line,score,rank,"), "{stdout}");
    assert_eq!(stdout.lines().count(), 621);
    assert!(String::from_utf8_lossy(&out.stderr).contains("most anomalous"));
    // No temporary file left anywhere in the directory.
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("gnsm-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    support::cleanup(&dir);
}

#[test]
fn bad_arguments_and_outputs_fail_before_reading_the_data() {
    let dir = tempfile::tempdir().unwrap();
    // The data does not exist: any error about it would mean the arguments were not
    // checked first.
    let missing = dir.path().join("never-read.csv");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--out".into(), s(&dir.path().join("no/dir/m.gnsm")).into()],
            "does not exist",
        ),
        (vec!["--out".into(), s(dir.path()).into()], "is a directory"),
        (
            vec![
                "--out".into(),
                s(&dir.path().join("m.gnsm")).into(),
                "--preset".into(),
                "paper".into(),
                "--components".into(),
                "0".into(),
            ],
            "n_components = 0",
        ),
        (
            vec![
                "--out".into(),
                s(&dir.path().join("m.gnsm")).into(),
                "--steps".into(),
                "0".into(),
            ],
            "steps",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["fit".to_string(), s(&missing).to_string()];
        args.extend(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = gnsm(&args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let msg = text(&out);
        assert!(msg.contains(expected), "{args:?}: {msg}");
        assert!(
            !msg.contains("no such file"),
            "{args:?} read the data: {msg}"
        );
        assert!(
            !msg.contains("gnsm-tmp"),
            "{args:?} names a temporary file: {msg}"
        );
        assert_eq!(msg.matches(expected).count(), 1, "said once: {msg}");
    }
    // eval: zero seeds, and a report in a missing directory, are refused up front.
    let out = gnsm(&["eval", s(&missing), "--seeds", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--seeds 0"), "{}", text(&out));
    let out = gnsm(&[
        "eval",
        s(&missing),
        "--report",
        s(&dir.path().join("no/dir/r.json")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
    // More mixture components than rows: refused after reading, before training.
    let (pdir, data) = support::planted_file("safety-components");
    let mut args = vec![
        "fit",
        s(&data),
        "--out",
        "/dev/null",
        "--label",
        "label",
        "--preset",
        "paper",
        "--components",
        "5000",
    ];
    args.extend(SMALL);
    let out = gnsm(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("5000 components"), "{}", text(&out));
    support::cleanup(&pdir);
}

#[test]
fn partial_and_misspelt_configs() {
    let (dir, data) = support::planted_file("safety-config");
    let config = dir.join("c.json");
    // `{}` is the defaults: 5 components would mean the denoising default leaked as off.
    std::fs::write(&config, "{\"msma\": {\"selection\": null, \"gmm\": {\"n_components\": 2}}, \"trainer\": {\"steps\": 30}, \"network\": {\"width\": 16, \"depth\": 1}}").unwrap();
    let model = dir.join("m.gnsm");
    let out = gnsm(&[
        "fit",
        s(&data),
        "--out",
        s(&model),
        "--label",
        "label",
        "--config",
        s(&config),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let header = std::fs::read(&model).unwrap();
    let header = String::from_utf8_lossy(&header);
    assert!(header.contains(r#"\"denoise\":true"#), "denoising stays on");

    for (json, key) in [
        (r#"{"trainer": {"stepz": 30}}"#, "trainer.stepz"),
        (r#"{"val_fraction": 1.5}"#, "val_fraction"),
    ] {
        std::fs::write(&config, json).unwrap();
        let out = gnsm(&[
            "fit",
            s(&data),
            "--out",
            s(&model),
            "--config",
            s(&config),
            "--quiet",
        ]);
        assert_eq!(out.status.code(), Some(1), "{json}");
        assert!(text(&out).contains(key), "{json}: {}", text(&out));
    }
    support::cleanup(&dir);
}

#[test]
fn pipes_stdin_and_gzip_through_a_pipe() {
    let (dir, data) = support::planted_file("safety-pipe");
    let csv = std::fs::read(&data).unwrap();
    let model = dir.join("m.gnsm");
    // Plain CSV on stdin: the header keeps its first bytes.
    let mut args = vec!["fit", "-", "--out", s(&model), "--label", "label"];
    args.extend(SMALL);
    let out = gnsm_with_stdin(&args, Some(&csv));
    assert!(out.status.success(), "{}", text(&out));
    // Gzip on stdin, scored to stdout as JSON Lines.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&csv).unwrap();
    let gz = gz.finish().unwrap();
    let out = gnsm_with_stdin(
        &[
            "score",
            s(&model),
            "-",
            "--out",
            "-",
            "--format",
            "jsonl",
            "--quiet",
        ],
        Some(&gz),
    );
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 620);
    assert_eq!(lines[0]["row"], 1);
    assert_eq!(lines[0]["line"], 2);
    assert!(lines.iter().all(|l| l["rank"].as_u64().is_some()));
    support::cleanup(&dir);
}

#[test]
fn crlf_lines_bad_values_labels_and_spreadsheet_safety() {
    let (dir, data) = support::planted_file("safety-values");
    let model = fit(&dir, &data);
    // CRLF file: the `line` column is the line an editor shows.
    let crlf = dir.join("crlf.csv");
    std::fs::write(&crlf, "a,b,c,d\r\nv0,v0,v1,w0\r\nv1,v1,v2,w1\r\n").unwrap();
    let scores = dir.join("s.csv");
    let out = gnsm(&["score", s(&model), s(&crlf), "--out", s(&scores), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let csv = std::fs::read_to_string(&scores).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[1].starts_with("1,2,") && lines[2].starts_with("2,3,"),
        "{csv}"
    );

    // The label column is never read when scoring: odd values there are fine.
    let labelled = dir.join("labelled.csv");
    std::fs::write(
        &labelled,
        "a,b,c,d,label\nv0,v0,v1,w0,\nv1,v1,v2,w1,maybe\n",
    )
    .unwrap();
    let out = gnsm(&[
        "score",
        s(&model),
        s(&labelled),
        "--out",
        s(&scores),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // Clean data whose label is all 0 fits without --anomaly-value; all 1 says why not.
    let clean = dir.join("clean.csv");
    let all_anomalous = dir.join("bad.csv");
    let text_of = |label: &str| {
        let mut t = String::from("a,b,label\n");
        for i in 0..40 {
            t.push_str(&format!("x{},y{},{label}\n", i % 3, i % 2));
        }
        t
    };
    std::fs::write(&clean, text_of("0")).unwrap();
    std::fs::write(&all_anomalous, text_of("1")).unwrap();
    let mut args = vec![
        "fit",
        s(&clean),
        "--out",
        "/dev/null",
        "--label",
        "label",
        "--preset",
        "paper",
        "--components",
        "2",
    ];
    args.extend(SMALL);
    let out = gnsm(&args);
    assert!(out.status.success(), "{}", text(&out));
    args[1] = s(&all_anomalous);
    let out = gnsm(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no inlier rows"), "{}", text(&out));

    // A continuous value beyond f32: file, line, column and value.
    let wide = dir.join("wide.csv");
    let mut t = String::from("w,c\n");
    for i in 0..40 {
        t.push_str(&format!("{}.5,k{}\n", i % 7, i % 3));
    }
    std::fs::write(&wide, &t).unwrap();
    let wide_model = dir.join("w.gnsm");
    let mut args = vec![
        "fit",
        s(&wide),
        "--out",
        s(&wide_model),
        "--continuous",
        "w",
        "--preset",
        "paper",
        "--components",
        "2",
    ];
    args.extend(SMALL);
    let out = gnsm(&args);
    assert!(out.status.success(), "{}", text(&out));
    let huge = dir.join("huge.csv");
    std::fs::write(&huge, "w,c\n1.5,k0\n2.5,k1\n1e39,k2\n").unwrap();
    let out = gnsm(&["score", s(&wide_model), s(&huge), "--out", s(&scores)]);
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out);
    assert!(
        msg.contains("huge.csv, line 4") && msg.contains("\"w\"") && msg.contains("1e39"),
        "{msg}"
    );

    // An identifier column is refused with advice.
    let ids = dir.join("ids.csv");
    let mut t = String::from("id,c\n");
    for i in 0..100 {
        t.push_str(&format!("row{i},k{}\n", i % 3));
    }
    std::fs::write(&ids, &t).unwrap();
    let mut args = vec!["fit", s(&ids), "--out", "/dev/null"];
    args.extend(SMALL);
    let out = gnsm(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--ignore id"), "{}", text(&out));

    // Formula-like header and cell text never start a cell in the scores; control bytes
    // never reach the file or the terminal.
    let hostile = dir.join("hostile.csv");
    let mut t = String::from("=HYPERLINK(1),b\n");
    for i in 0..40 {
        t.push_str(&format!("@x{},y{}\n", i % 3, i % 2));
    }
    t.push_str("\u{1b}[31mevil\u{7},y0\n");
    std::fs::write(&hostile, &t).unwrap();
    let hostile_model = dir.join("h.gnsm");
    let mut args = vec![
        "fit",
        s(&hostile),
        "--out",
        s(&hostile_model),
        "--preset",
        "paper",
        "--components",
        "2",
    ];
    args.extend(SMALL);
    let out = gnsm(&args);
    assert!(out.status.success(), "{}", text(&out));
    let out = gnsm(&[
        "score",
        s(&hostile_model),
        s(&hostile),
        "--out",
        s(&scores),
        "--columns",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let csv = std::fs::read_to_string(&scores).unwrap();
    for cell in csv.lines().skip(1).flat_map(|l| l.split(',')) {
        let cell = cell.trim_start_matches('"');
        assert!(
            !cell.starts_with(['=', '@', '+']),
            "a cell starts a formula: {cell}"
        );
    }
    assert!(!csv.contains('\u{1b}') && !csv.contains('\u{7}'), "{csv}");
    assert!(!text(&out).contains('\u{1b}'), "{}", text(&out));
    support::cleanup(&dir);
}

#[cfg(unix)]
#[test]
fn models_get_the_usual_mode_and_a_replaced_one_keeps_its_own() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, data) = support::planted_file("safety-mode");
    let model = fit(&dir, &data);
    let plain = dir.join("plain");
    std::fs::File::create(&plain).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&model), mode(&plain));
    std::fs::set_permissions(&model, std::fs::Permissions::from_mode(0o644)).unwrap();
    fit(&dir, &data);
    assert_eq!(mode(&model), 0o644);
    support::cleanup(&dir);
}
