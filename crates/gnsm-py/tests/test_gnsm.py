"""The Python wheel: parity with the `gnsm` command, PyOD's attributes, bad input, files.

Run from the repository root after installing the wheel (see crates/gnsm-py/README.md):
    GNSM_BIN=target/release/gnsm python -m pytest crates/gnsm-py/tests
"""

import os
import pickle
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import gnsm

ROOT = Path(__file__).resolve().parents[3]
CMC = ROOT / "data" / "cmc.csv"
BIN = Path(os.environ.get("GNSM_BIN", ROOT / "target" / "release" / "gnsm"))
# Small and quick: the tests are about the binding, not the detector's accuracy.
QUICK = dict(steps=60, width=32, depth=1, seed=5)


@pytest.fixture(scope="module")
def cmc():
    df = pd.read_csv(CMC)
    return df.drop(columns="label"), df["label"]


@pytest.fixture(scope="module")
def fitted(cmc):
    X, y = cmc
    return gnsm.GNSM(**QUICK).fit(X, y)


def test_scores_equal_the_command_line_for_the_same_seed(cmc, tmp_path):
    if not BIN.exists():
        pytest.fail(f"{BIN} not built: run `cargo build --release -p gnsm-cli` or set GNSM_BIN")
    model = tmp_path / "cli.gnsm"
    scores = tmp_path / "scores.csv"
    subprocess.run(
        [BIN, "fit", CMC, "--label", "label", "--steps", "100", "--seed", "3", "--out", model, "-q"],
        check=True,
    )
    subprocess.run([BIN, "score", model, CMC, "--out", scores, "-q"], check=True)
    cli = pd.read_csv(scores)
    X, y = cmc
    det = gnsm.GNSM(steps=100, seed=3).fit(X, y)
    # The two fits give the same model (below: each side's model scores identically in one
    # process), but the wheel's engine and the command are separate builds of the same code
    # and their f64 scores can differ in the last bit (at most 1.4e-14 on scores near 90 on
    # 2026-12-02; which operation differs is not found yet). So scores agree to 1e-12
    # relative, and a p-value can move by one calibration row where a score sits on a
    # calibration score.
    ours = det.decision_function(X)
    theirs = cli["score"].to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    n_cal = det.fit_summary_["calibration_rows"]
    p_gap = np.abs(det.p_values(X) - cli["p_value"].to_numpy())
    assert (p_gap <= 1 / (n_cal + 1) + 1e-12).all() and (p_gap > 1e-12).mean() < 0.02
    decided = det.decisions(X)
    np.testing.assert_array_equal(decided["score"], ours)
    assert (decided["is_anomaly"] != cli["is_anomaly"].to_numpy()).mean() < 0.01
    np.testing.assert_array_equal(det.predict(X), decided["is_anomaly"].astype(np.int64))
    # And the files are one format: the command's model loads here, the wheel's there.
    loaded = gnsm.GNSM.load(model)
    np.testing.assert_array_equal(loaded.decision_function(X), ours)
    saved = tmp_path / "py.gnsm"
    det.save(saved)
    subprocess.run([BIN, "score", saved, CMC, "--out", scores, "-q"], check=True)
    np.testing.assert_array_equal(pd.read_csv(scores)["score"].to_numpy(), theirs)


def test_pyod_attributes(fitted, cmc):
    X, _ = cmc
    assert fitted.decision_scores_.shape == (len(X),)
    assert fitted.decision_scores_.dtype == np.float64
    assert np.isfinite(fitted.threshold_)
    assert set(np.unique(fitted.labels_)) <= {0, 1}
    np.testing.assert_array_equal(fitted.labels_, (fitted.decision_scores_ > fitted.threshold_))
    np.testing.assert_array_equal(fitted.predict(X), fitted.labels_)
    p = fitted.p_values(X)
    assert ((p > 0) & (p <= 1)).all()
    # A row flagged at alpha = 0.01 has p <= 0.01 and the other way round.
    np.testing.assert_array_equal(fitted.labels_ == 1, p <= 0.01)
    summary = fitted.fit_summary_
    assert summary["train_rows"] + summary["val_rows"] + summary["calibration_rows"] == int((cmc[1] == 0).sum())
    assert fitted.config_["trainer"]["steps"] == QUICK["steps"]


def test_contamination_flags_about_that_share_of_held_out_inliers(cmc):
    X, y = cmc
    det = gnsm.GNSM(**QUICK, contamination=0.2).fit(X, y)
    normal = X[y == 0]
    share = det.predict(normal).mean()
    # Calibrated on 10% of the inliers, flagged among all of them (most were fitted on).
    assert 0.05 < share < 0.35, share


