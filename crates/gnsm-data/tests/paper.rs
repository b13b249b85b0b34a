//! The paper's datasets: Table 1 widths, the bundled copies, and the split protocol.

use std::path::PathBuf;

use gnsm_data::{default_data_dir, paper_split, split_sizes, PaperDataset};

fn bundled_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

#[test]
fn one_hot_widths_match_table_1() {
    let Some(dir) = default_data_dir().filter(|d| d.join("bank.csv").is_file()) else {
        println!("skipped: no data directory (set GNSM_DATA_DIR or place ../shared/data beside the checkout)");
        return;
    };
    for dataset in PaperDataset::ALL {
        let data = dataset
            .load(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dataset.name()));
        let layout = data.schema.layout().unwrap();
        let (width, continuous) = dataset.table1_width();
        assert_eq!(
            (layout.categorical_width(), layout.continuous()),
            (width, continuous),
            "{}",
            dataset.name()
        );
        // Every row encodes, anomalies included (the vocabulary covers them, as in the
        // reference, whose encoder would have refused unseen values).
        let encoded = data.schema.encode(&data.table).unwrap();
        assert_eq!(encoded.rows, data.table.rows());
        assert!(encoded.data.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn bundled_cmc_and_solar_match_table_1() {
    for (dataset, rows, anomalies) in [
        (PaperDataset::Cmc, 1473, 29),
        (PaperDataset::Solar, 1066, 43),
    ] {
        let data = dataset.load(&bundled_dir()).unwrap();
        assert_eq!(data.table.rows(), rows);
        assert_eq!(data.labels.iter().filter(|&&l| l).count(), anomalies);
        assert_eq!(
            data.schema.layout().unwrap().categorical_width(),
            dataset.table1_width().0
        );
    }
}

#[test]
fn split_protocol() {
    let data = PaperDataset::Cmc.load(&bundled_dir()).unwrap();
    let labels = &data.labels;
    let split = paper_split(labels, 42);
    // 1444 inliers: random_split([0.8, 0.1, 0.1]) sizes 1156, 144, 144.
    assert_eq!(split_sizes(1444, &[0.8, 0.1, 0.1]), vec![1156, 144, 144]);
    assert_eq!(
        (split.train.len(), split.val.len(), split.test.len()),
        (1156, 144, 144 + 29)
    );
    // Disjoint, covering, inliers only in train/val, every anomaly in test.
    let mut all: Vec<usize> = split
        .train
        .iter()
        .chain(&split.val)
        .chain(&split.test)
        .copied()
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), labels.len());
    assert!(split.train.iter().chain(&split.val).all(|&i| !labels[i]));
    assert_eq!(split.test.iter().filter(|&&i| labels[i]).count(), 29);
    // Deterministic per seed, different across seeds.
    assert_eq!(split, paper_split(labels, 42));
    assert_ne!(split.train, paper_split(labels, 43).train);
    // PyTorch's remainder rule: 10 → 8, 1, 1; 7 → 6, 1, 0 (floor 5,0,0 + 2 remainder).
    assert_eq!(split_sizes(10, &[0.8, 0.1, 0.1]), vec![8, 1, 1]);
    assert_eq!(split_sizes(7, &[0.8, 0.1, 0.1]), vec![6, 1, 0]);
}

#[test]
fn names_round_trip() {
    for d in PaperDataset::ALL {
        assert_eq!(PaperDataset::from_name(d.name()), Some(d));
    }
    assert_eq!(PaperDataset::from_name("CMC"), Some(PaperDataset::Cmc));
    assert_eq!(PaperDataset::from_name("iris"), None);
}
