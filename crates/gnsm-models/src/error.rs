use thiserror::Error;

/// Everything that can go wrong in `gnsm-models`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A configuration value outside its valid range.
    #[error("invalid {name} = {value}: {reason}")]
    InvalidConfig {
        /// The setting.
        name: &'static str,
        /// Its value, printed.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Input whose shape does not fit the network or layout.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// What was measured.
        what: &'static str,
        /// What was expected.
        expected: String,
        /// What was given.
        got: String,
    },
    /// A NaN or infinite loss or gradient.
    #[error(
        "non-finite {what} at step {step}: training stopped; the last good checkpoint is intact"
    )]
    NonFinite {
        /// "loss" or "gradient".
        what: &'static str,
        /// The step.
        step: usize,
    },
    /// A checkpoint or weights file that cannot be used.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// File system errors.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An error from the noise crate.
    #[error(transparent)]
    Noise(#[from] gnsm_noise::NoiseError),
    /// An error from the losses crate.
    #[error(transparent)]
    Loss(#[from] gnsm_losses::LossError),
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Err(ModelError::InvalidConfig { .. })`, for the validators of the config structs.
pub(crate) fn invalid(
    name: &'static str,
    value: impl ToString,
    reason: &'static str,
) -> Result<(), ModelError> {
    Err(ModelError::InvalidConfig {
        name,
        value: value.to_string(),
        reason,
    })
}
