"""Score a Parquet dataset on Spark with a saved GNSM model.

    python examples/spark/score.py MODEL INPUT OUTPUT [--keep id,...] \
        [--alpha A | --contamination C] [--master local[2]] [--batch-rows 10000]

INPUT is a Parquet file or a directory of them; OUTPUT, a directory that must not exist yet
(Spark's `errorifexists`: nothing is overwritten), receives Parquet files of the `--keep`
columns followed by `score`, `p_value` and `is_anomaly` — the columns `gnsm score` writes.

How it runs: the model file's bytes are broadcast to the executors once; each task loads the
model once (verified, as `gnsm score` does) and scores its partition with `mapInPandas`,
Arrow batch by Arrow batch, through the `gnsm` wheel (which must be installed on the
executors' Python). Scores do not depend on how rows are partitioned or batched: they equal
single-process scoring of the same rows bit for bit (crates/gnsm-py/tests/test_spark.py).

Partitioning and memory: a task holds the model (4·(width²·depth + width·one-hot width)
bytes, about 2.5 MB for the default width-256, 4-block network on a 400-wide table), one
Arrow batch of input (`--batch-rows`, Spark's `spark.sql.execution.arrow.maxRecordsPerBatch`,
default 10,000 rows) and its encoded one-hot rows, scored 2,048 at a time (2,048 × one-hot
width × 4 bytes, about 3 MB, plus the network's activations). A few tens of MB per task
whatever the partition size, so the partitioning can follow the input files; raise
`--batch-rows` to cut the per-batch overhead on narrow tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Iterator, Optional


def _detector(model: bytes, alpha: Optional[float], contamination: Optional[float]):
    """A GNSM from a model file's bytes (GNSM.load verifies the checksum)."""
    import gnsm

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.gnsm")
        with open(path, "wb") as f:
            f.write(model)
        return gnsm.GNSM.load(path, alpha=alpha, contamination=contamination)


def score_dataframe(spark, df, model: bytes, keep, alpha=None, contamination=None):
    """`df` scored: the `keep` columns, then score, p_value and is_anomaly."""
    from pyspark.sql.types import BooleanType, DoubleType, StructField, StructType

    features = [name for name, _, _ in _detector(model, alpha, contamination).columns_]
    missing = [c for c in features + list(keep) if c not in df.columns]
    if missing:
        raise SystemExit(f"the input lacks column(s) {', '.join(missing)} (the model's or --keep)")
    shared = spark.sparkContext.broadcast(model)
    schema = StructType(
        [df.schema[c] for c in keep]
        + [
            StructField("score", DoubleType(), False),
            StructField("p_value", DoubleType(), True),
            StructField("is_anomaly", BooleanType(), False),
        ]
    )

    def score_partition(batches: Iterator) -> Iterator:
        detector = _detector(shared.value, alpha, contamination)
        for batch in batches:
            decided = detector.decisions(batch[features])
            out = batch[list(keep)].copy()
            for column in ("score", "p_value", "is_anomaly"):
                out[column] = decided[column]
            yield out

    return df.mapInPandas(score_partition, schema)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--keep", default="", help="input columns to copy to the output, comma-separated")
    rule = parser.add_mutually_exclusive_group()
    rule.add_argument("--alpha", type=float)
    rule.add_argument("--contamination", type=float)
    parser.add_argument("--master", default=None, help="Spark master (default: spark-submit's)")
    parser.add_argument("--batch-rows", type=int, default=10_000)
    args = parser.parse_args(argv)

    if os.path.exists(args.output):
        raise SystemExit(f"{args.output}: exists; name a new directory (nothing is overwritten)")
    with open(args.model, "rb") as f:
        model = f.read()
    _detector(model, args.alpha, args.contamination)  # a bad model fails here, not in a task

    from pyspark.sql import SparkSession

    # The executors run this interpreter (and its gnsm wheel) unless told otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("gnsm-score").config(
        "spark.sql.execution.arrow.maxRecordsPerBatch", str(args.batch_rows)
    )
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        keep = [c for c in args.keep.split(",") if c]
        df = spark.read.parquet(args.input)
        scored = score_dataframe(spark, df, model, keep, args.alpha, args.contamination)
        scored.write.mode("errorifexists").parquet(args.output)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
