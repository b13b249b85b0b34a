//! A tab-ResNet together with its variables, layout and seeded initialisation, saved and
//! loaded as safetensors.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use gnsm_noise::{FeatureLayout, NoiseRng};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::{ModelError, TabResNet, TabResNetConfig};

/// Safetensors key of the fixed Fourier frequencies (not a trainable variable).
pub const FOURIER_KEY: &str = "embedding.fourier.w";
const FORMAT: &str = "gnsm-tab-resnet";
/// Version 2: the checksummed envelope (version 1 files, plain safetensors, are not read).
const VERSION: u32 = 2;

/// Seeded host-side initialisation of named variables, as the reference's
/// `variance_scaling(1, "fan_avg", "uniform")`: weights (rank ≥ 2) Xavier-uniform with
/// fan = (in + out)·receptive field, norm gains (`…norm.weight`) one, everything else zero.
///
/// # Errors
/// A candle error.
pub fn init_vars(
    vars: &[(String, Var)],
    rng: &mut NoiseRng,
    device: &Device,
) -> Result<(), ModelError> {
    for (name, var) in vars {
        let dims = var.dims().to_vec();
        let init = if dims.len() >= 2 {
            let receptive: usize = dims[2..].iter().product();
            let (out, inp) = (dims[0] * receptive, dims[1] * receptive);
            let bound = (6.0 / (out + inp) as f64).sqrt();
            let data: Vec<f32> = (0..var.elem_count())
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            Tensor::from_vec(data, dims.as_slice(), device)?
        } else if name.ends_with("norm.weight") {
            Tensor::ones(dims.as_slice(), DType::F32, device)?
        } else {
            Tensor::zeros(dims.as_slice(), DType::F32, device)?
        };
        var.set(&init)?;
    }
    Ok(())
}

/// The fixed Fourier frequencies of a level embedding: `half` draws of `N(0, scale²)` from
/// the host RNG.
///
/// # Errors
/// A candle error.
pub(crate) fn fourier_frequencies(
    rng: &mut NoiseRng,
    half: usize,
    scale: f64,
    device: &Device,
) -> Result<Tensor, ModelError> {
    let w: Vec<f32> = (0..half)
        .map(|_| (rng.sample::<f64, _>(StandardNormal) * scale) as f32)
        .collect();
    Ok(Tensor::from_vec(w, half, device)?)
}

/// The variables of a `VarMap`, sorted by name (a stable order for optimizers and files).
pub fn sorted_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap
        .data()
        .lock()
        .expect("the VarMap lock is never poisoned");
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Set each variable from the tensor named `prefix + name`, checking presence and shape.
///
/// # Errors
/// [`ModelError::Checkpoint`] naming `path` for a missing or mis-shaped tensor.
pub(crate) fn load_vars(
    vars: &[(String, Var)],
    tensors: &HashMap<String, Tensor>,
    prefix: &str,
    path: &Path,
    device: &Device,
) -> Result<(), ModelError> {
    let bad = |reason: String| ModelError::Checkpoint {
        path: path.display().to_string(),
        reason,
    };
    for (name, var) in vars {
        let t = tensors
            .get(&format!("{prefix}{name}"))
            .ok_or_else(|| bad(format!("missing tensor {prefix}{name}")))?;
        if t.dims() != var.dims() {
            return Err(bad(format!(
                "tensor {prefix}{name} has shape {:?}, expected {:?}",
                t.dims(),
                var.dims()
            )));
        }
        var.set(&t.to_dtype(DType::F32)?.to_device(device)?)?;
    }
    Ok(())
}

/// What a weights file says about itself (safetensors metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsHeader {
    /// Always `gnsm-tab-resnet`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The network configuration.
    pub config: TabResNetConfig,
    /// The feature layout.
    pub layout: FeatureLayout,
}

