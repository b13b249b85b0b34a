//! The trainer: learning on data with known structure, exact resume, non-finite handling,
//! early stopping and logs.

use candle_core::Device;
use gnsm_models::{
    ModelError, NonFinitePolicy, RunOptions, TabResNetConfig, TrainEvent, Trainer, TrainerConfig,
};
use gnsm_noise::{FeatureLayout, NoiseRng, LOG_ONE_HOT_COLD};
use rand::{Rng, SeedableRng};

/// Rows of three categorical columns with a deterministic relation: b = a, c = (a + 1) mod 3
/// (a uniform over 3 values) — a model that learns it scores far better than the marginals.
fn structured(rows: usize, seed: u64) -> (FeatureLayout, Vec<f32>) {
    let layout = FeatureLayout::categorical(vec![3, 3, 3]).unwrap();
    let mut rng = NoiseRng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(rows * 9);
    for _ in 0..rows {
        let a = rng.random_range(0..3usize);
        for hot in [a, a, (a + 1) % 3] {
            data.extend((0..3).map(|j| if j == hot { 0.0 } else { LOG_ONE_HOT_COLD }));
        }
    }
    (layout, data)
}

fn net() -> TabResNetConfig {
    TabResNetConfig {
        width: 32,
        depth: 2,
        embedding_size: 16,
        seed: 1,
        ..Default::default()
    }
}

fn quiet(steps: usize) -> TrainerConfig {
    TrainerConfig {
        steps,
        batch_size: 64,
        eval_every: 100,
        lr: 3e-3,
        ema_decay: 0.9,
        seed: 5,
        ..Default::default()
    }
}

#[test]
fn training_reduces_the_validation_loss() {
    let (layout, train) = structured(512, 1);
    let (_, val) = structured(128, 2);
    let mut trainer = Trainer::new(net(), layout, quiet(400), &Device::Cpu).unwrap();
    let before = trainer.validation_loss(trainer.ema(), &val).unwrap();
    let mut validations = 0;
    let summary = trainer
        .fit(&train, &val, &mut |e| {
            if matches!(e, TrainEvent::Validation { .. }) {
                validations += 1;
            }
        })
        .unwrap();
    assert_eq!(summary.steps, 400);
    assert_eq!(validations, 4);
    assert_eq!(summary.curve.len(), 4);
    let after = trainer.validation_loss(trainer.best(), &val).unwrap();
    assert!((after - summary.best_val_loss).abs() < 1e-9);
    // The dependent columns make most of the noise predictable: expect a large drop.
    assert!(after < 0.6 * before, "validation loss {before} -> {after}");
}

