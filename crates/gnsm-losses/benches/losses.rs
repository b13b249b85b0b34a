//! Perturb + combined loss forward + backward on a census-shaped batch (B = 2048, 28 groups,
//! 396 categorical + 5 continuous columns), for both group-softmax strategies and both
//! categorical objectives.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p gnsm-losses --bench losses` (see docs/benchmarks.md).

#![allow(missing_docs)] // criterion_group! generates undocumented public functions

use candle_core::{DType, Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gnsm_losses::{CategoricalObjective, GnsmLoss, GroupStrategy, LossConfig};
use gnsm_noise::{perturb_batch, NoiseRng, NoiseSchedule, Perturbation};
use rand::{Rng, SeedableRng};

#[path = "../../gnsm-noise/benches/support/shapes.rs"]
mod shapes;

fn losses(c: &mut Criterion) {
    let device = Device::Cpu;
    let layout = shapes::census_layout();
    let schedule = NoiseSchedule::default();
    let rows = 2048;
    let mut rng = NoiseRng::seed_from_u64(0);
    let clean = shapes::random_rows(&layout, rows, &mut rng);
    let init: Vec<f32> = (0..rows * layout.width())
        .map(|_| rng.random_range(-3.0f32..3.0))
        .collect();
    let output =
        Var::from_tensor(&Tensor::from_vec(init, (rows, layout.width()), &device).unwrap())
            .unwrap();
    let mut levels = Vec::new();
    let mut noise = Perturbation::default();

    let mut group = c.benchmark_group("losses");
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(30);
    for objective in [CategoricalObjective::Kl, CategoricalObjective::Mse] {
        for strategy in [GroupStrategy::Padded, GroupStrategy::Narrow] {
            let loss = GnsmLoss::new(
                &layout,
                LossConfig {
                    objective,
                    strategy,
                },
                &device,
            )
            .unwrap();
            let name = format!("perturb_fwd_bwd/census_2048/{objective:?}/{strategy:?}");
            group.bench_function(name, |b| {
                b.iter(|| {
                    schedule.sample_levels(&mut rng, rows, &mut levels);
                    perturb_batch(&clean, &layout, &schedule, &levels, &mut rng, &mut noise)
                        .unwrap();
                    let targets = loss.targets(&noise, DType::F32).unwrap();
                    let parts = loss.forward(output.as_tensor(), &targets).unwrap();
                    parts.total.backward().unwrap()
                })
            });
        }
    }
    // The phases of the default configuration, separately.
    let loss = GnsmLoss::new(&layout, LossConfig::default(), &device).unwrap();
    schedule.sample_levels(&mut rng, rows, &mut levels);
    perturb_batch(&clean, &layout, &schedule, &levels, &mut rng, &mut noise).unwrap();
    group.bench_function("phase/targets_host/census_2048", |b| {
        b.iter(|| loss.targets(&noise, DType::F32).unwrap())
    });
    let targets = loss.targets(&noise, DType::F32).unwrap();
    group.bench_function("phase/fwd_bwd/census_2048", |b| {
        b.iter(|| {
            let parts = loss.forward(output.as_tensor(), &targets).unwrap();
            parts.total.backward().unwrap()
        })
    });
    group.bench_function("phase/fwd/census_2048", |b| {
        b.iter(|| loss.forward(output.as_tensor(), &targets).unwrap())
    });
    group.finish();
}

criterion_group!(benches, losses);
criterion_main!(benches);
