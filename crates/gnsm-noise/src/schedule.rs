use serde::{Deserialize, Serialize};

use crate::NoiseError;

/// `n` values spaced evenly on a log scale from `start` to `end` inclusive:
/// `exp(linspace(ln start, ln end, n))`, as the reference builds its schedules.
///
/// ```
/// let taus = gnsm_noise::geometric(20.0, 2.0, 3);
/// assert!((taus[1] - 40f64.sqrt()).abs() < 1e-12);
/// ```
pub fn geometric(start: f64, end: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let (a, b) = (start.ln(), end.ln());
            let step = (b - a) / (n - 1) as f64;
            (0..n)
                .map(|i| {
                    // Exact endpoints, as users compare τ_0 and τ_{L-1} to their settings.
                    if i == 0 {
                        start
                    } else if i == n - 1 {
                        end
                    } else {
                        (a + step * i as f64).exp()
                    }
                })
                .collect()
        }
    }
}

/// The settings of a [`NoiseSchedule`]. The defaults are the paper's: L = 20 levels, τ from 20
/// (level 0, the most noise) down to 2, σ for continuous features from 1.0 down to 0.1 on the
/// same index.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleConfig {
    /// Number of noise levels L.
    pub levels: usize,
    /// Temperature at level 0 (most noise).
    pub tau_max: f64,
    /// Temperature at level L-1 (least noise). The authors saw numerical trouble below 2.
    pub tau_min: f64,
    /// Gaussian σ for continuous features at level 0.
    pub sigma_max: f64,
    /// Gaussian σ for continuous features at level L-1.
    pub sigma_min: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            levels: 20,
            tau_max: 20.0,
            tau_min: 2.0,
            sigma_max: 1.0,
            sigma_min: 0.1,
        }
    }
}

impl ScheduleConfig {
    /// Check the settings and build the schedule.
    ///
    /// # Errors
    /// [`NoiseError::InvalidParameter`] for zero levels or a non-finite or non-positive τ or σ.
    pub fn build(&self) -> Result<NoiseSchedule, NoiseError> {
        NoiseSchedule::new(*self)
    }
}

/// The noise levels: one temperature τ_i (categorical features) and one σ_i (continuous
/// features) per level index i, index 0 being the most noise.
///
/// ```
/// use gnsm_noise::NoiseSchedule;
/// let schedule = NoiseSchedule::default();
/// assert_eq!(schedule.levels(), 20);
/// assert_eq!(schedule.temperature(0)?, 20.0);
/// assert!((schedule.temperature(19)? - 2.0).abs() < 1e-12);
/// assert!((schedule.sigma(19)? - 0.1).abs() < 1e-12);
/// # Ok::<(), gnsm_noise::NoiseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ScheduleConfig", into = "ScheduleConfig")]
pub struct NoiseSchedule {
    config: ScheduleConfig,
    temperatures: Vec<f64>,
    sigmas: Vec<f64>,
}

impl TryFrom<ScheduleConfig> for NoiseSchedule {
    type Error = NoiseError;
    fn try_from(config: ScheduleConfig) -> Result<Self, Self::Error> {
        Self::new(config)
    }
}

impl From<NoiseSchedule> for ScheduleConfig {
    fn from(schedule: NoiseSchedule) -> Self {
        schedule.config
    }
}

impl Default for NoiseSchedule {
    fn default() -> Self {
        Self::new(ScheduleConfig::default()).expect("the default schedule is valid")
    }
}

fn check_positive(name: &'static str, value: f64) -> Result<(), NoiseError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(NoiseError::InvalidParameter {
            name,
            value,
            reason: "must be finite and > 0",
        })
    }
}

impl NoiseSchedule {
    /// Build the geometric schedules of `config`.
    ///
    /// # Errors
    /// [`NoiseError::InvalidParameter`] for zero levels or a non-finite or non-positive τ or σ.
    pub fn new(config: ScheduleConfig) -> Result<Self, NoiseError> {
        if config.levels == 0 {
            return Err(NoiseError::InvalidParameter {
                name: "levels",
                value: 0.0,
                reason: "a schedule needs at least one level",
            });
        }
        check_positive("tau_max", config.tau_max)?;
        check_positive("tau_min", config.tau_min)?;
        check_positive("sigma_max", config.sigma_max)?;
        check_positive("sigma_min", config.sigma_min)?;
        Ok(Self {
            temperatures: geometric(config.tau_max, config.tau_min, config.levels),
            sigmas: geometric(config.sigma_max, config.sigma_min, config.levels),
            config,
        })
    }

