//! Gaussian-mixture fit time (criterion). The full-size comparison with scikit-learn
//! (250,000 × 20, {3,5,7,9} selection) is `cargo run --release -p msma --example gmm_timing`;
//! see docs/benchmarks.md.

#![allow(missing_docs)] // criterion_group! generates undocumented public functions

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use msma::{GmmParams, Matrix};

#[path = "../examples/support/synthetic.rs"]
mod synthetic;

fn gmm(c: &mut Criterion) {
    let x: Matrix = synthetic::known_mixture(50_000, 20, 9, 0);
    let mut group = c.benchmark_group("gmm");
    group.sample_size(10);
    group.throughput(Throughput::Elements(x.rows() as u64));
    group.bench_function("fit_k9/50000x20", |b| {
        b.iter(|| GmmParams::new(9).seed(0).fit(&x).unwrap())
    });
    let fitted = GmmParams::new(9).seed(0).fit(&x).unwrap();
    group.bench_function("score_samples_k9/50000x20", |b| {
        b.iter(|| fitted.score_samples(&x).unwrap())
    });
    group.finish();
}

criterion_group!(benches, gmm);
criterion_main!(benches);
