use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::ModelError;

/// The activation inside residual blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// GELU, exact (erf) form — the reference's.
    #[default]
    Gelu,
    /// SiLU / swish.
    Silu,
    /// ReLU.
    Relu,
}

/// Settings of a [`TabResNet`](crate::TabResNet). Defaults are the paper's network (width
/// 1024, 20 blocks, about 42M parameters); CPU training wants something smaller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TabResNetConfig {
    /// Width of every block.
    pub width: usize,
    /// Number of residual blocks.
    pub depth: usize,
    /// Size of the noise-level embedding (half sine, half cosine Fourier features).
    pub embedding_size: usize,
    /// Scale of the fixed Gaussian Fourier frequencies.
    pub fourier_scale: f64,
    /// Dropout inside blocks (0 in the paper).
    pub dropout: f64,
    /// Block activation.
    pub activation: Activation,
    /// Seed of the initial weights and Fourier frequencies.
    pub seed: u64,
}

impl Default for TabResNetConfig {
    fn default() -> Self {
        Self {
            width: 1024,
            depth: 20,
            embedding_size: 128,
            fourier_scale: 1.0,
            dropout: 0.0,
            activation: Activation::Gelu,
            seed: 0,
        }
    }
}

impl TabResNetConfig {
    /// Check the settings.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.width == 0 {
            return invalid("width", 0, "must be at least 1");
        }
        if self.embedding_size < 2 || self.embedding_size % 2 != 0 {
            return invalid(
                "embedding_size",
                self.embedding_size.to_string(),
                "must be even and >= 2",
            );
        }
        if !(self.fourier_scale.is_finite() && self.fourier_scale > 0.0) {
            return invalid(
                "fourier_scale",
                self.fourier_scale.to_string(),
                "must be finite and > 0",
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return invalid("dropout", self.dropout.to_string(), "must be in [0, 1)");
        }
        Ok(())
    }
}