def test_a_pyarrow_table_scores_as_the_dataframe(fitted, cmc):
    X, _ = cmc
    table = pa.Table.from_pandas(X, preserve_index=False)
    np.testing.assert_array_equal(fitted.decision_function(table), fitted.decision_function(X))
    batch = table.to_batches()[0]
    np.testing.assert_array_equal(
        fitted.decision_function(batch), fitted.decision_function(X.iloc[: batch.num_rows])
    )


def test_explain_names_columns_and_shares(fitted, cmc):
    X, _ = cmc
    explained = fitted.explain(X.head(3), top=2)
    assert [e["row"] for e in explained] == [0, 1, 2]
    for e in explained:
        assert len(e["contributions"]) == 2
        assert all(c["feature"] in X.columns for c in e["contributions"])
        shares = [c["share"] for c in e["contributions"]]
        assert shares == sorted(shares, reverse=True)
    np.testing.assert_allclose(
        [e["score"] for e in explained], fitted.decision_function(X.head(3)), rtol=0, atol=0
    )


def test_bad_input_raises_with_the_message(fitted, cmc):
    X, y = cmc
    with pytest.raises(gnsm.GnsmError, match="unknown keyword 'stpes'"):
        gnsm.GNSM(stpes=10)
    with pytest.raises(gnsm.GnsmError, match="network.widht"):
        gnsm.GNSM(config={"network": {"widht": 8}})
    with pytest.raises(gnsm.GnsmError, match="preset"):
        gnsm.GNSM(preset="fast")
    with pytest.raises(gnsm.GnsmError, match="val_fraction"):
        gnsm.GNSM(config={"val_fraction": 2.0})
    with pytest.raises(gnsm.GnsmError, match="not both"):
        gnsm.GNSM(alpha=0.1, contamination=0.1)
    with pytest.raises(gnsm.GnsmError, match="expected 1473 labels"):
        gnsm.GNSM(**QUICK).fit(X, y[:10])
    with pytest.raises(gnsm.GnsmError, match="row 0 is 2"):
        gnsm.GNSM(**QUICK).fit(X, np.full(len(X), 2))
    with pytest.raises(gnsm.GnsmError, match="no inlier rows"):
        gnsm.GNSM(**QUICK).fit(X, np.ones(len(X)))
    with pytest.raises(TypeError, match="pandas DataFrame or a pyarrow Table"):
        fitted.decision_function([[1, 2, 3]])
    with pytest.raises(gnsm.GnsmError, match="Wifes_education"):
        fitted.decision_function(X.drop(columns="Wifes_education"))
    with pytest.raises(gnsm.GnsmError, match="not fitted"):
        gnsm.GNSM().decision_function(X)
    with pytest.raises(gnsm.GnsmError, match="top"):
        fitted.explain(X.head(1), top=0)
    with pytest.raises(gnsm.GnsmError, match="alpha"):
        gnsm.GNSM(**QUICK, alpha=1.5).fit(X.head(200))


def test_a_damaged_model_file_is_refused(fitted, tmp_path):
    path = tmp_path / "m.gnsm"
    fitted.save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(gnsm.GnsmError):
        gnsm.GNSM.load(path)
    with pytest.raises(OSError):
        gnsm.GNSM.load(tmp_path / "missing.gnsm")


def test_save_load_and_pickle_round_trip(fitted, cmc, tmp_path):
    X, _ = cmc
    path = tmp_path / "m.gnsm"
    fitted.save(path)
    loaded = gnsm.GNSM.load(path)
    np.testing.assert_array_equal(loaded.decision_function(X), fitted.decision_scores_)
    assert loaded.threshold_ == fitted.threshold_
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.decision_function(X), fitted.decision_scores_)
    np.testing.assert_array_equal(again.labels_, fitted.labels_)
    # An unfitted detector pickles too.
    assert pickle.loads(pickle.dumps(gnsm.GNSM(**QUICK))).get_params() == gnsm.GNSM(**QUICK).get_params()


def test_fit_releases_the_gil(cmc):
    X, y = cmc
    ticks = []
    done = threading.Event()

    def fit():
        gnsm.GNSM(steps=150, width=64, depth=1, seed=1).fit(X, y)
        done.set()

    worker = threading.Thread(target=fit)
    worker.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.005)
    worker.join()
    # With the GIL held through the fit, this loop would stall for the whole fit.
    gaps = np.diff(ticks)
    assert len(ticks) > 20 and gaps.max() < 0.5, (len(ticks), gaps.max())
