//! The one error type of the crate.

/// What can go wrong reading pairs, training, scoring or measuring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentationError {
    /// A file or folder that cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An image or label file that cannot be used.
    #[error("{path}: {reason}")]
    Image {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Masks or images of the wrong size.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// What was checked.
        what: &'static str,
        /// The expected size.
        expected: String,
        /// The size found.
        got: String,
    },
    /// Settings or inputs that cannot work (no pairs, a mask value outside the classes …).
    #[error("{0}")]
    Invalid(String),
    /// Writing a file (gnsm-data's atomic writer).
    #[error(transparent)]
    Data(#[from] gnsm_data::DataError),
    /// A network, its file or its optimizer.
    #[error(transparent)]
    Model(#[from] gnsm_models::ModelError),
    /// The noise schedule or layout.
    #[error(transparent)]
    Noise(#[from] gnsm_noise::NoiseError),
    /// The training objective.
    #[error(transparent)]
    Loss(#[from] gnsm_losses::LossError),
    /// The score-norm matrix.
    #[error(transparent)]
    Msma(#[from] msma::MsmaError),
    /// A tensor operation.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
