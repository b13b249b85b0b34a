//! A compact noise-conditioned conv UNet for (image, segmentation mask) pairs, NCSN++ in
//! spirit: residual blocks with GroupNorm and level conditioning, stride-2 down-sampling,
//! nearest up-sampling written from broadcasts (candle's `upsample_nearest2d` backward is
//! wrong), skip connections, optional self-attention at the lowest resolution.

use std::path::Path;

use candle_core::{DType, Device, Module, Result as CandleResult, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder, VarMap};
use gnsm_noise::NoiseRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::layers::{conv2d, group_norm, Conv2d, GroupNorm};
use crate::model::{fourier_frequencies, init_vars, load_vars, sorted_vars};
use crate::{LevelEmbedding, ModelError, FOURIER_KEY};

const FORMAT: &str = "gnsm-unet";
/// Version 2: the checksummed envelope.
const VERSION: u32 = 2;

/// Settings of a [`UNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UNetConfig {
    /// Image channels (3 for RGB).
    pub image_channels: usize,
    /// Mask classes K: the network reads K noisy log-one-hot channels and returns K logits.
    pub classes: usize,
    /// Channels at full resolution.
    pub channels: usize,
    /// Channel multiplier per resolution; its length is the number of resolutions.
    pub channel_mults: Vec<usize>,
    /// Residual blocks per resolution.
    pub res_blocks: usize,
    /// Self-attention at the lowest resolution.
    pub attention: bool,
    /// Level-embedding size.
    pub embedding_size: usize,
    /// GroupNorm groups (must divide every channel count).
    pub groups: usize,
    /// Scale of the fixed Fourier frequencies.
    pub fourier_scale: f64,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self {
            image_channels: 3,
            classes: 11,
            channels: 32,
            channel_mults: vec![1, 2, 2],
            res_blocks: 1,
            attention: true,
            embedding_size: 128,
            groups: 8,
            fourier_scale: 1.0,
            seed: 0,
        }
    }
}

impl UNetConfig {
    /// Check the settings.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.classes < 2 {
            return invalid(
                "classes",
                self.classes.to_string(),
                "a mask needs at least 2 classes",
            );
        }
        if self.channels == 0 || self.channel_mults.is_empty() || self.channel_mults.contains(&0) {
            return invalid(
                "channels",
                format!("{} × {:?}", self.channels, self.channel_mults),
                "need channels > 0 and at least one non-zero multiplier",
            );
        }
        if self.groups == 0
            || self
                .channel_mults
                .iter()
                .any(|m| (self.channels * m) % self.groups != 0)
        {
            return invalid(
                "groups",
                self.groups.to_string(),
                "must divide every channel count",
            );
        }
        if self.embedding_size < 2 || self.embedding_size % 2 != 0 {
            return invalid(
                "embedding_size",
                self.embedding_size.to_string(),
                "must be even and >= 2",
            );
        }
        if self.res_blocks == 0 {
            return invalid("res_blocks", 0, "must be at least 1");
        }
        Ok(())
    }

    /// The input height and width must be multiples of this.
    pub fn size_multiple(&self) -> usize {
        1 << (self.channel_mults.len() - 1)
    }
}

fn conv3(inp: usize, out: usize, stride: usize, vb: VarBuilder<'_>) -> CandleResult<Conv2d> {
    conv2d(inp, out, 3, stride, 1, vb)
}

fn conv1(inp: usize, out: usize, vb: VarBuilder<'_>) -> CandleResult<Conv2d> {
    conv2d(inp, out, 1, 1, 0, vb)
}

