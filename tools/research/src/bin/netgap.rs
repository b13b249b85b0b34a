//! How well the trained network's score generalises, per (dataset, seed), on the models that
//! `variants` saved: the default score without the one-hot term (loss + frequency prior) on
//! a sample of training rows and on the validation rows, and the gap (validation mean −
//! training mean) / training std — the network's analogue of the one-hot term's gate.
//!
//! `target/release/netgap cmc,chess 42,43,44,45,46`
use candle_core::Device;
use gnsm::{DenoisingParams, Gnsm, ScoreMethod};

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt(),
    )
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    gnsm_research::for_each_split(&a[1], &a[2], |name, seed, protocol| {
        let split = protocol.split();
        let mut det = Gnsm::load(format!("research/models/{name}-{seed}.gnsm"), &Device::Cpu)?;
        let config = det.config().clone();
        det.refit_scoring_split(
            ScoreMethod::DenoisingLoss(DenoisingParams {
                one_hot: None,
                ..DenoisingParams::default()
            }),
            config.msma.clone(),
            config.denoise,
            protocol.table(),
            &split.train,
            &split.val,
        )?;
        // Every k-th training row, at most ~3000.
        let step = (split.train.len() / 3000).max(1);
        let train: Vec<usize> = split.train.iter().step_by(step).copied().collect();
        let tr = det.score_table(protocol.table(), Some(&train))?;
        let va = det.score_table(protocol.table(), Some(&split.val))?;
        let te = det.score_table(protocol.table(), Some(&split.test))?;
        let labels = protocol.test_labels();
        let inl: Vec<f64> = te
            .iter()
            .zip(&labels)
            .filter(|(_, &l)| !l)
            .map(|(s, _)| *s)
            .collect();
        let (mt, st) = mean_std(&tr);
        let (mv, sv) = mean_std(&va);
        let (mi, _) = mean_std(&inl);
        let t = det.training().map(|t| {
            (
                t.best_val_loss,
                t.curve.last().map_or(f64::NAN, |c| c.train_loss),
            )
        });
        println!(
                "{name} seed {seed}: train {mt:.3} ± {st:.3}, val {mv:.3} ± {sv:.3}, test inliers {mi:.3}; gap {:.2}; losses (val, last train) {t:?}",
                (mv - mt) / st
            );
        Ok(())
    })
}
