//! The measurements of `group_scaling`: a training step, the loss alone (host and candle),
//! and the score-norm pass (shared and per level).

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use gnsm::losses::{CategoricalObjective, GnsmLoss, GroupSoftmax, GroupStrategy, LossConfig};
use gnsm::models::{TabResNetConfig, TabResNetModel, TrainEvent, Trainer, TrainerConfig};
use gnsm::noise::{FeatureLayout, NoiseSchedule, Perturbation};

/// Median milliseconds per training step (width 256, depth 4, batch 256) over `steps`.
pub fn step_ms(layout: &FeatureLayout, data: &[f32], steps: usize) -> anyhow::Result<f64> {
    let net = TabResNetConfig {
        width: 256,
        depth: 4,
        ..Default::default()
    };
    let config = TrainerConfig {
        steps: steps + 3,
        batch_size: 256,
        eval_every: 1_000_000,
        ..Default::default()
    };
    let val = &data[..256 * layout.width()];
    let mut trainer = Trainer::new(net, layout.clone(), config, &Device::Cpu)?;
    trainer.fit_until(3, data, val, &mut |_| {})?;
    let mut stamps = Vec::with_capacity(steps + 1);
    stamps.push(Instant::now());
    trainer.fit_until(steps + 3, data, val, &mut |e| {
        if matches!(e, TrainEvent::Step { .. }) {
            stamps.push(Instant::now());
        }
    })?;
    let mut ms: Vec<f64> = stamps
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1e3)
        .collect();
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

/// Milliseconds of one loss + gradient, host one-pass and candle per-group, on a batch.
pub fn loss_ms(
    layout: &FeatureLayout,
    noise: &Perturbation,
    output: &[f32],
) -> anyhow::Result<(f64, f64)> {
    let w = layout.width();
    let loss = GnsmLoss::new(layout, LossConfig::default(), &Device::Cpu)?;
    let mut grad = vec![0f32; output.len()];
    let t = Instant::now();
    gnsm::losses::loss_and_grad(layout, CategoricalObjective::Kl, noise, output, &mut grad)?;
    let host = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let var = Var::from_tensor(&Tensor::from_slice(output, (noise.rows, w), &Device::Cpu)?)?;
    let targets = loss.targets(noise, DType::F32)?;
    let parts = loss.forward(var.as_tensor(), &targets)?;
    let grads = parts.total.backward()?;
    let _g: Vec<f32> = grads
        .get(var.as_tensor())
        .expect("a gradient")
        .flatten_all()?
        .to_vec1()?;
    Ok((host, t.elapsed().as_secs_f64() * 1e3))
}

/// Squared norm of each group's scores in `scores` (rows of the layout's width) into `norms`.
fn group_norms(layout: &FeatureLayout, scores: &[f32], norms: &mut Vec<f64>) {
    for row in scores.chunks_exact(layout.width()) {
        norms.extend(layout.group_ranges().map(|r| {
            row[r]
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
        }));
    }
}

/// Rows/s of the score-norm pass over `data` (20 levels): (shared, per level).
pub fn scoring_rows_per_s(model: &TabResNetModel, data: &[f32]) -> anyhow::Result<(f64, f64)> {
    let layout = model.layout();
    let (w, rows) = (layout.width(), data.len() / layout.width());
    let levels: Vec<usize> = (0..20).collect();
    let taus: Vec<f32> = NoiseSchedule::default()
        .temperatures()
        .iter()
        .map(|&t| t as f32)
        .collect();
    let mut norms = Vec::with_capacity(rows * 20 * layout.n_groups());
    let t = Instant::now();
    let mut scores = vec![0f32; 1024 * w];
    model.infer_levels(data, &levels, |j, _, out| {
        let s = &mut scores[..out.len()];
        let tau = vec![taus[j]; out.len() / w];
        gnsm::losses::score_transform(layout, out, &tau, s).expect("shapes of the layout");
        group_norms(layout, s, &mut norms);
    })?;
    let shared = rows as f64 / t.elapsed().as_secs_f64();
    norms.clear();
    let groups = GroupSoftmax::new(layout, GroupStrategy::Narrow, &Device::Cpu)?;
    let t = Instant::now();
    let x = Tensor::from_slice(data, (rows, w), &Device::Cpu)?;
    for &level in &levels {
        let l = Tensor::from_vec(vec![level as u32; rows], rows, &Device::Cpu)?;
        let out = model.infer(&x, &l)?;
        let tau = Tensor::from_vec(vec![taus[level]; rows], rows, &Device::Cpu)?;
        let s: Vec<f32> = groups.scores(&out, &tau)?.flatten_all()?.to_vec1()?;
        group_norms(layout, &s, &mut norms);
    }
    Ok((shared, rows as f64 / t.elapsed().as_secs_f64()))
}
