use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// Row indices of the paper's split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// 80 % of the inliers.
    pub train: Vec<usize>,
    /// 10 % of the inliers (validation loss, early stopping).
    pub val: Vec<usize>,
    /// The remaining inliers, then every anomaly.
    pub test: Vec<usize>,
}

/// Sizes of PyTorch's `random_split(n, [0.8, 0.1, 0.1])`: floors, then the remainder
/// handed out one by one from the first part.
pub fn split_sizes(n: usize, fractions: &[f64]) -> Vec<usize> {
    let mut sizes: Vec<usize> = fractions
        .iter()
        .map(|f| (n as f64 * f).floor() as usize)
        .collect();
    let remainder = n - sizes.iter().sum::<usize>();
    let parts = sizes.len();
    for i in 0..remainder {
        sizes[i % parts] += 1;
    }
    sizes
}

/// The paper's protocol: shuffle the inliers (`labels[i] == false`) with `seed`, split them
/// 80/10/10 into train/val/test, and append every anomaly to test. Deterministic per seed.
///
/// ```
/// let labels: Vec<bool> = (0..100).map(|i| i % 10 == 0).collect(); // 10 anomalies
/// let split = gnsm_data::paper_split(&labels, 42);
/// assert_eq!((split.train.len(), split.val.len(), split.test.len()), (72, 9, 9 + 10));
/// assert_eq!(split, gnsm_data::paper_split(&labels, 42));
/// ```
pub fn paper_split(labels: &[bool], seed: u64) -> Split {
    let mut inliers: Vec<usize> = (0..labels.len()).filter(|&i| !labels[i]).collect();
    let anomalies = (0..labels.len()).filter(|&i| labels[i]);
    inliers.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
    let sizes = split_sizes(inliers.len(), &[0.8, 0.1, 0.1]);
    let val_end = sizes[0] + sizes[1];
    let mut test = inliers[val_end..].to_vec();
    test.extend(anomalies);
    Split {
        train: inliers[..sizes[0]].to_vec(),
        val: inliers[sizes[0]..val_end].to_vec(),
        test,
    }
}

/// Which rows an evaluation fits the encoder's vocabulary on. Continuous statistics always
/// come from inliers only: the fitting rows under [`VocabularyRule::TrainVal`], every inlier
/// otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VocabularyRule {
    /// Train + validation inliers: nothing from the test rows leaks into the encoder; unseen
    /// test values land in the reserved slot. The default for user data.
    #[default]
    TrainVal,
    /// Every inlier (label 0) row, as the reference code does for six of the seven datasets.
    AllInliers,
    /// Every row, as the reference does for probe.
    AllRows,
}

impl VocabularyRule {
    /// The rows the vocabulary is fitted on, given the per-row labels and the fitting rows
    /// (train + validation).
    pub fn rows(self, labels: &[bool], fitting: &[usize]) -> Vec<usize> {
        match self {
            Self::TrainVal => fitting.to_vec(),
            Self::AllInliers => (0..labels.len()).filter(|&i| !labels[i]).collect(),
            Self::AllRows => (0..labels.len()).collect(),
        }
    }

    /// The rows continuous statistics are fitted on.
    pub fn statistics_rows(self, labels: &[bool], fitting: &[usize]) -> Vec<usize> {
        match self {
            Self::TrainVal => fitting.to_vec(),
            Self::AllInliers | Self::AllRows => (0..labels.len()).filter(|&i| !labels[i]).collect(),
        }
    }
}

impl std::str::FromStr for VocabularyRule {
    type Err = crate::DataError;

    /// `train-val`, `all-inliers` or `all-rows`.
    ///
    /// ```
    /// use gnsm_data::VocabularyRule;
    /// assert_eq!("all-rows".parse::<VocabularyRule>()?, VocabularyRule::AllRows);
    /// # Ok::<(), gnsm_data::DataError>(())
    /// ```
    fn from_str(s: &str) -> Result<Self, crate::DataError> {
        match s {
            "train-val" => Ok(Self::TrainVal),
            "all-inliers" => Ok(Self::AllInliers),
            "all-rows" => Ok(Self::AllRows),
            other => Err(crate::DataError::Dataset(format!(
                "unknown vocabulary rule {other:?}; one of train-val, all-inliers, all-rows"
            ))),
        }
    }
}
