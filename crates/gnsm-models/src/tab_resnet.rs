//! The noise-conditioned tab-ResNet of the reference implementation.

use candle_core::{Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use crate::layers::{activate, layer_norm, FourierFeatures, LayerNorm};
use crate::{Activation, TabResNetConfig};

/// The level embedding: Fourier features → Linear → SiLU → Linear → SiLU.
#[derive(Debug, Clone)]
pub struct LevelEmbedding {
    fourier: FourierFeatures,
    dense_0: Linear,
    dense_1: Linear,
}

impl LevelEmbedding {
    /// Build with fixed frequencies `w` and variables under `vb`.
    ///
    /// # Errors
    /// A candle error.
    pub fn new(w: Tensor, size: usize, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            fourier: FourierFeatures::new(w),
            dense_0: linear(size, size, vb.pp("dense_0"))?,
            dense_1: linear(size, size, vb.pp("dense_1"))?,
        })
    }

    /// (B,) levels → (B, size).
    ///
    /// # Errors
    /// A candle error.
    pub fn forward(&self, levels: &Tensor) -> Result<Tensor> {
        let h = self
            .dense_0
            .forward(&self.fourier.forward(levels)?)?
            .silu()?;
        self.dense_1.forward(&h)?.silu()
    }

    /// The fixed Fourier frequencies.
    pub fn frequencies(&self) -> &Tensor {
        self.fourier.frequencies()
    }
}

/// One residual block: `h = act(LN(x)); h = dense_1(h); h = γ·h + β; h = dense_2(h);
/// x + h`, with `(γ, β) = film(embedding)` (raw γ, as the reference).
#[derive(Debug, Clone)]
pub struct TabResBlock {
    norm: LayerNorm,
    dense_1: Linear,
    film: Linear,
    dense_2: Linear,
    width: usize,
    activation: Activation,
}

impl TabResBlock {
    /// Build a block of `width` conditioned on an embedding of `embedding_size`.
    ///
    /// # Errors
    /// A candle error.
    pub fn new(
        width: usize,
        embedding_size: usize,
        activation: Activation,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        Ok(Self {
            norm: layer_norm(width, vb.pp("norm"))?,
            dense_1: linear(width, width, vb.pp("dense_1"))?,
            film: linear(embedding_size, 2 * width, vb.pp("film"))?,
            dense_2: linear(width, width, vb.pp("dense_2"))?,
            width,
            activation,
        })
    }

    /// Apply the block; `dropout_mask`, when given, multiplies the FiLM output (already
    /// scaled by 1/(1-p)).
    ///
    /// # Errors
    /// A candle error.
    pub fn forward(
        &self,
        x: &Tensor,
        embedding: &Tensor,
        dropout_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let h = activate(&self.norm.forward(x)?, self.activation)?;
        let h = self.dense_1.forward(&h)?;
        let film = self.film.forward(embedding)?;
        let gamma = film.narrow(1, 0, self.width)?;
        let beta = film.narrow(1, self.width, self.width)?;
        let mut h = h.mul(&gamma)?.add(&beta)?;
        if let Some(mask) = dropout_mask {
            h = h.mul(mask)?;
        }
        x.add(&self.dense_2.forward(&h)?)
    }
}

/// The tab-ResNet score network: input projection, residual blocks with FiLM level
/// conditioning, head LayerNorm → LeakyReLU(0.01) → Linear back to the input width. Its
/// output is the continuous scores followed by per-group logits (turn them into scores with
/// [`gnsm_losses::GroupSoftmax::scores`]).
#[derive(Debug, Clone)]
pub struct TabResNet {
    config: TabResNetConfig,
    in_dim: usize,
    embedding: LevelEmbedding,
    proj: Linear,
    blocks: Vec<TabResBlock>,
    head_norm: LayerNorm,
    head: Linear,
}

impl TabResNet {
    /// Build for rows of `in_dim` features, with fixed Fourier frequencies `fourier_w`
    /// (shape (embedding_size / 2,)) and variables under `vb`.
    ///
    /// # Errors
    /// A candle error.
    pub fn new(
        config: &TabResNetConfig,
        in_dim: usize,
        fourier_w: Tensor,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let e = config.embedding_size;
        let blocks = (0..config.depth)
            .map(|i| {
                TabResBlock::new(
                    config.width,
                    e,
                    config.activation,
                    vb.pp(format!("blocks.{i}")),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            in_dim,
            embedding: LevelEmbedding::new(fourier_w, e, vb.pp("embedding"))?,
            proj: linear(in_dim, config.width, vb.pp("proj"))?,
            blocks,
            head_norm: layer_norm(config.width, vb.pp("head_norm"))?,
            head: linear(config.width, in_dim, vb.pp("head"))?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TabResNetConfig {
        &self.config
    }

    /// Input (and output) width.
    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    /// The level embedding.
    pub fn embedding(&self) -> &LevelEmbedding {
        &self.embedding
    }

    /// Forward pass without dropout: x (B, in_dim), levels (B,) → (B, in_dim).
    ///
    /// # Errors
    /// A candle error (for instance a shape mismatch).
    pub fn forward(&self, x: &Tensor, levels: &Tensor) -> Result<Tensor> {
        self.forward_with_masks(x, levels, &[])
    }

    /// Forward pass with one dropout mask per block (empty = no dropout).
    ///
    /// # Errors
    /// A candle error.
    pub fn forward_with_masks(
        &self,
        x: &Tensor,
        levels: &Tensor,
        masks: &[Tensor],
    ) -> Result<Tensor> {
        let emb = self.embedding.forward(levels)?;
        let mut h = self.proj.forward(x)?;
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(&h, &emb, masks.get(i))?;
        }
        let h = candle_nn::ops::leaky_relu(&self.head_norm.forward(&h)?, 0.01)?;
        self.head.forward(&h)
    }
}
