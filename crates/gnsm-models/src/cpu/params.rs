//! The tab-ResNet's variables as the host kernels read them: indices by name and host slices.

use candle_core::{DType, Device, Layout, Storage, Tensor, Var};

use crate::{ModelError, TabResNetConfig};

/// Indices (into the model's sorted variables) of a layer's weight and bias: a linear layer
/// or a LayerNorm (gain and shift).
#[derive(Debug, Clone, Copy)]
pub(super) struct AffineIdx {
    pub(super) weight: usize,
    pub(super) bias: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct BlockIdx {
    pub(super) norm: AffineIdx,
    pub(super) dense_1: AffineIdx,
    pub(super) film: AffineIdx,
    pub(super) dense_2: AffineIdx,
}

/// Where each tab-ResNet variable sits in the model's sorted variable list.
#[derive(Debug, Clone)]
pub(super) struct NetIdx {
    pub(super) emb_0: AffineIdx,
    pub(super) emb_1: AffineIdx,
    pub(super) proj: AffineIdx,
    pub(super) blocks: Vec<BlockIdx>,
    pub(super) head_norm: AffineIdx,
    pub(super) head: AffineIdx,
}

impl NetIdx {
    /// Look the variables up by name (`proj.weight`, `blocks.3.film.bias`, …).
    ///
    /// # Errors
    /// [`ModelError::Shape`] naming a variable that is missing.
    pub(super) fn new(names: &[String], depth: usize) -> Result<Self, ModelError> {
        let find = |name: String| {
            names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| ModelError::Shape {
                    what: "tab-ResNet variables",
                    expected: format!("a variable {name}"),
                    got: "none".into(),
                })
        };
        let affine = |prefix: &str| -> Result<AffineIdx, ModelError> {
            Ok(AffineIdx {
                weight: find(format!("{prefix}.weight"))?,
                bias: find(format!("{prefix}.bias"))?,
            })
        };
        let blocks = (0..depth)
            .map(|i| {
                Ok(BlockIdx {
                    norm: affine(&format!("blocks.{i}.norm"))?,
                    dense_1: affine(&format!("blocks.{i}.dense_1"))?,
                    film: affine(&format!("blocks.{i}.film"))?,
                    dense_2: affine(&format!("blocks.{i}.dense_2"))?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(Self {
            emb_0: affine("embedding.dense_0")?,
            emb_1: affine("embedding.dense_1")?,
            proj: affine("proj")?,
            blocks,
            head_norm: affine("head_norm")?,
            head: affine("head")?,
        })
    }
}

/// What the host kernels need of a tab-ResNet: its configuration, input width, variables
/// (sorted by name) and Fourier frequencies. Built by `TabResNetModel::cpu_view`, so that this
/// folder does not depend on the model type.
pub(crate) struct NetView<'a> {
    /// The network's settings.
    pub config: &'a TabResNetConfig,
    /// Columns of the input (and output).
    pub input_width: usize,
    /// The trainable variables, sorted by name.
    pub vars: Vec<(String, Var)>,
    /// The fixed Fourier frequencies of the level embedding.
    pub frequencies: &'a Tensor,
    /// Where the variables live.
    pub device: &'a Device,
}

impl NetView<'_> {
    /// Whether the variables can be read as CPU f32 slices (the hand-written paths).
    pub(crate) fn on_cpu_f32(&self) -> bool {
        self.device.is_cpu()
            && self
                .vars
                .iter()
                .all(|(_, v)| v.dtype() == DType::F32 && v.is_contiguous())
    }

    /// Call `f` with every variable as a host slice (in sorted order) and the Fourier
    /// frequencies, holding the storage read locks for the duration.
    ///
    /// # Errors
    /// [`ModelError::Shape`] for a variable that is not contiguous f32 on the CPU, or what
    /// `f` returns.
    pub(super) fn with_params<R>(
        &self,
        f: impl FnOnce(&[&[f32]], &[f32]) -> Result<R, ModelError>,
    ) -> Result<R, ModelError> {
        let guards: Vec<_> = self
            .vars
            .iter()
            .map(|(_, v)| v.as_tensor().storage_and_layout())
            .collect();
        let params: Vec<&[f32]> = guards
            .iter()
            .map(|(s, l)| variable_slice(s, l))
            .collect::<Result<_, _>>()?;
        let (w_guard, w_layout) = self.frequencies.storage_and_layout();
        let freqs = variable_slice(&w_guard, w_layout)?;
        f(&params, freqs)
    }
}

/// A variable's values, or the error saying why the host path cannot read them.
fn variable_slice<'a>(s: &'a Storage, l: &Layout) -> Result<&'a [f32], ModelError> {
    let found = match s {
        Storage::Cpu(cpu) => super::f32_slice(cpu, l),
        _ => None,
    };
    found.ok_or_else(|| ModelError::Shape {
        what: "fused CPU step variable",
        expected: "a contiguous f32 CPU tensor".into(),
        got: format!("{:?} {:?}", s.dtype(), l.shape()),
    })
}
