"""Throughput of examples/spark/score.py against `gnsm score` on the same Parquet file.

    RAYON_NUM_THREADS=2 python examples/spark/bench.py [--rows 1000000] [--gnsm target/release/gnsm]

Generates the Spark test's table (eight categorical columns and an id) as one Parquet file,
fits two models with the wheel — the small one of the Spark test (width 16, 1 block, 5 noise
levels, 1 draw: the per-row overhead dominates) and the library default's network and scorer
(width 256, 4 blocks, 20 levels × 8 draws: the network dominates; trained briefly, which
does not change the scoring cost) — and scores the file with each path, printing rows/s:
`gnsm score` (which also explains every row: its top columns and expected values), the
wheel's `decisions` in this process (scores, p-values, decisions: the Spark job's work) and
the Spark job (start-up of the Spark session included).
The default model scores a fiftieth of the rows (its cost is the same per row).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

import gnsm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "crates" / "gnsm-py" / "tests"))
from test_spark import generated  # noqa: E402  (the test's generator, one definition)


def timed(command):
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--gnsm", default=str(HERE.parents[1] / "target" / "release" / "gnsm"))
    args = parser.parse_args()
    small = dict(
        steps=60, width=16, depth=1, seed=2, ignored=["id"],
        config={"trainer": {"noise": {"levels": 5}}, "score": {"denoising_loss": {"draws": 1}}},
    )
    default = dict(steps=60, seed=2, ignored=["id"])
    print(f"threads {os.environ.get('RAYON_NUM_THREADS', 'all')}, Spark local[2]")
    print("| model | rows | gnsm score rows/s | wheel, one process rows/s | Spark rows/s | Spark / CLI | Spark / wheel |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, options, rows in [("small", small, args.rows), ("default", default, args.rows // 50)]:
            data = tmp / f"{name}.parquet"
            pq.write_table(generated(rows, seed=11), data)
            model = tmp / f"{name}.gnsm"
            detector = gnsm.GNSM(**options).fit(generated(5_000, seed=12))
            detector.save(model)
            started = time.perf_counter()
            detector.decisions(pq.read_table(data))
            wheel = time.perf_counter() - started
            cli = timed([args.gnsm, "score", model, data, "--out", tmp / f"{name}.cli.parquet",
                         "--format", "parquet", "-q"])
            spark = timed([sys.executable, HERE / "score.py", model, data, tmp / f"{name}.spark",
                           "--keep", "id", "--master", "local[2]"])
            print(
                f"| {name} | {rows:,} | {rows / cli:,.0f} | {rows / wheel:,.0f} | {rows / spark:,.0f} "
                f"| {cli / spark:.2f} | {wheel / spark:.2f} |"
            )


if __name__ == "__main__":
    main()
