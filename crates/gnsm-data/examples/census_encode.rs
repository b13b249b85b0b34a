//! Read, fit and encode census.csv.gz once; print the wall time, rows/s and peak resident
//! memory next to the size of the encoded matrix.
//!
//! `cargo run --release -p gnsm-data --example census_encode`

use std::time::Instant;

use gnsm_data::{default_data_dir, PaperDataset};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let Some(dir) = default_data_dir() else {
        eprintln!("no data directory: set GNSM_DATA_DIR");
        std::process::exit(2);
    };
    let start = Instant::now();
    let data = PaperDataset::Census.load(&dir).expect("census loads");
    let read_fit = start.elapsed().as_secs_f64();
    let encoded = data.schema.encode(&data.table).expect("census encodes");
    let total = start.elapsed().as_secs_f64();
    let matrix_mib = (encoded.data.len() * 4) as f64 / (1024.0 * 1024.0);
    println!(
        "census: {} rows × {} features; read+fit {read_fit:.2} s, total {total:.2} s, {:.0} rows/s",
        encoded.rows,
        encoded.layout.width(),
        encoded.rows as f64 / total
    );
    match peak_rss_mib() {
        Some(peak) => println!(
            "encoded matrix {matrix_mib:.0} MiB, peak RSS {peak:.0} MiB ({:.2}× the matrix)",
            peak / matrix_mib
        ),
        None => println!("encoded matrix {matrix_mib:.0} MiB (peak RSS unavailable)"),
    }
}
