"""Leak-proof scaling: a scaler is fit on samples up to an explicit cut and refuses anything later.

`WindowScaler.fit(train, fit_end)` raises `LeakageError` if any training sample is dated after `fit_end`, and fits
only on the feature rows that the training windows cover (all of them on or before `fit_end`). Robust statistics
(median and inter-quartile range) keep a few crash days from setting the scale; values are clipped to +/-`clip`.

Both fitting and transforming stream: the statistics are computed one feature column at a time over the training
rows (peak: one float64 column, not a float64 copy of the table), and `transform_rows` scales blocks of rows into a
preallocated float32 result. The numbers are those of the whole-matrix formulas (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from trendcast.errors import LeakageError, ModelError
from trendcast.features.windows import WindowSet

TRANSFORM_BLOCK_ROWS = 65_536  # rows scaled per step: a few MB of float64 whatever the table's size


def column_statistics(rows: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(25th percentile, median, 75th percentile, std) of each column of `rows[used]`, as float64.

    One column at a time: only one float64 column is ever held. The percentiles equal `np.percentile(values,
    [25, 50, 75], axis=0)` exactly. The std is `np.std` of each contiguous column (pairwise summation), which can
    differ in the last bit from `values.std(axis=0)` over a 2-D matrix (row-by-row summation)."""
    n_features = rows.shape[1]
    stats = np.empty((4, n_features), dtype=np.float64)
    for j in range(n_features):
        column = rows[used, j].astype(np.float64)
        stats[:3, j] = np.percentile(column, [25, 50, 75])
        stats[3, j] = column.std()
    return stats[0], stats[1], stats[2], stats[3]


@dataclass
class WindowScaler:
    clip: float = 8.0
    center_: np.ndarray | None = field(default=None, repr=False)
    scale_: np.ndarray | None = field(default=None, repr=False)
    fit_end_: pd.Timestamp | None = None
    feature_names_: tuple[str, ...] = ()

    def fit(self, train: WindowSet, fit_end: pd.Timestamp | str) -> WindowScaler:
        cut = pd.Timestamp(fit_end)
        if len(train) == 0:
            raise ModelError("cannot fit a scaler on zero training samples")
        latest = pd.Timestamp(train.dates.max())
        if latest > cut:
            raise LeakageError(
                f"scaler fit refused: a training sample is dated {latest.date()}, after the cut {cut.date()}"
            )
        rows = train.rows_used()
        if pd.Timestamp(train.row_dates[rows].max()) > cut:  # pragma: no cover - implied by the check above
            raise LeakageError("scaler fit refused: a window row lies after the cut")
        q25, median, q75, std = column_statistics(train.rows, rows)
        iqr = q75 - q25
        self.center_ = median
        self.scale_ = np.where(iqr > 1e-12, iqr / 1.349, np.where(std > 1e-12, std, 1.0))
        self.fit_end_ = cut
        self.feature_names_ = train.feature_names
        return self

    def transform_rows(self, rows: np.ndarray, block: int = TRANSFORM_BLOCK_ROWS) -> np.ndarray:
        """(rows - center) / scale clipped to +/-clip, as float32, computed in float64 `block` rows at a time."""
        if self.center_ is None or self.scale_ is None:
            raise ModelError("scaler is not fitted; call fit() first")
        out = np.empty(rows.shape, dtype=np.float32)
        for start in range(0, len(rows), block):
            scaled = (rows[start : start + block].astype(np.float64) - self.center_) / self.scale_
            out[start : start + block] = np.clip(scaled, -self.clip, self.clip)
        return out

    def transform(self, data: WindowSet) -> WindowSet:
        if data.feature_names != self.feature_names_:
            raise ModelError("scaler was fit on different features than the data has")
        return replace(data, rows=self.transform_rows(data.rows))

    def to_dict(self) -> dict[str, Any]:
        if self.center_ is None or self.scale_ is None or self.fit_end_ is None:
            raise ModelError("scaler is not fitted")
        return {
            "clip": self.clip,
            "center": self.center_.tolist(),
            "scale": self.scale_.tolist(),
            "fit_end": self.fit_end_.isoformat(),
            "feature_names": list(self.feature_names_),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowScaler:
        return cls(
            clip=float(data["clip"]),
            center_=np.asarray(data["center"], dtype=np.float64),
            scale_=np.asarray(data["scale"], dtype=np.float64),
            fit_end_=pd.Timestamp(data["fit_end"]),
            feature_names_=tuple(data["feature_names"]),
        )
