"""Throughput of examples/spark/score.py against `gnsm score` on the same Parquet file.

    RAYON_NUM_THREADS=2 python examples/spark/bench.py [--rows 1000000] [--rounds 3] [--gnsm target/release/gnsm]

Generates the Spark test's table (eight categorical columns and an id) as one Parquet file,
fits two models with the wheel — the small one of the Spark test (width 16, 1 block, 5 noise
levels, 1 draw: the per-row overhead dominates) and the library default's network and scorer
(width 256, 4 blocks, 20 levels × 8 draws: the network dominates; trained briefly, which
does not change the scoring cost) — and scores the file with each path, printing rows/s:
`gnsm score` (which also explains every row: its top columns and expected values), the
wheel's `decisions` in this process (scores, p-values, decisions: the Spark job's work) and
the Spark job (start-up of the Spark session included).
The default model scores a hundredth of the rows (its cost is the same per row). The three
paths run in alternating rounds (their order rotated each round), and the table gives the
median rows/s with the range; the CPU model is printed first.
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


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def rate(rows, seconds):
    """Median rows/s with the range, from several timings."""
    rates = sorted(rows / s for s in seconds)
    return rates[len(rates) // 2], rates[0], rates[-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gnsm", default=str(HERE.parents[1] / "target" / "release" / "gnsm"))
    args = parser.parse_args()
    small = dict(
        steps=60, width=16, depth=1, seed=2, ignored=["id"],
        config={"trainer": {"noise": {"levels": 5}}, "score": {"denoising_loss": {"draws": 1}}},
    )
    default = dict(steps=60, seed=2, ignored=["id"])
    print(f"{cpu_model()}; threads {os.environ.get('RAYON_NUM_THREADS', 'all')}, Spark local[2]; "
          f"{args.rounds} alternating rounds, median rows/s (range)")
    print("| model | rows | gnsm score rows/s | wheel, one process rows/s | Spark rows/s | Spark / CLI | Spark / wheel |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, options, rows in [("small", small, args.rows), ("default", default, args.rows // 100)]:
            data = tmp / f"{name}.parquet"
            pq.write_table(generated(rows, seed=11), data)
            model = tmp / f"{name}.gnsm"
            detector = gnsm.GNSM(**options).fit(generated(5_000, seed=12))
            detector.save(model)
            table = pq.read_table(data)

            def cli(i):
                return timed([args.gnsm, "score", model, data, "--out", tmp / f"{name}.{i}.parquet",
                              "--format", "parquet", "-q"])

            def wheel(i):
                started = time.perf_counter()
                detector.decisions(table)
                return time.perf_counter() - started

            def spark(i):
                return timed([sys.executable, HERE / "score.py", model, data, tmp / f"{name}.{i}.spark",
                              "--keep", "id", "--master", "local[2]"])

            paths = [("cli", cli), ("wheel", wheel), ("spark", spark)]
            seconds = {key: [] for key, _ in paths}
            for i in range(args.rounds):
                for key, run in paths[i % 3:] + paths[: i % 3]:
                    seconds[key].append(run(i))
            c, w, sp = (rate(rows, seconds[k]) for k in ("cli", "wheel", "spark"))
            shown = lambda r: f"{r[0]:,.0f} ({r[1]:,.0f}–{r[2]:,.0f})"
            print(
                f"| {name} | {rows:,} | {shown(c)} | {shown(w)} | {shown(sp)} "
                f"| {sp[0] / c[0]:.2f} | {sp[0] / w[0]:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