#[test]
fn resume_continues_bit_for_bit() {
    let (layout, train) = structured(256, 3);
    let (_, val) = structured(64, 4);
    let dir = std::env::temp_dir().join(format!("gnsm-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let total = 2000;

    let mut straight = Trainer::new(
        net(),
        layout.clone(),
        TrainerConfig {
            eval_every: 500,
            ..quiet(total)
        },
        &Device::Cpu,
    )
    .unwrap();
    let full = straight.fit(&train, &val, &mut |_| {}).unwrap();

    let checkpoint = dir.join("run.safetensors");
    let config = TrainerConfig {
        eval_every: 500,
        ..quiet(total)
    };
    // Stop half-way (the cosine schedule still spans the whole budget), then resume.
    let mut first = Trainer::new(net(), layout, config, &Device::Cpu).unwrap();
    let run = RunOptions {
        checkpoint: Some(checkpoint.clone()),
        log_csv: Some(dir.join("loss.csv")),
    };
    first.set_run_options(run.clone());
    let _ = first
        .fit_until(total / 2, &train, &val, &mut |_| {})
        .unwrap();
    drop(first);

    let mut resumed = Trainer::resume(&checkpoint, &Device::Cpu).unwrap();
    assert_eq!(resumed.step(), total / 2);
    // The run options come back with the state; the saved settings do not carry them.
    assert_eq!(resumed.run_options(), &run);
    let saved = serde_json::to_string(resumed.config()).unwrap();
    assert!(
        !saved.contains("checkpoint") && !saved.contains("log_csv"),
        "{saved}"
    );
    let second = resumed.fit(&train, &val, &mut |_| {}).unwrap();
    assert_eq!(second.steps, total);

    for ((name, a), (_, b)) in straight
        .model()
        .named_vars()
        .iter()
        .zip(resumed.model().named_vars())
    {
        let a: Vec<f32> = a.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} differs after resume"
        );
    }
    assert_eq!(full.best_val_loss.to_bits(), second.best_val_loss.to_bits());
    assert_eq!(full.curve, second.curve);
    // The best weights beside the checkpoint load as a model.
    assert!(
        gnsm_models::TabResNetModel::load(Trainer::best_path(&checkpoint), &Device::Cpu).is_ok()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_finite_input_stops_or_is_skipped() {
    let (layout, mut train) = structured(64, 5);
    let (_, val) = structured(16, 6);
    train.iter_mut().for_each(|v| *v = f32::NAN);
    let mut trainer = Trainer::new(net(), layout.clone(), quiet(10), &Device::Cpu).unwrap();
    let err = trainer.fit(&train, &val, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, ModelError::NonFinite { step: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("step 1"));

    let config = TrainerConfig {
        non_finite: NonFinitePolicy::SkipBatch,
        ..quiet(10)
    };
    let mut trainer = Trainer::new(net(), layout, config, &Device::Cpu).unwrap();
    let summary = trainer.fit(&train, &val, &mut |_| {}).unwrap();
    assert_eq!(summary.skipped_batches, 10);
}

#[test]
fn early_stopping_logs_and_bad_settings() {
    let (layout, train) = structured(64, 7);
    let (_, val) = structured(16, 8);
    let dir = std::env::temp_dir().join(format!("gnsm-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("loss.csv");
    // A tiny learning rate cannot improve by 1e-3: patience 1 stops well before 5000 steps.
    let config = TrainerConfig {
        lr: 1e-7,
        schedule: gnsm_models::LrSchedule::Constant,
        eval_every: 20,
        patience: Some(1),
        min_delta: 1e-3,
        ..quiet(5000)
    };
    let mut trainer = Trainer::new(net(), layout.clone(), config, &Device::Cpu).unwrap();
    trainer.set_run_options(RunOptions {
        log_csv: Some(log.clone()),
        ..Default::default()
    });
    let summary = trainer.fit(&train, &val, &mut |_| {}).unwrap();
    assert_eq!(summary.stopped_by, gnsm_models::StopReason::EarlyStopping);
    assert!(summary.steps < 5000);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("step,train_loss,val_loss,lr,seconds\n"));
    assert_eq!(text.lines().count(), 1 + summary.curve.len());
    std::fs::remove_dir_all(&dir).unwrap();

    for bad in [
        TrainerConfig {
            batch_size: 0,
            ..quiet(1)
        },
        TrainerConfig {
            lr: -1.0,
            ..quiet(1)
        },
        TrainerConfig {
            ema_decay: 1.0,
            ..quiet(1)
        },
        TrainerConfig {
            grad_clip: Some(0.0),
            ..quiet(1)
        },
    ] {
        assert!(matches!(
            Trainer::new(net(), layout.clone(), bad, &Device::Cpu),
            Err(ModelError::InvalidConfig { .. })
        ));
    }
    let mut trainer = Trainer::new(net(), layout, quiet(1), &Device::Cpu).unwrap();
    assert!(matches!(
        trainer.fit(&train[..5], &val, &mut |_| {}),
        Err(ModelError::Shape { .. })
    ));
}

#[test]
fn learning_rate_schedule() {
    let c = TrainerConfig {
        steps: 100,
        lr: 1e-3,
        warmup_steps: 10,
        schedule: gnsm_models::LrSchedule::Cosine { min_lr: 1e-5 },
        ..Default::default()
    };
    approx::assert_relative_eq!(c.lr_at(0), 1e-4, max_relative = 1e-12);
    approx::assert_relative_eq!(c.lr_at(9), 1e-3, max_relative = 1e-12);
    approx::assert_relative_eq!(c.lr_at(10), 1e-3, max_relative = 1e-12);
    // Half-way through the cosine part: (lr + min) / 2.
    approx::assert_relative_eq!(c.lr_at(55), (1e-3 + 1e-5) / 2.0, max_relative = 1e-12);
    approx::assert_relative_eq!(c.lr_at(100), 1e-5, max_relative = 1e-12);
}

/// The hand-written CPU step (`fused_cpu_step`, the default) and candle's autograd train the
/// same model: same batches, levels and noise from the seeded RNG, so after 30 steps (with
/// clipping and AdamW) the weights agree up to float rounding, and so does the loss curve.
#[test]
fn fused_cpu_step_matches_candle_autograd() {
    let (layout, train) = structured(256, 3);
    let (_, val) = structured(64, 4);
    let run = |fused_cpu_step: bool| {
        let config = TrainerConfig {
            fused_cpu_step,
            grad_clip: Some(0.5),
            ..quiet(30)
        };
        let mut losses = Vec::new();
        let mut trainer = Trainer::new(net(), layout.clone(), config, &Device::Cpu).unwrap();
        trainer
            .fit(&train, &val, &mut |e| {
                if let TrainEvent::Step { loss, .. } = e {
                    losses.push(*loss);
                }
            })
            .unwrap();
        let weights: Vec<(String, Vec<f32>)> = trainer
            .model()
            .named_vars()
            .into_iter()
            .map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1().unwrap()))
            .collect();
        (losses, weights)
    };
    let (fused_losses, fused) = run(true);
    let (autograd_losses, autograd) = run(false);
    assert_eq!(fused_losses.len(), 30);
    for (a, b) in fused_losses.iter().zip(&autograd_losses) {
        assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "loss {a} vs {b}");
    }
    let mut moved = false;
    for ((name, a), (_, b)) in fused.iter().zip(&autograd) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-3, "{name}: {x} vs {y}");
        }
        moved |= a.iter().any(|v| v.abs() > 1e-6);
    }
    assert!(moved);
}

