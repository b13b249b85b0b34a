"""examples/spark/score.py in Spark local mode: a million generated rows in several Parquet
files, scored on `local[2]`, equal single-process scoring of the same rows bit for bit.

Needs pyspark and Java 17+ (tools/test installs pyspark into its environment); skipped with a
reason when either is missing and GNSM_REQUIRE_SPARK is unset (tools/test sets it, so CI
cannot skip it).
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gnsm

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "examples" / "spark" / "score.py"
ROWS = 1_000_000
FILES = 4


def _spark_missing():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (install default-jre-headless)"
    return None


missing = _spark_missing()
if missing and os.environ.get("GNSM_REQUIRE_SPARK"):
    raise RuntimeError(f"GNSM_REQUIRE_SPARK is set but {missing}")
pytestmark = pytest.mark.skipif(missing is not None, reason=str(missing))


def generated(rows: int, seed: int) -> pa.Table:
    """Eight categorical columns that mostly follow one hidden category, plus an id."""
    rng = np.random.default_rng(seed)
    hidden = rng.integers(0, 5, rows)
    columns = {"id": pa.array(np.arange(rows, dtype=np.int64))}
    for j in range(8):
        value = np.where(rng.random(rows) < 0.85, (hidden + j) % 5, rng.integers(0, 5, rows))
        columns[f"c{j}"] = pa.array(np.char.add("v", value.astype(str)))
    return pa.table(columns)


def test_spark_scores_equal_single_process_scores(tmp_path):
    table = generated(ROWS, seed=11)
    data = tmp_path / "rows"
    data.mkdir()
    per_file = ROWS // FILES
    for i in range(FILES):
        pq.write_table(table.slice(i * per_file, per_file), data / f"part-{i}.parquet")
    # A small network and a short noise schedule: the test is about Spark, not accuracy.
    detector = gnsm.GNSM(
        steps=60,
        width=16,
        depth=1,
        seed=2,
        ignored=["id"],
        config={"trainer": {"noise": {"levels": 5}}, "score": {"denoising_loss": {"draws": 1}}},
    ).fit(generated(5_000, seed=12))
    model = tmp_path / "m.gnsm"
    detector.save(model)

    out = tmp_path / "scored"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, SCRIPT, model, data, out, "--keep", "id", "--master", "local[2]"],
        check=True,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    spark_seconds = time.perf_counter() - started
    scored = pq.read_table(out).sort_by("id")
    assert scored.column_names == ["id", "score", "p_value", "is_anomaly"]
    assert scored.num_rows == ROWS

    started = time.perf_counter()
    alone = detector.decisions(table)
    single_seconds = time.perf_counter() - started
    np.testing.assert_array_equal(scored["id"].to_numpy(), np.arange(ROWS))
    np.testing.assert_array_equal(scored["score"].to_numpy(), alone["score"])
    np.testing.assert_array_equal(scored["p_value"].to_numpy(), alone["p_value"])
    np.testing.assert_array_equal(
        scored["is_anomaly"].to_numpy(zero_copy_only=False), alone["is_anomaly"]
    )
    print(
        f"\n{ROWS} rows: Spark local[2] {ROWS / spark_seconds:,.0f} rows/s (with start-up), "
        f"one process {ROWS / single_seconds:,.0f} rows/s"
    )

    # Nothing is overwritten: a second run into the same directory is refused.
    again = subprocess.run(
        [sys.executable, SCRIPT, model, data, out, "--master", "local[2]"],
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0 and "exists" in again.stderr
