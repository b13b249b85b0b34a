//! Host noise sampling throughput: categorical entries perturbed per second on one thread.
//!
//! `cargo bench -p gnsm-noise --bench noise` (see docs/benchmarks.md for the numbers).

#![allow(missing_docs)] // criterion_group! generates undocumented public functions

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gnsm_noise::{perturb_batch, NoiseRng, NoiseSchedule, Perturbation};
use rand::SeedableRng;

#[path = "support/shapes.rs"]
mod shapes;

fn noise(c: &mut Criterion) {
    let layout = shapes::census_layout();
    let schedule = NoiseSchedule::default();
    let rows = 2048;
    let mut rng = NoiseRng::seed_from_u64(0);
    let clean = shapes::random_rows(&layout, rows, &mut rng);
    let mut levels = Vec::new();
    schedule.sample_levels(&mut rng, rows, &mut levels);
    let mut out = Perturbation::default();

    let mut group = c.benchmark_group("noise");
    group.throughput(Throughput::Elements(
        (rows * layout.categorical_width()) as u64,
    ));
    group.bench_function("perturb_batch/census_2048x401", |b| {
        b.iter(|| perturb_batch(&clean, &layout, &schedule, &levels, &mut rng, &mut out).unwrap())
    });
    group.finish();
}

criterion_group!(benches, noise);
criterion_main!(benches);
