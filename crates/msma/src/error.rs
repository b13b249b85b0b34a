use thiserror::Error;

/// Everything that can go wrong in `msma`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MsmaError {
    /// A matrix or vector of the wrong size.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// What was measured.
        what: &'static str,
        /// What was expected.
        expected: String,
        /// What was given.
        got: String,
    },
    /// A NaN or infinite value in the input.
    #[error("{what} has a non-finite value {value} at row {row}, column {column}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Row of the value.
        row: usize,
        /// Column of the value.
        column: usize,
        /// The value.
        value: f64,
    },
    /// Not enough rows for what was asked.
    #[error("{what}: need at least {needed} rows, got {got}")]
    TooFewRows {
        /// What needed them.
        what: &'static str,
        /// How many are needed.
        needed: usize,
        /// How many were given.
        got: usize,
    },
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
    /// A covariance that stayed singular however much it was regularised.
    #[error(
        "component {component}: covariance not positive definite even with {reg:e} on its diagonal"
    )]
    SingularCovariance {
        /// The component.
        component: usize,
        /// The largest diagonal regularisation tried.
        reg: f64,
    },
    /// Labels with only one class, where a metric needs both.
    #[error("{metric} needs both anomalies and inliers among the labels (got {positives} anomalies of {total})")]
    OneClass {
        /// The metric.
        metric: &'static str,
        /// Number of positive labels.
        positives: usize,
        /// Number of labels.
        total: usize,
    },
}
