use thiserror::Error;

/// Everything that can go wrong in `gnsm-losses`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LossError {
    /// A tensor or buffer whose shape does not fit the layout.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape {
        /// What was measured.
        what: &'static str,
        /// The shape the layout asks for.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// An error from the noise crate (layout, schedule).
    #[error(transparent)]
    Noise(#[from] gnsm_noise::NoiseError),
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
