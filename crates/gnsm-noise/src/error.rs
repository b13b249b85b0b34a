use thiserror::Error;

/// Everything that can go wrong in `gnsm-noise`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NoiseError {
    /// A layout with neither categorical groups nor continuous features.
    #[error("the feature layout is empty: it needs at least one categorical group or continuous feature")]
    EmptyLayout,
    /// A categorical group with fewer than two outcomes.
    #[error("categorical group {group} has {size} outcome(s); every group needs at least 2")]
    GroupTooSmall {
        /// Index of the offending group.
        group: usize,
        /// Its size.
        size: usize,
    },
    /// A buffer whose length does not fit the layout or batch.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// What was measured.
        what: &'static str,
        /// The length the layout asks for.
        expected: usize,
        /// The length that was given.
        got: usize,
    },
    /// A level index past the end of the schedule.
    #[error("noise level {level} is out of range: the schedule has {levels} levels")]
    LevelOutOfRange {
        /// The level that was asked for.
        level: usize,
        /// How many levels the schedule has.
        levels: usize,
    },
    /// A parameter outside its valid range.
    #[error("invalid {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// Why it is invalid.
        reason: &'static str,
    },
}