/// Residual block: GroupNorm → SiLU → conv, plus the level embedding, → GroupNorm → SiLU →
/// conv, with a 1×1 skip when the channel count changes.
#[derive(Debug, Clone)]
struct ResBlock {
    in_norm: GroupNorm,
    conv_1: Conv2d,
    emb: Linear,
    out_norm: GroupNorm,
    conv_2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    fn new(
        inp: usize,
        out: usize,
        emb: usize,
        groups: usize,
        vb: VarBuilder<'_>,
    ) -> CandleResult<Self> {
        Ok(Self {
            in_norm: group_norm(groups, inp, 1e-6, vb.pp("in_norm"))?,
            conv_1: conv3(inp, out, 1, vb.pp("conv_1"))?,
            emb: linear(emb, out, vb.pp("emb"))?,
            out_norm: group_norm(groups, out, 1e-6, vb.pp("out_norm"))?,
            conv_2: conv3(out, out, 1, vb.pp("conv_2"))?,
            skip: if inp == out {
                None
            } else {
                Some(conv1(inp, out, vb.pp("skip"))?)
            },
        })
    }

    fn forward(&self, x: &Tensor, emb: &Tensor) -> CandleResult<Tensor> {
        let h = self.conv_1.forward(&self.in_norm.forward_silu(x)?)?;
        let e = self.emb.forward(emb)?.unsqueeze(2)?.unsqueeze(3)?;
        let h = h.broadcast_add(&e)?;
        let h = self.conv_2.forward(&self.out_norm.forward_silu(&h)?)?;
        match &self.skip {
            Some(skip) => skip.forward(x)? + h,
            None => x + h,
        }
    }
}

/// Single-head self-attention over all positions.
#[derive(Debug, Clone)]
struct Attention {
    attn_norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
    channels: usize,
}

impl Attention {
    fn new(channels: usize, groups: usize, vb: VarBuilder<'_>) -> CandleResult<Self> {
        Ok(Self {
            attn_norm: group_norm(groups, channels, 1e-6, vb.pp("attn_norm"))?,
            qkv: conv1(channels, 3 * channels, vb.pp("qkv"))?,
            proj: conv1(channels, channels, vb.pp("proj"))?,
            channels,
        })
    }

    fn forward(&self, x: &Tensor) -> CandleResult<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let qkv = self
            .qkv
            .forward(&self.attn_norm.forward(x)?)?
            .reshape((b, 3 * c, h * w))?;
        let q = qkv.narrow(1, 0, c)?.transpose(1, 2)?.contiguous()?; // (b, hw, c)
        let k = qkv.narrow(1, c, c)?.contiguous()?; // (b, c, hw)
        let v = qkv.narrow(1, 2 * c, c)?.contiguous()?; // (b, c, hw)
        let scores = (q.matmul(&k)? / (self.channels as f64).sqrt())?; // (b, hw, hw)
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let out = v
            .matmul(&weights.transpose(1, 2)?.contiguous()?)?
            .reshape((b, c, h, w))?;
        x + self.proj.forward(&out)?
    }
}

/// Nearest-neighbour ×2 up-sampling from a broadcast (its backward is a correct sum).
///
/// # Errors
/// A candle error for a tensor that is not 4-D.
pub fn upsample2(x: &Tensor) -> CandleResult<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h, 1, w, 1))?
        .broadcast_as((b, c, h, 2, w, 2))?
        .contiguous()?
        .reshape((b, c, 2 * h, 2 * w))
}

/// The conv UNet. Input: `concat(image, noisy log-one-hot mask)` (B, image + K, H, W) and
/// the level per row; output: (B, K, H, W) per-pixel class logits (scores via
/// `-τ + τ·K·softmax` over the class axis).
#[derive(Debug, Clone)]
pub struct UNet {
    config: UNetConfig,
    embedding: LevelEmbedding,
    conv_in: Conv2d,
    down: Vec<Vec<ResBlock>>,
    downsample: Vec<Conv2d>,
    mid_1: ResBlock,
    attention: Option<Attention>,
    mid_2: ResBlock,
    upsample: Vec<Conv2d>,
    up: Vec<Vec<ResBlock>>,
    out_norm: GroupNorm,
    conv_out: Conv2d,
}