/// Model files written before `StopReason` and `CurvePoint` existed hold strings and
/// tuples; they must read back, and new files must hold the same form.
#[test]
fn training_summaries_keep_their_saved_form() {
    use gnsm_models::{CurvePoint, StopReason, TrainSummary};
    let old = r#"{"steps":20,"best_val_loss":1.5,"best_step":10,"skipped_batches":0,
        "seconds":2.0,"stopped_by":"time budget","curve":[[10,2.0,1.5,0.001]]}"#;
    let summary: TrainSummary = serde_json::from_str(old).unwrap();
    assert_eq!(summary.stopped_by, StopReason::TimeBudget);
    assert_eq!(
        summary.curve,
        vec![CurvePoint {
            step: 10,
            train_loss: 2.0,
            val_loss: 1.5,
            lr: 0.001
        }]
    );
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["stopped_by"], "time budget");
    assert_eq!(json["curve"], serde_json::json!([[10, 2.0, 1.5, 0.001]]));
    assert_eq!(StopReason::EarlyStopping.to_string(), "early stopping");
}

/// Model files written when the trainer drew its own progress bar carry `"progress"`, and
/// those written before run options left the configuration carry `"checkpoint"` and
/// `"log_csv"`; they are not part of the configuration any more, and such files still read.
#[test]
fn saved_configs_with_old_run_option_keys_still_read() {
    let config: TrainerConfig = serde_json::from_str(
        r#"{"steps": 7, "progress": true, "checkpoint": "run.safetensors", "log_csv": null}"#,
    )
    .unwrap();
    assert_eq!(config.steps, 7);
}
