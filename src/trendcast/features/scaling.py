"""Leak-proof scaling: a scaler is fit on samples up to an explicit cut and refuses anything later.

`WindowScaler.fit(train, fit_end)` raises `LeakageError` if any training sample is dated after `fit_end`, and fits
only on the feature rows that the training windows cover (all of them on or before `fit_end`). Robust statistics
(median and inter-quartile range) keep a few crash days from setting the scale; values are clipped to +/-`clip`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from trendcast.errors import LeakageError, ModelError
from trendcast.features.windows import WindowSet


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
        values = train.rows[rows].astype(np.float64)
        q25, median, q75 = np.percentile(values, [25, 50, 75], axis=0)
        iqr = q75 - q25
        std = values.std(axis=0)
        self.center_ = median
        self.scale_ = np.where(iqr > 1e-12, iqr / 1.349, np.where(std > 1e-12, std, 1.0))
        self.fit_end_ = cut
        self.feature_names_ = train.feature_names
        return self

    def transform_rows(self, rows: np.ndarray) -> np.ndarray:
        if self.center_ is None or self.scale_ is None:
            raise ModelError("scaler is not fitted; call fit() first")
        scaled = (rows.astype(np.float64) - self.center_) / self.scale_
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

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