impl UNet {
    /// Build with fixed Fourier frequencies `fourier_w` and variables under `vb`.
    ///
    /// # Errors
    /// A candle error.
    pub fn new(config: &UNetConfig, fourier_w: Tensor, vb: VarBuilder<'_>) -> CandleResult<Self> {
        let (e, g) = (config.embedding_size, config.groups);
        let chans: Vec<usize> = config
            .channel_mults
            .iter()
            .map(|m| config.channels * m)
            .collect();
        let n = chans.len();
        let mut down = Vec::with_capacity(n);
        let mut downsample = Vec::new();
        let mut prev = config.channels;
        for (i, &ch) in chans.iter().enumerate() {
            let blocks = (0..config.res_blocks)
                .map(|r| {
                    ResBlock::new(
                        if r == 0 { prev } else { ch },
                        ch,
                        e,
                        g,
                        vb.pp(format!("down.{i}.{r}")),
                    )
                })
                .collect::<CandleResult<Vec<_>>>()?;
            down.push(blocks);
            if i + 1 < n {
                downsample.push(conv3(ch, ch, 2, vb.pp(format!("downsample.{i}")))?);
            }
            prev = ch;
        }
        let last = chans[n - 1];
        let mut up = Vec::with_capacity(n);
        let mut upsample = Vec::new();
        let mut h_ch = last;
        for i in (0..n).rev() {
            if i + 1 < n {
                upsample.push(conv3(h_ch, h_ch, 1, vb.pp(format!("upsample.{i}")))?);
            }
            let blocks = (0..config.res_blocks)
                .map(|r| {
                    let inp = if r == 0 { h_ch + chans[i] } else { chans[i] };
                    ResBlock::new(inp, chans[i], e, g, vb.pp(format!("up.{i}.{r}")))
                })
                .collect::<CandleResult<Vec<_>>>()?;
            up.push(blocks);
            h_ch = chans[i];
        }
        Ok(Self {
            config: config.clone(),
            embedding: LevelEmbedding::new(fourier_w, e, vb.pp("embedding"))?,
            conv_in: conv3(
                config.image_channels + config.classes,
                config.channels,
                1,
                vb.pp("conv_in"),
            )?,
            down,
            downsample,
            mid_1: ResBlock::new(last, last, e, g, vb.pp("mid_1"))?,
            attention: if config.attention {
                Some(Attention::new(last, g, vb.pp("attention"))?)
            } else {
                None
            },
            mid_2: ResBlock::new(last, last, e, g, vb.pp("mid_2"))?,
            upsample,
            up,
            out_norm: group_norm(g, chans[0], 1e-6, vb.pp("out_norm"))?,
            conv_out: conv3(chans[0], config.classes, 1, vb.pp("conv_out"))?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// Forward pass: x (B, image + K, H, W), levels (B,) → (B, K, H, W) logits.
    ///
    /// # Errors
    /// A candle error for a wrong channel count or a size not a multiple of
    /// [`UNetConfig::size_multiple`].
    pub fn forward(&self, x: &Tensor, levels: &Tensor) -> CandleResult<Tensor> {
        let (_, c, h, w) = x.dims4()?;
        let m = self.config.size_multiple();
        if c != self.config.image_channels + self.config.classes || h % m != 0 || w % m != 0 {
            candle_core::bail!(
                "UNet input {:?}: expected {} channels and height/width multiples of {m}",
                x.dims(),
                self.config.image_channels + self.config.classes
            );
        }
        let emb = self.embedding.forward(levels)?;
        let mut h = self.conv_in.forward(x)?;
        let mut skips = Vec::with_capacity(self.down.len());
        for (i, blocks) in self.down.iter().enumerate() {
            for block in blocks {
                h = block.forward(&h, &emb)?;
            }
            skips.push(h.clone());
            if let Some(down) = self.downsample.get(i) {
                h = down.forward(&h)?;
            }
        }
        h = self.mid_1.forward(&h, &emb)?;
        if let Some(attn) = &self.attention {
            h = attn.forward(&h)?;
        }
        h = self.mid_2.forward(&h, &emb)?;
        let mut ups = self.upsample.iter();
        for (j, blocks) in self.up.iter().enumerate() {
            if j > 0 {
                let conv = ups.next().expect("one up-sampling per lower resolution");
                h = conv.forward(&upsample2(&h)?)?;
            }
            let skip = skips.pop().expect("one skip per resolution");
            h = Tensor::cat(&[&h, &skip], 1)?;
            for block in blocks {
                h = block.forward(&h, &emb)?;
            }
        }
        self.conv_out.forward(&self.out_norm.forward_silu(&h)?)
    }
}

/// A [`UNet`] with its variables and seeded initialisation, saved as safetensors.
pub struct UNetModel {
    config: UNetConfig,
    varmap: VarMap,
    fourier: Tensor,
    net: UNet,
    device: Device,
}

impl std::fmt::Debug for UNetModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UNetModel")
            .field("config", &self.config)
            .finish()
    }
}

impl UNetModel {
    /// Build and initialise from `config.seed` (host RNG, as [`crate::TabResNetModel::new`]).
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] or a candle error.
    pub fn new(config: UNetConfig, device: &Device) -> Result<Self, ModelError> {
        config.validate()?;
        let mut rng = NoiseRng::seed_from_u64(config.seed);
        let fourier = fourier_frequencies(
            &mut rng,
            config.embedding_size / 2,
            config.fourier_scale,
            device,
        )?;
        let model = Self::build(config, fourier, device)?;
        init_vars(&model.named_vars(), &mut rng, device)?;
        Ok(model)
    }

