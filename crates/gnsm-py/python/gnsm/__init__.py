"""Anomaly detection in categorical and mixed tables with Gumbel Noise Score Matching.

``GNSM`` is a PyOD-style detector: ``fit`` on a pandas DataFrame or a pyarrow Table of
(mostly) normal rows, then ``decision_function`` (higher = more anomalous), ``p_values``,
``predict`` and ``explain`` on new rows. The engine is the Rust ``gnsm`` library; models
are the same files the ``gnsm`` command writes and reads.

>>> import pandas as pd, gnsm
>>> df = pd.read_csv("data/cmc.csv")                            # doctest: +SKIP
>>> det = gnsm.GNSM(steps=300, seed=0).fit(df.drop(columns="label"), y=df["label"])  # doctest: +SKIP
>>> det.decision_function(df.drop(columns="label"))[:3]         # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Iterable, Optional

import numpy as np
import pyarrow as pa

from ._gnsm import Detector as _Detector
from ._gnsm import GnsmError, __version__, resolve_config

__all__ = ["GNSM", "GnsmError", "__version__"]

# The column a label `y` travels in; refused as a user's column name.
_LABEL = "__gnsm_label__"

# Keyword arguments of the configuration (the command line's settings, same names).
_CONFIG_KEYS = frozenset(
    {
        "preset",
        "config",
        "seed",
        "steps",
        "max_minutes",
        "width",
        "depth",
        "batch_size",
        "lr",
        "denoise",
        "components",
        "continuous",
        "categorical",
        "ignored",
        "missing_values",
        "impute_mean",
        "unseen",
        "max_categories",
        "calibration_fraction",
        "sample",
    }
)


def _arrow_table(X: Any) -> pa.Table:
    """X as a pyarrow Table: a Table, a RecordBatch, a pandas DataFrame, or anything with
    the Arrow C stream interface (polars, DuckDB results)."""
    if isinstance(X, pa.Table):
        return X
    if isinstance(X, pa.RecordBatch):
        return pa.Table.from_batches([X])
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        if not all(isinstance(c, str) for c in X.columns):
            raise GnsmError(
                "X: every column needs a string name (got "
                f"{[c for c in X.columns if not isinstance(c, str)][:3]!r})"
            )
        try:
            return pa.Table.from_pandas(X, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise GnsmError(f"X: cannot be read as a table: {e}") from e
    if hasattr(X, "__arrow_c_stream__"):
        return pa.table(X)
    raise TypeError(
        f"X must be a pandas DataFrame or a pyarrow Table, not {type(X).__name__}"
    )


def _ipc(table: pa.Table) -> bytes:
    """The table as an Arrow IPC stream (what the engine reads)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _labels(y: Any, rows: int) -> pa.Array:
    """y as 0/1 (1 = anomalous), checked: one per row, every value 0 or 1."""
    values = np.asarray(y)
    if values.ndim != 1 or len(values) != rows:
        raise GnsmError(f"y: expected {rows} labels (one per row of X), got shape {values.shape}")
    if values.dtype == bool:
        values = values.astype(np.int8)
    try:
        as_int = values.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise GnsmError(f"y: labels must be 0 (normal) or 1 (anomalous): {e}") from e
    bad = ~np.isin(as_int, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise GnsmError(f"y: labels must be 0 (normal) or 1 (anomalous); row {i} is {values[i].item()!r}")
    return pa.array(as_int.astype(np.int8))


class GNSM:
    """The GNSM anomaly detector.

    Parameters are the ``gnsm fit`` command's settings under the same names: ``preset``
    (``"default"``, the library's detector, or ``"paper"``, MSMA on score norms), ``seed``,
    ``steps``, ``max_minutes``, ``width``, ``depth``, ``batch_size``, ``lr``, ``denoise``,
    ``components`` (paper preset), the schema's ``continuous``, ``categorical``, ``ignored``,
    ``missing_values``, ``impute_mean``, ``unseen``, ``max_categories``,
    ``calibration_fraction`` and ``sample`` (train on a seeded sample of that many rows); ``config`` takes a mapping in the JSON form of ``GnsmConfig``
    merged over the preset. An unknown keyword or a bad value raises ``GnsmError``.

    The decision rule is ``alpha`` (flag rows whose conformal p-value is at most alpha; the
    default, 0.01) or ``contamination`` (flag about that share of inliers, PyOD's meaning,
    measured on held-out inliers).

    After ``fit``: ``decision_scores_`` (the scores of the rows fitted on),
    ``threshold_`` and ``labels_`` (1 = anomalous), as PyOD's detectors have them.
    """

    def __init__(
        self,
        preset: str = "default",
        *,
        contamination: Optional[float] = None,
        alpha: Optional[float] = None,
        **config: Any,
    ) -> None:
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            raise GnsmError(
                f"GNSM(...): unknown keyword {unknown[0]!r}; known: {', '.join(sorted(_CONFIG_KEYS - {'preset'}))}"
            )
        if contamination is not None and alpha is not None:
            raise GnsmError("give alpha or contamination, not both")
        self.preset = preset
        self.contamination = contamination
        self.alpha = alpha
        self._config = dict(config)
        self._detector: Optional[_Detector] = None
        # Checked now, before any data: a bad setting is an error here, not after a fit.
        resolve_config(self._options())

    # -- scikit-learn's parameter protocol ------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments (scikit-learn's protocol)."""
        return {"preset": self.preset, "contamination": self.contamination, "alpha": self.alpha, **self._config}

    def set_params(self, **params: Any) -> "GNSM":
        """Change constructor arguments (scikit-learn's protocol); refits are needed after."""
        merged = {**self.get_params(), **params}
        self.__init__(**merged)
        return self

    def _options(self) -> str:
        options = {"preset": self.preset, **self._config}
        return json.dumps({k: v for k, v in options.items() if v is not None})

    @property
    def config_(self) -> dict:
        """The full configuration of the fitted detector (the JSON of ``GnsmConfig``)."""
        return json.loads(self._fitted().config())

    def _fitted(self) -> _Detector:
        if self._detector is None:
            raise GnsmError("this GNSM is not fitted yet: call fit(X) or GNSM.load(path)")
        return self._detector

    # -- fitting and scoring ----------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "GNSM":
        """Fit on the rows of X. With ``y`` (0 = normal, 1 = anomalous, one per row) the
        anomalous rows are left out of the fit, as ``gnsm fit --label`` does; without it
        every row is taken as normal. Returns self."""
        table = _arrow_table(X)
        label = None
        if y is not None:
            if _LABEL in table.column_names:
                raise GnsmError(f"X: the column name {_LABEL!r} is reserved")
            table = table.append_column(_LABEL, _labels(y, table.num_rows))
            label = _LABEL
        self._detector, summary = _Detector.fit(_ipc(table), self._options(), label)
        self.fit_summary_ = json.loads(summary)
        self.decision_scores_ = self.decision_function(table)
        self._set_decisions()
        return self

    def _set_decisions(self) -> None:
        detector = self._fitted()
        if detector.calibration_rows() > 0:
            self.threshold_ = detector.threshold(self.alpha, self.contamination)
        else:
            self.threshold_ = float("nan")
        if hasattr(self, "decision_scores_"):
            self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores of the rows of X (higher = more anomalous), float64."""
        raw = self._fitted().scores(_ipc(_arrow_table(X)))
        return np.frombuffer(raw, dtype="<f8").copy()

    def p_values(self, X: Any) -> np.ndarray:
        """Conformal p-values of the rows of X against held-out inliers (small =
        anomalous; on normal rows ``P(p <= a) <= a``)."""
        raw = self._fitted().p_values(_ipc(_arrow_table(X)))
        return np.frombuffer(raw, dtype="<f8").copy()

    def predict(self, X: Any) -> np.ndarray:
        """1 for rows the decision rule flags as anomalous, 0 for the others."""
        threshold = self._fitted().threshold(self.alpha, self.contamination)
        return (self.decision_function(X) > threshold).astype(np.int64)

    def decisions(self, X: Any) -> dict:
        """One scoring pass over the rows of X: ``{"score", "p_value", "is_anomaly"}`` as
        NumPy arrays (what ``gnsm score`` writes; p-values are NaN and nothing is flagged
        for a detector without calibration rows)."""
        scores, p, threshold = self._fitted().decisions(
            _ipc(_arrow_table(X)), self.alpha, self.contamination
        )
        scores = np.frombuffer(scores, dtype="<f8").copy()
        return {
            "score": scores,
            "p_value": np.frombuffer(p, dtype="<f8").copy(),
            "is_anomaly": scores > threshold,
        }

    def explain(self, X: Any, top: int = 3) -> list:
        """Per row: ``{"row", "line", "score", "contributions"}``, the contributions being
        the ``top`` columns with the largest share of the score, each
        ``{"feature", "value", "expected", "share", "unseen"}``."""
        if not isinstance(top, int) or top < 1:
            raise GnsmError(f"top = {top!r}: must be a positive integer")
        return json.loads(self._fitted().explain(_ipc(_arrow_table(X)), top))

    @property
    def columns_(self) -> list:
        """The fitted columns: ``(name, kind, categories)``."""
        return self._fitted().columns()

    # -- files and pickling -----------------------------------------------------------
    def save(self, path: "os.PathLike[str] | str") -> None:
        """Write the model to one checksummed file (atomically), the format ``gnsm fit``
        writes; ``gnsm score`` reads it."""
        self._fitted().save(os.fspath(path))

    @classmethod
    def load(
        cls,
        path: "os.PathLike[str] | str",
        *,
        contamination: Optional[float] = None,
        alpha: Optional[float] = None,
    ) -> "GNSM":
        """A detector from a model file (``save`` or ``gnsm fit``), verified before use."""
        detector = _Detector.load(os.fspath(path))
        self = cls.__new__(cls)
        self.preset = None
        self.contamination = contamination
        self.alpha = alpha
        self._config = {"config": json.loads(detector.config())}
        self._detector = detector
        self._set_decisions()
        return self

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k != "_detector"}
        if self._detector is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.gnsm")
                self._detector.save(path)
                with open(path, "rb") as f:
                    state["_model_bytes"] = f.read()
        return state

    def __setstate__(self, state: dict) -> None:
        model = state.pop("_model_bytes", None)
        self.__dict__.update(state)
        self._detector = None
        if model is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.gnsm")
                with open(path, "wb") as f:
                    f.write(model)
                self._detector = _Detector.load(path)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        return f"GNSM({params})"
