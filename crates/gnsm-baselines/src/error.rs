use thiserror::Error;

/// Everything that can go wrong in `gnsm-baselines`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// A hyperparameter outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value, printed.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Records whose width differs from the fitted one.
    #[error("{what}: expected {expected} columns, got {got}")]
    Width {
        /// Which detector.
        what: &'static str,
        /// The fitted width.
        expected: usize,
        /// The given width.
        got: usize,
    },
    /// Not enough rows to fit.
    #[error("{what}: need at least {needed} rows, got {got}")]
    TooFewRows {
        /// What needed them.
        what: &'static str,
        /// How many are needed.
        needed: usize,
        /// How many were given.
        got: usize,
    },
    /// An error of the mixture machinery (non-finite input, singular covariance, …).
    #[error(transparent)]
    Msma(#[from] msma::MsmaError),
}