    fn build(config: UNetConfig, fourier: Tensor, device: &Device) -> Result<Self, ModelError> {
        let varmap = VarMap::new();
        let net = UNet::new(
            &config,
            fourier.clone(),
            VarBuilder::from_varmap(&varmap, DType::F32, device),
        )?;
        Ok(Self {
            config,
            varmap,
            fourier,
            net,
            device: device.clone(),
        })
    }

    /// Forward pass (see [`UNet::forward`]).
    ///
    /// # Errors
    /// As [`UNet::forward`].
    pub fn forward(&self, x: &Tensor, levels: &Tensor) -> Result<Tensor, ModelError> {
        Ok(self.net.forward(x, levels)?)
    }

    /// Trainable variables sorted by name.
    pub fn named_vars(&self) -> Vec<(String, candle_core::Var)> {
        sorted_vars(&self.varmap)
    }

    /// The configuration.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The network.
    pub fn network(&self) -> &UNet {
        &self.net
    }

    /// Save weights and configuration as one checksummed safetensors file
    /// ([`save_envelope`](crate::save_envelope)), atomically.
    ///
    /// # Errors
    /// [`ModelError::Io`] or [`ModelError::Checkpoint`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let mut tensors: Vec<(String, Tensor)> = self
            .named_vars()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().clone()))
            .collect();
        tensors.push((FOURIER_KEY.into(), self.fourier.clone()));
        crate::io::save_envelope(path.as_ref(), FORMAT, VERSION, &self.config, &tensors)
    }

    /// Load a model written by [`UNetModel::save`].
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] for a foreign, newer, damaged or incomplete file.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let file = crate::io::load_envelope::<UNetConfig>(path, FORMAT, VERSION, device)?;
        let config = file.header;
        config.validate()?;
        let tensors = file.tensors;
        let fourier = tensors
            .get(FOURIER_KEY)
            .ok_or_else(|| ModelError::Checkpoint {
                path: path.display().to_string(),
                reason: format!("missing tensor {FOURIER_KEY}"),
            })?
            .clone();
        let model = Self::build(config, fourier, device)?;
        load_vars(&model.named_vars(), &tensors, "", path, device)?;
        Ok(model)
    }
}