    /// The settings this schedule was built from.
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// Number of levels L.
    pub fn levels(&self) -> usize {
        self.temperatures.len()
    }

    /// All temperatures, index 0 = most noise.
    pub fn temperatures(&self) -> &[f64] {
        &self.temperatures
    }

    /// All continuous σ, index 0 = most noise.
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// Temperature τ at `level`.
    ///
    /// # Errors
    /// [`NoiseError::LevelOutOfRange`] when `level >= levels()`.
    pub fn temperature(&self, level: usize) -> Result<f64, NoiseError> {
        self.temperatures
            .get(level)
            .copied()
            .ok_or(self.out_of_range(level))
    }

    /// Continuous σ at `level`.
    ///
    /// # Errors
    /// [`NoiseError::LevelOutOfRange`] when `level >= levels()`.
    pub fn sigma(&self, level: usize) -> Result<f64, NoiseError> {
        self.sigmas
            .get(level)
            .copied()
            .ok_or(self.out_of_range(level))
    }

    /// Draw one level index per row, uniformly from `0..levels()`, as the reference does for
    /// every training example, into `out` (cleared first).
    pub fn sample_levels<R: rand::Rng + ?Sized>(
        &self,
        rng: &mut R,
        rows: usize,
        out: &mut Vec<usize>,
    ) {
        out.clear();
        out.extend((0..rows).map(|_| rng.random_range(0..self.levels())));
    }

    fn out_of_range(&self, level: usize) -> NoiseError {
        NoiseError::LevelOutOfRange {
            level,
            levels: self.levels(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn default_schedule_matches_reference() {
        // Reference: np.exp(np.linspace(np.log(20), np.log(2), 20)); the ratio between
        // neighbours is 10^(-1/19).
        let s = NoiseSchedule::default();
        let ratio = 10f64.powf(-1.0 / 19.0);
        for i in 1..20 {
            assert_relative_eq!(
                s.temperature(i).unwrap() / s.temperature(i - 1).unwrap(),
                ratio,
                max_relative = 1e-12
            );
            assert_relative_eq!(
                s.sigma(i).unwrap() / s.sigma(i - 1).unwrap(),
                ratio,
                max_relative = 1e-12
            );
        }
        // np.exp(np.linspace(np.log(20), np.log(2), 20))[1] = 17.7173358...
        assert_relative_eq!(s.temperature(1).unwrap(), 17.717_335_808_2, epsilon = 1e-9);
        assert_eq!(s.temperature(19).unwrap(), 2.0);
        assert_eq!(s.sigma(0).unwrap(), 1.0);
        assert!(matches!(
            s.temperature(20),
            Err(NoiseError::LevelOutOfRange {
                level: 20,
                levels: 20
            })
        ));
    }

    #[test]
    fn invalid_configs_are_errors() {
        let bad = |c: ScheduleConfig| NoiseSchedule::new(c).is_err();
        let d = ScheduleConfig::default();
        assert!(bad(ScheduleConfig { levels: 0, ..d }));
        assert!(bad(ScheduleConfig { tau_min: 0.0, ..d }));
        assert!(bad(ScheduleConfig {
            tau_max: f64::NAN,
            ..d
        }));
        assert!(bad(ScheduleConfig {
            sigma_min: -1.0,
            ..d
        }));
        let single = NoiseSchedule::new(ScheduleConfig { levels: 1, ..d }).unwrap();
        assert_eq!(single.temperatures(), &[20.0]);
    }

    #[test]
    fn serde_round_trip() {
        let s = NoiseSchedule::new(ScheduleConfig {
            levels: 7,
            ..Default::default()
        })
        .unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let back: NoiseSchedule = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
