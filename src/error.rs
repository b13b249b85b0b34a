use thiserror::Error;

/// Everything that can go wrong in the GNSM pipeline.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GnsmError {
    /// Reading or encoding the data.
    #[error(transparent)]
    Data(#[from] gnsm_data::DataError),
    /// Building or training the network.
    #[error(transparent)]
    Model(#[from] gnsm_models::ModelError),
    /// The density model or metrics.
    #[error(transparent)]
    Msma(#[from] msma::MsmaError),
    /// Noise schedule or layout.
    #[error(transparent)]
    Noise(#[from] gnsm_noise::NoiseError),
    /// Group softmax / scores.
    #[error(transparent)]
    Loss(#[from] gnsm_losses::LossError),
    /// A baseline detector.
    #[error(transparent)]
    Baseline(#[from] gnsm_baselines::BaselineError),
    /// candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A saved model that cannot be used.
    #[error("{path}: {reason}")]
    Artifact {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Settings or inputs that cannot work together.
    #[error("{0}")]
    Invalid(String),
    /// File system errors.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}