/// A tab-ResNet score model: configuration, feature layout, trainable variables (a candle
/// `VarMap`) and the network built on them.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use gnsm_models::{TabResNetModel, TabResNetConfig};
/// use gnsm_noise::FeatureLayout;
///
/// let layout = FeatureLayout::new(1, vec![2, 3])?;
/// let config = TabResNetConfig { width: 16, depth: 2, embedding_size: 8, ..Default::default() };
/// let model = TabResNetModel::new(config, layout, &Device::Cpu)?;
/// let x = Tensor::zeros((4, 6), candle_core::DType::F32, &Device::Cpu)?;
/// let levels = Tensor::new(&[0u32, 5, 10, 19], &Device::Cpu)?;
/// assert_eq!(model.forward(&x, &levels)?.dims(), &[4, 6]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TabResNetModel {
    config: TabResNetConfig,
    layout: FeatureLayout,
    varmap: VarMap,
    fourier: Tensor,
    net: TabResNet,
    device: Device,
}

impl std::fmt::Debug for TabResNetModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TabResNetModel")
            .field("config", &self.config)
            .field("layout", &self.layout)
            .field("parameters", &self.num_parameters())
            .finish()
    }
}

impl TabResNetModel {
    /// What the host kernels read of this network (`crate::cpu`).
    pub(crate) fn cpu_view(&self) -> crate::cpu::NetView<'_> {
        crate::cpu::NetView {
            config: self.config(),
            input_width: self.layout().width(),
            vars: self.named_vars(),
            frequencies: self.network().embedding().frequencies(),
            device: self.device(),
        }
    }

    /// Build and initialise from `config.seed`: Xavier-uniform weights, zero biases, unit
    /// LayerNorm gains, Fourier frequencies `N(0, scale²)` — all drawn on the host, so the
    /// same seed gives the same model on every device.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for a bad configuration, or a candle error.
    pub fn new(
        config: TabResNetConfig,
        layout: FeatureLayout,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let mut rng = NoiseRng::seed_from_u64(config.seed);
        let fourier = fourier_frequencies(
            &mut rng,
            config.embedding_size / 2,
            config.fourier_scale,
            device,
        )?;
        let model = Self::build(config, layout, fourier, device)?;
        init_vars(&model.named_vars(), &mut rng, device)?;
        Ok(model)
    }

    fn build(
        config: TabResNetConfig,
        layout: FeatureLayout,
        fourier: Tensor,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let net = TabResNet::new(&config, layout.width(), fourier.clone(), vb)?;
        Ok(Self {
            config,
            layout,
            varmap,
            fourier,
            net,
            device: device.clone(),
        })
    }

    /// An untrained copy with the same configuration, layout and Fourier frequencies, whose
    /// variables hold a copy of this model's values (for EMA weights).
    ///
    /// # Errors
    /// A candle error.
    pub fn duplicate(&self) -> Result<Self, ModelError> {
        let copy = Self::build(
            self.config.clone(),
            self.layout.clone(),
            self.fourier.clone(),
            &self.device,
        )?;
        copy.copy_from(self)?;
        Ok(copy)
    }

    /// Set every variable to the value of the same-named variable of `other`.
    ///
    /// # Errors
    /// [`ModelError::Shape`] when the models differ, or a candle error.
    pub fn copy_from(&self, other: &Self) -> Result<(), ModelError> {
        let theirs: HashMap<String, Var> = other.named_vars().into_iter().collect();
        for (name, var) in self.named_vars() {
            let src = theirs.get(&name).ok_or_else(|| ModelError::Shape {
                what: "models to copy between",
                expected: format!("a variable {name}"),
                got: "none".into(),
            })?;
            var.set(&src.as_tensor().copy()?)?;
        }
        Ok(())
    }

    /// Forward pass: x (B, width), levels (B,) `u32` → (B, width) of continuous scores and
    /// categorical logits.
    ///
    /// # Errors
    /// [`ModelError::Shape`] for a wrong input width, or a candle error.
    pub fn forward(&self, x: &Tensor, levels: &Tensor) -> Result<Tensor, ModelError> {
        self.check_input(x)?;
        Ok(self.net.forward(x, levels)?)
    }

    /// Forward pass for inference, with no autograd graph: on a CPU f32 model the
    /// hand-written forward (a few buffers per call instead of one per op, the same numbers
    /// up to float rounding), elsewhere [`TabResNetModel::forward`]. Use [`TabResNetModel::forward`]
    /// when gradients must flow through the output.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use gnsm_models::{TabResNetModel, TabResNetConfig};
    /// use gnsm_noise::FeatureLayout;
    /// let layout = FeatureLayout::categorical(vec![3, 2])?;
    /// let config = TabResNetConfig { width: 16, depth: 1, embedding_size: 8, ..Default::default() };
    /// let model = TabResNetModel::new(config, layout, &Device::Cpu)?;
    /// let x = Tensor::zeros((4, 5), candle_core::DType::F32, &Device::Cpu)?;
    /// let levels = Tensor::new(&[0u32, 1, 2, 3], &Device::Cpu)?;
    /// let fast = model.infer(&x, &levels)?;
    /// let graph = model.forward(&x, &levels)?;
    /// let gap = (fast - graph)?.abs()?.max_all()?.to_scalar::<f32>()?;
    /// assert!(gap < 1e-4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`TabResNetModel::forward`].
    pub fn infer(&self, x: &Tensor, levels: &Tensor) -> Result<Tensor, ModelError> {
        self.check_input(x)?;
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            let rows = x.dim(0)?;
            let host = x.flatten_all()?.to_vec1::<f32>()?;
            let steps = levels
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            if steps.len() != rows {
                return Err(ModelError::Shape {
                    what: "levels",
                    expected: format!("{rows} levels, one per row"),
                    got: steps.len().to_string(),
                });
            }
            if let Some(out) = crate::cpu::infer(&self.cpu_view(), &host, &steps)? {
                return Ok(Tensor::from_vec(
                    out,
                    (rows, self.layout.width()),
                    &self.device,
                )?);
            }
        }
        self.forward(x, levels)
    }

    /// Inference of the same rows at several noise levels, for scoring: `x` holds rows of the
    /// layout's width (row-major, on the host) and `each(j, first_row, outputs)` receives the
    /// outputs (rows × width) of rows `first_row..` at level `levels[j]`. On a CPU f32 model
    /// the input projection and the first block up to its FiLM — the work that does not
    /// depend on the level — run once per row instead of once per level, in tiles of 1,024
    /// rows (every level of a tile before the next tile), with outputs bit-identical to
    /// [`TabResNetModel::infer`] of the rows at each level; elsewhere it is [`TabResNetModel::infer`]
    /// once per level over all the rows.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use gnsm_models::{TabResNetModel, TabResNetConfig};
    /// use gnsm_noise::FeatureLayout;
    /// let layout = FeatureLayout::categorical(vec![3, 2])?;
    /// let config = TabResNetConfig { width: 16, depth: 2, embedding_size: 8, ..Default::default() };
    /// let model = TabResNetModel::new(config, layout, &Device::Cpu)?;
    /// let x: Vec<f32> = (0..4 * 5).map(|i| (i % 3) as f32 - 1.0).collect();
    /// let mut at_level_7 = vec![0f32; 4 * 5];
    /// model.infer_levels(&x, &[0, 7], |j, first, out| {
    ///     if j == 1 {
    ///         at_level_7[first * 5..first * 5 + out.len()].copy_from_slice(out);
    ///     }
    /// })?;
    /// let t = Tensor::from_slice(&x, (4, 5), &Device::Cpu)?;
    /// let one = model.infer(&t, &Tensor::new(&[7u32; 4], &Device::Cpu)?)?;
    /// assert_eq!(one.flatten_all()?.to_vec1::<f32>()?, at_level_7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ModelError::Shape`] when `x` is not whole rows of the layout's width, or a candle
    /// error.
    pub fn infer_levels(
        &self,
        x: &[f32],
        levels: &[usize],
        mut each: impl FnMut(usize, usize, &[f32]),
    ) -> Result<(), ModelError> {
        let width = self.layout.width();
        if x.len() % width.max(1) != 0 {
            return Err(ModelError::Shape {
                what: "network input",
                expected: format!("rows of {width}"),
                got: format!("{} values", x.len()),
            });
        }
        let as_f32: Vec<f32> = levels.iter().map(|&l| l as f32).collect();
        if crate::cpu::infer_levels(&self.cpu_view(), x, &as_f32, &mut each)? {
            return Ok(());
        }
        let rows = x.len() / width.max(1);
        let t = Tensor::from_slice(x, (rows, width), &self.device)?;
        for (j, &level) in levels.iter().enumerate() {
            let l = Tensor::from_vec(vec![level as u32; rows], rows, &self.device)?;
            let out = self.infer(&t, &l)?.flatten_all()?.to_vec1::<f32>()?;
            each(j, 0, &out);
        }
        Ok(())
    }

    /// Forward pass with dropout masks (one per block; see [`TabResNet::forward_with_masks`]).
    ///
    /// # Errors
    /// As [`TabResNetModel::forward`].
    pub fn forward_with_masks(
        &self,
        x: &Tensor,
        levels: &Tensor,
        masks: &[Tensor],
    ) -> Result<Tensor, ModelError> {
        self.check_input(x)?;
        Ok(self.net.forward_with_masks(x, levels, masks)?)
    }

    fn check_input(&self, x: &Tensor) -> Result<(), ModelError> {
        match x.dims() {
            [_, w] if *w == self.layout.width() => Ok(()),
            dims => Err(ModelError::Shape {
                what: "network input",
                expected: format!("(rows, {})", self.layout.width()),
                got: format!("{dims:?}"),
            }),
        }
    }

    /// Trainable variables sorted by name (a stable order for optimizers and checkpoints).
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        sorted_vars(&self.varmap)
    }

    /// Number of trainable parameters.
    pub fn num_parameters(&self) -> usize {
        self.named_vars().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The configuration.
    pub fn config(&self) -> &TabResNetConfig {
        &self.config
    }

    /// The feature layout.
    pub fn layout(&self) -> &FeatureLayout {
        &self.layout
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The network.
    pub fn network(&self) -> &TabResNet {
        &self.net
    }

    /// The tensors that define this model: every variable by name, plus the Fourier
    /// frequencies under [`FOURIER_KEY`].
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .named_vars()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().clone()))
            .collect();
        out.push((FOURIER_KEY.into(), self.fourier.clone()));
        out
    }

    /// The metadata header describing this model.
    pub fn header(&self) -> WeightsHeader {
        WeightsHeader {
            format: FORMAT.into(),
            version: VERSION,
            config: self.config.clone(),
            layout: self.layout.clone(),
        }
    }

    /// Save weights and header as one checksummed safetensors file
    /// ([`save_envelope`](crate::save_envelope)), atomically.
    ///
    /// # Errors
    /// [`ModelError::Io`] or [`ModelError::Checkpoint`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        crate::io::save_envelope(
            path.as_ref(),
            FORMAT,
            VERSION,
            &self.header(),
            &self.tensors(),
        )
    }

    /// Load a model written by [`TabResNetModel::save`] onto `device`.
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] for a file that is not a gnsm model, from a newer format,
    /// damaged since it was written, or whose tensors do not fit its header.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, ModelError> {
        let file =
            crate::io::load_envelope::<WeightsHeader>(path.as_ref(), FORMAT, VERSION, device)?;
        Self::from_tensors(file.header, &file.tensors, "", path.as_ref(), device)
    }

    /// Rebuild a model from its header and named tensors (those of [`TabResNetModel::tensors`],
    /// each key preceded by `prefix`), e.g. out of a larger artifact file. `path` names the
    /// source in errors.
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] for a foreign or newer header, a missing or mis-shaped
    /// tensor.
    pub fn from_tensors(
        header: WeightsHeader,
        tensors: &HashMap<String, Tensor>,
        prefix: &str,
        path: &Path,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::Checkpoint {
            path: path.display().to_string(),
            reason,
        };
        if header.format != FORMAT || header.version > VERSION {
            return Err(bad(format!(
                "format {:?} version {} is not a model this build reads ({FORMAT} up to {VERSION})",
                header.format, header.version
            )));
        }
        header.config.validate()?;
        let fourier = tensors
            .get(&format!("{prefix}{FOURIER_KEY}"))
            .ok_or_else(|| bad(format!("missing tensor {prefix}{FOURIER_KEY}")))?
            .to_device(device)?;
        let model = Self::build(header.config, header.layout, fourier, device)?;
        load_vars(&model.named_vars(), tensors, prefix, path, device)?;
        Ok(model)
    }
}
