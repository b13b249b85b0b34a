//! Read + fit + encode census.csv.gz end to end (299,285 rows × 34 columns → 401 features).
//! Needs the data directory (`GNSM_DATA_DIR` or `../shared/data`); prints a note and does
//! nothing without it. Peak memory: `cargo run --release -p gnsm-data --example census_encode`.

#![allow(missing_docs)] // criterion_group! generates undocumented public functions

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gnsm_data::{default_data_dir, Encoding, PaperDataset};

fn census(c: &mut Criterion) {
    let Some(dir) = default_data_dir().filter(|d| d.join("census.csv.gz").is_file()) else {
        println!("census bench skipped: no data directory");
        return;
    };
    let mut group = c.benchmark_group("data");
    group.sample_size(10);
    group.throughput(Throughput::Elements(299_285));
    group.bench_function("census_read_fit_encode", |b| {
        b.iter(|| {
            let data = PaperDataset::Census.load(&dir).unwrap();
            let rows: Vec<usize> = (0..data.table.rows()).collect();
            data.schema
                .encode_rows(&data.table, &rows, Encoding::LogOneHot)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, census);
criterion_main!(benches);
