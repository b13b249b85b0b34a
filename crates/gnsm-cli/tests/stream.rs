//! `gnsm score` streams its input: scoring a file of 2,000,000 rows × 40 columns (about
//! 250 MB of CSV, 320 MB as a table held whole) stays under a peak RSS smaller than the
//! file, measured by the kernel for the child process (`wait4`).
#![cfg(target_os = "linux")]

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const COLUMNS: usize = 40;

/// Rows whose 40 columns take 4 values each, the value of column `c` following column 0
/// most of the time (a little structure to learn).
fn write_rows(path: &Path, rows: usize) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    let header: Vec<String> = (0..COLUMNS).map(|c| format!("c{c}")).collect();
    writeln!(out, "{}", header.join(",")).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut line = String::new();
    for _ in 0..rows {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let base = state % 4;
        line.clear();
        for c in 0..COLUMNS as u64 {
            let v = if (state >> (c % 60)) & 7 == 0 {
                (base + 1 + c) % 4
            } else {
                base
            };
            if c > 0 {
                line.push(',');
            }
            line.push_str(&format!("v{v}"));
        }
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
}

/// Run the binary; its exit status and peak resident set in bytes.
// The child is reaped by wait4 (which measures it), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str]) -> (bool, u64) {
    let child = Command::new(env!("CARGO_BIN_EXE_gnsm"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the gnsm binary runs");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // std has no per-child resource usage; wait4 is the kernel's own measurement.
    #[allow(unsafe_code)]
    // SAFETY: a zeroed rusage is a valid value to be filled; `pid` is our own child,
    // reaped here (and never waited on through `child`).
    let (reaped, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        (libc::wait4(pid, &mut status, 0, &mut usage), usage)
    };
    assert_eq!(reaped, pid, "wait4 failed");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // ru_maxrss is in kilobytes on Linux.
    (ok, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn scoring_a_file_larger_than_its_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.csv");
    let big = dir.path().join("big.csv");
    let model = dir.path().join("m.gnsm");
    write_rows(&train, 3000);
    write_rows(&big, 2_000_000);
    let file_bytes = std::fs::metadata(&big).unwrap().len();
    // A small network scored at 2 levels with one draw: the test is about memory, not
    // accuracy, and has to stay quick.
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"network": {"width": 16, "depth": 1, "embedding_size": 8},
            "trainer": {"steps": 40, "batch_size": 64, "eval_every": 20,
                        "noise": {"levels": 2}},
            "score": {"denoising_loss": {"draws": 1}},
            "min_epochs": 0.0}"#,
    )
    .unwrap();
    let (ok, _) = run_measured(&[
        "fit",
        train.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "gnsm fit failed");
    let (ok, peak) = run_measured(&[
        "score",
        model.to_str().unwrap(),
        big.to_str().unwrap(),
        "--out",
        "/dev/null",
        "--top",
        "0",
        "--columns",
        "1",
        "--quiet",
    ]);
    assert!(ok, "gnsm score failed");
    // Held whole, the table alone would be 2M × 40 × 4 bytes = 320 MB.
    let cap = 200 * 1024 * 1024;
    assert!(
        peak < cap && peak < file_bytes,
        "peak RSS {} MB for a {} MB file (cap {} MB)",
        peak >> 20,
        file_bytes >> 20,
        cap >> 20
    );
    eprintln!(
        "scored a {} MB file in a peak RSS of {} MB",
        file_bytes >> 20,
        peak >> 20
    );
}
