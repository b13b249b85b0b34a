//! Batched candle-tensor versions of the perturbation (feature `candle`).
//!
//! The noise is always drawn on the host from a seeded [`NoiseRng`](crate::NoiseRng) (candle's
//! CPU device RNG cannot be seeded), then uploaded once per batch.

use candle_core::{DType, Device, Tensor};
use rand::Rng;

use crate::{perturb_batch, FeatureLayout, NoiseError, NoiseSchedule, Perturbation};

/// A perturbed batch as tensors on a device.
#[derive(Debug, Clone)]
pub struct PerturbedTensors {
    /// The noisy input `x̃`, (B, width).
    pub noisy: Tensor,
    /// The categorical logit noise `ε = log x - τ·x̃`, (B, categorical width).
    pub logit_noise: Tensor,
    /// The continuous score target `-n/σ`, (B, continuous).
    pub continuous_target: Tensor,
    /// τ per row, (B,).
    pub temperatures: Tensor,
    /// σ per row, (B,).
    pub sigmas: Tensor,
    /// The level index per row, (B,) `u32`, for the network's noise conditioning.
    pub levels: Tensor,
}

impl Perturbation {
    /// Upload this batch to `device` as tensors of `dtype` (levels as `u32`).
    ///
    /// # Errors
    /// [`NoiseError::LengthMismatch`] when the buffers do not fit `layout`, or a candle error.
    pub fn to_tensors(
        &self,
        layout: &FeatureLayout,
        device: &Device,
        dtype: DType,
    ) -> Result<PerturbedTensors, NoiseError> {
        let rows = self.rows;
        if self.noisy.len() != rows * layout.width() {
            return Err(NoiseError::LengthMismatch {
                what: "perturbation for this layout",
                expected: rows * layout.width(),
                got: self.noisy.len(),
            });
        }
        let upload = |data: &[f32], cols: usize| -> Result<Tensor, NoiseError> {
            Ok(Tensor::from_slice(data, (rows, cols), device)?.to_dtype(dtype)?)
        };
        let levels: Vec<u32> = self.levels.iter().map(|&l| l as u32).collect();
        Ok(PerturbedTensors {
            noisy: upload(&self.noisy, layout.width())?,
            logit_noise: upload(&self.logit_noise, layout.categorical_width())?,
            continuous_target: upload(&self.continuous_target, layout.continuous())?,
            temperatures: Tensor::from_slice(&self.temperatures, rows, device)?.to_dtype(dtype)?,
            sigmas: Tensor::from_slice(&self.sigmas, rows, device)?.to_dtype(dtype)?,
            levels: Tensor::from_vec(levels, rows, device)?,
        })
    }
}

/// Perturb a (B, width) tensor of clean rows: copies it to the host, runs
/// [`perturb_batch`] with `rng`, and uploads the result to the tensor's device and dtype.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use gnsm_noise::{tensor::perturb_tensor, FeatureLayout, NoiseRng, NoiseSchedule};
/// use rand::SeedableRng;
///
/// let layout = FeatureLayout::categorical(vec![2, 3])?;
/// let c = gnsm_noise::LOG_ONE_HOT_COLD;
/// let clean = Tensor::new(&[[0.0f32, c, c, 0.0, c], [c, 0.0, c, c, 0.0]], &Device::Cpu)?;
/// let mut rng = NoiseRng::seed_from_u64(0);
/// let batch = perturb_tensor(&clean, &layout, &NoiseSchedule::default(), &[0, 19], &mut rng)?;
/// assert_eq!(batch.noisy.dims(), &[2, 5]);
/// assert_eq!(batch.logit_noise.dims(), &[2, 5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`perturb_batch`], or a candle error (for instance a tensor that is not 2-D).
pub fn perturb_tensor<R: Rng + ?Sized>(
    clean: &Tensor,
    layout: &FeatureLayout,
    schedule: &NoiseSchedule,
    levels: &[usize],
    rng: &mut R,
) -> Result<PerturbedTensors, NoiseError> {
    let host: Vec<f32> = clean.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let mut out = Perturbation::default();
    perturb_batch(&host, layout, schedule, levels, rng, &mut out)?;
    out.to_tensors(layout, clean.device(), clean.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoiseRng;
    use rand::SeedableRng;

    #[test]
    fn tensors_match_host_buffers() {
        let layout = FeatureLayout::new(2, vec![3, 2]).unwrap();
        let c = crate::LOG_ONE_HOT_COLD;
        let clean = vec![0.1f32, -0.3, c, 0.0, c, 0.0, c, 1.0, 2.0, 0.0, c, c, c, 0.0];
        let schedule = NoiseSchedule::default();
        let mut host = Perturbation::default();
        perturb_batch(
            &clean,
            &layout,
            &schedule,
            &[4, 9],
            &mut NoiseRng::seed_from_u64(8),
            &mut host,
        )
        .unwrap();
        let t = Tensor::from_slice(&clean, (2, 7), &Device::Cpu).unwrap();
        let dev = perturb_tensor(
            &t,
            &layout,
            &schedule,
            &[4, 9],
            &mut NoiseRng::seed_from_u64(8),
        )
        .unwrap();
        let noisy: Vec<f32> = dev.noisy.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(noisy, host.noisy);
        let eps: Vec<f32> = dev.logit_noise.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(eps, host.logit_noise);
        assert_eq!(dev.continuous_target.dims(), &[2, 2]);
        assert_eq!(dev.levels.to_vec1::<u32>().unwrap(), vec![4, 9]);
        // A wrong width is an error, not a panic.
        let bad = Tensor::zeros((2, 6), DType::F32, &Device::Cpu).unwrap();
        assert!(perturb_tensor(
            &bad,
            &layout,
            &schedule,
            &[0, 0],
            &mut NoiseRng::seed_from_u64(0)
        )
        .is_err());
    }
}
