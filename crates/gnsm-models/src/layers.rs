//! Building blocks: a LayerNorm with a working backward, a 2-D convolution and a GroupNorm
//! with fast CPU backwards, the Gaussian Fourier level embedding, and activations.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

use crate::Activation;

/// LayerNorm over the last axis written from tensor ops: candle 0.11's fused
/// `candle_nn::LayerNorm` has no backward, so its parameters would silently get no gradient.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

/// A [`LayerNorm`] over `dim` features (weight 1, bias 0, eps 1e-5 as PyTorch).
///
/// # Errors
/// A candle error if the variables cannot be created.
pub fn layer_norm(dim: usize, vb: VarBuilder<'_>) -> Result<LayerNorm> {
    Ok(LayerNorm {
        weight: vb.get_with_hints(dim, "weight", Init::Const(1.0))?,
        bias: vb.get_with_hints(dim, "bias", Init::Const(0.0))?,
        eps: 1e-5,
    })
}

/// A 2-D convolution (square kernel, one group, no dilation) with bias, named and
/// initialised as `candle_nn::conv2d` (so its variables and files are the same): on CPU f32
/// it runs host im2col + gemm kernels with their own backward, elsewhere candle's `conv2d`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: usize,
}

/// A [`Conv2d`] from `inp` to `out` channels with a `kernel × kernel` kernel.
///
/// ```
/// use candle_core::{DType, Device, Module, Tensor};
/// use candle_nn::{VarBuilder, VarMap};
/// let varmap = VarMap::new();
/// let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
/// let conv = gnsm_models::layers::conv2d(3, 8, 3, 2, 1, vb.pp("down"))?;
/// let y = conv.forward(&Tensor::zeros((2, 3, 16, 12), DType::F32, &Device::Cpu)?)?;
/// assert_eq!(y.dims(), &[2, 8, 8, 6]);
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// # Errors
/// A candle error if the variables cannot be created.
pub fn conv2d(
    inp: usize,
    out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    vb: VarBuilder<'_>,
) -> Result<Conv2d> {
    let weight = vb.get_with_hints(
        (out, inp, kernel, kernel),
        "weight",
        candle_nn::init::DEFAULT_KAIMING_NORMAL,
    )?;
    let bound = 1.0 / (inp as f64).sqrt();
    let bias = vb.get_with_hints(
        out,
        "bias",
        Init::Uniform {
            lo: -bound,
            up: bound,
        },
    )?;
    Ok(Conv2d {
        weight,
        bias,
        stride,
        padding,
    })
}

impl Conv2d {
    /// The kernel, (out, in, k, k).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = crate::cpu::conv::conv2d(x, &self.weight, self.stride, self.padding)?;
        y.broadcast_add(&self.bias.reshape((1, self.bias.dim(0)?, 1, 1))?)
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(y) = crate::cpu::ops::layer_norm(x, &self.weight, &self.bias, self.eps)? {
            return Ok(y);
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centered = x.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centered.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// GroupNorm over (N, C, spatial…) with a per-channel gain and shift, named and initialised
/// as `candle_nn::group_norm` (same variables and files); on CPU f32 it runs one fused
/// kernel with its own backward, optionally with the SiLU that follows it in the UNet's
/// blocks ([`GroupNorm::forward_silu`]), elsewhere candle's op-level GroupNorm.
#[derive(Debug, Clone)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
    fallback: candle_nn::GroupNorm,
}

/// A [`GroupNorm`] of `channels` channels in `groups` groups (weight 1, bias 0).
///
/// ```
/// use candle_core::{DType, Device, Module, Tensor};
/// use candle_nn::{VarBuilder, VarMap};
/// let varmap = VarMap::new();
/// let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
/// let norm = gnsm_models::layers::group_norm(2, 4, 1e-6, vb.pp("norm"))?;
/// let x = Tensor::arange(0f32, 32.0, &Device::Cpu)?.reshape((1, 4, 2, 4))?;
/// let y: Vec<f32> = norm.forward(&x)?.flatten_all()?.to_vec1()?;
/// // Each group of two channels is centred and scaled to unit variance.
/// assert!(y[..16].iter().sum::<f32>().abs() < 1e-4);
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// # Errors
/// A candle error if the variables cannot be created or `groups` does not divide `channels`.
pub fn group_norm(
    groups: usize,
    channels: usize,
    eps: f64,
    vb: VarBuilder<'_>,
) -> Result<GroupNorm> {
    let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
    let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
    let fallback = candle_nn::GroupNorm::new(weight.clone(), bias.clone(), channels, groups, eps)?;
    Ok(GroupNorm {
        weight,
        bias,
        groups,
        eps,
        fallback,
    })
}

impl GroupNorm {
    /// GroupNorm followed by SiLU, in one pass on CPU.
    ///
    /// # Errors
    /// A candle error for an input that does not fit the layer.
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        match crate::cpu::group_norm::group_norm(
            x,
            &self.weight,
            &self.bias,
            self.groups,
            self.eps,
            true,
        )? {
            Some(y) => Ok(y),
            None => self.fallback.forward(x)?.silu(),
        }
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.dim(1)? != self.weight.dim(0)? {
            candle_core::bail!(
                "GroupNorm: {} channels in the input, {} in the layer",
                x.dim(1)?,
                self.weight.dim(0)?
            );
        }
        match crate::cpu::group_norm::group_norm(
            x,
            &self.weight,
            &self.bias,
            self.groups,
            self.eps,
            false,
        )? {
            Some(y) => Ok(y),
            None => self.fallback.forward(x),
        }
    }
}

/// Apply an [`Activation`].
///
/// # Errors
/// A candle error.
pub fn activate(x: &Tensor, activation: Activation) -> Result<Tensor> {
    match activation {
        Activation::Gelu => crate::cpu::ops::gelu_erf(x),
        Activation::Silu => x.silu(),
        Activation::Relu => x.relu(),
    }
}

/// Fixed Gaussian Fourier features of the level index: `[sin(2π t w), cos(2π t w)]` with
/// `w ~ N(0, scale²)` drawn once (not trained).
#[derive(Debug, Clone)]
pub struct FourierFeatures {
    w: Tensor,
}

impl FourierFeatures {
    /// Features from fixed frequencies `w` (shape (embedding_size / 2,)).
    pub fn new(w: Tensor) -> Self {
        Self { w }
    }

    /// The frequencies.
    pub fn frequencies(&self) -> &Tensor {
        &self.w
    }

    /// (B,) level indices (any integer or float dtype) → (B, 2·half) features.
    ///
    /// # Errors
    /// A candle error.
    pub fn forward(&self, levels: &Tensor) -> Result<Tensor> {
        let t = levels.to_dtype(self.w.dtype())?.unsqueeze(1)?;
        let proj = (t.broadcast_mul(&self.w.unsqueeze(0)?)? * (2.0 * std::f64::consts::PI))?;
        Tensor::cat(&[proj.sin()?, proj.cos()?], 1)
    }
}
