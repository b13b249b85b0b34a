//! Fuzzing the two readers of untrusted bytes: the CSV reader (plain and gzip) and the model
//! loader. Random inputs, and valid ones damaged at random, must give a result or an error,
//! never a panic, and a damaged model must never load with other numbers.
//!
//! CI runs a few thousand cases; the full run (10⁶ inputs per reader, a few minutes):
//!
//! ```sh
//! GNSM_FUZZ_CASES=1000000 RAYON_NUM_THREADS=2 cargo test --release -p gnsm --test fuzz
//! ```

mod support;

use std::io::Write;

use candle_core::Device;
use gnsm::data::{CsvOptions, Schema, SchemaOptions, Table};
use gnsm::models::TabResNetConfig;
use gnsm::{Gnsm, GnsmConfig};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn cases(default: u64) -> u64 {
    std::env::var("GNSM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Damage `bytes` one of several ways: flip bits, overwrite, truncate, insert, or replace
/// wholesale with random bytes.
fn damage(rng: &mut Xoshiro256PlusPlus, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match rng.random_range(0..5) {
        0 => {
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..out.len());
                out[i] ^= 1 << rng.random_range(0..8);
            }
        }
        1 => {
            let i = rng.random_range(0..out.len());
            out[i] = rng.random();
        }
        2 => out.truncate(rng.random_range(0..out.len())),
        3 => {
            let i = rng.random_range(0..=out.len());
            let extra: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
            out.splice(i..i, extra);
        }
        _ => {
            let n = rng.random_range(0..64);
            out = (0..n).map(|_| rng.random()).collect();
        }
    }
    out
}

#[test]
fn the_csv_reader_never_panics() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let seed_text = support::planted_csv();
    let seed = &seed_text.as_bytes()[..400];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(seed).unwrap();
    let gz = gz.finish().unwrap();
    for case in 0..cases(4000) {
        let base: &[u8] = if case % 4 == 0 { &gz } else { seed };
        let bytes = damage(&mut rng, base);
        if let Ok(table) = Table::from_stream(&bytes[..], "fuzz.csv", &CsvOptions::default()) {
            // A table that reads must also infer, fit and encode (or refuse) cleanly.
            if let Ok(mut schema) = Schema::infer(&table, &SchemaOptions::default()) {
                let rows: Vec<usize> = (0..table.rows()).collect();
                if schema.fit(&table, &rows).is_ok() {
                    let _ = schema.encode(&table);
                }
            }
        }
    }
}

#[test]
fn the_model_loader_never_panics_and_never_loads_a_damaged_file() {
    let (dir, path) = support::planted_file("fuzz-model");
    let table = Table::read(&path, &CsvOptions::default()).unwrap();
    let mut config = GnsmConfig {
        network: TabResNetConfig {
            width: 8,
            depth: 1,
            embedding_size: 8,
            ..Default::default()
        },
        ..Default::default()
    };
    config.schema.label = Some("label".into());
    config.trainer.steps = 5;
    config.msma = config.msma.with_components(&[2]);
    let (detector, _) = Gnsm::fit(&config, &table, &Device::Cpu).unwrap();
    let model = dir.join("m.gnsm");
    detector.save(&model).unwrap();
    let good = std::fs::read(&model).unwrap();
    let rows: Vec<usize> = (0..20).collect();
    let expected = detector.score_table(&table, Some(&rows)).unwrap();
    let target = dir.join("damaged.gnsm");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    for _ in 0..cases(1500) {
        let bytes = damage(&mut rng, &good);
        std::fs::write(&target, &bytes).unwrap();
        if let Ok(loaded) = Gnsm::load(&target, &Device::Cpu) {
            // Only a change the checksum does not cover (the header's padding) may load,
            // and then it scores exactly as the original.
            let scores = loaded.score_table(&table, Some(&rows)).unwrap();
            assert_eq!(
                scores, expected,
                "a damaged model loaded and scores differently"
            );
        }
    }
    support::cleanup(&dir);
}
