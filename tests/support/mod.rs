//! A small dataset with planted anomalies, shared by the pipeline and CLI tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// 600 inliers over four categorical columns with a strong structure (`b = a`,
/// `c = (a + 1) mod 4`, `d` free over 3 values), then 20 planted anomalies: combinations of
/// common categories that never occur together (`b ≠ a`). Column `label`: 1 for the planted
/// rows.
pub fn planted_csv() -> String {
    let mut text = String::from("a,b,c,d,label\n");
    let mut state = 12345u64;
    let mut next = |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    for _ in 0..600 {
        let a = next(4);
        let d = next(3);
        text.push_str(&format!("v{a},v{a},v{},w{d},0\n", (a + 1) % 4));
    }
    for i in 0..20u64 {
        let a = i % 4;
        let b = (a + 1 + i % 3) % 4;
        text.push_str(&format!("v{a},v{b},v{},w{},1\n", (a + 1) % 4, i % 3));
    }
    text
}

/// Write the planted dataset into a fresh temporary directory; returns (dir, csv path).
pub fn planted_file(tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("gnsm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("planted.csv");
    std::fs::write(&path, planted_csv()).unwrap();
    (dir, path)
}

/// Remove a test directory.
pub fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// A small, fast detector for the planted data (width 64, depth 2, seed 7, no minimum
/// number of passes), trained for `steps` steps of 128 rows and validated three times.
pub fn small_config(steps: usize) -> gnsm::GnsmConfig {
    let mut config = gnsm::GnsmConfig {
        network: gnsm::models::TabResNetConfig {
            width: 64,
            depth: 2,
            embedding_size: 32,
            ..Default::default()
        },
        schema: gnsm::data::SchemaOptions {
            label: Some("label".into()),
            ..Default::default()
        },
        ..Default::default()
    }
    .with_seed(7);
    config.trainer.steps = steps;
    config.trainer.batch_size = 128;
    config.trainer.eval_every = (steps / 3).max(1);
    config.trainer.lr = 3e-3;
    config.min_epochs = 0.0;
    config
}
