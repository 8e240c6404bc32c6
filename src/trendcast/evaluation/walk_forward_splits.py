"""Purged walk-forward splits of a shared trading calendar (a pure function; no model, no data).

For K folds over the sorted unique sample dates d[0..n-1]:
- the first test fold starts at s_0 = round(min_train_fraction * n); the days after it are cut into K equal,
  consecutive test blocks [s_k, e_k];
- **purge**: a training sample at day i carries a label over days i+1..i+horizon, so training stops at
  s_k - purge - 1 (purge >= horizon): no training label overlaps a test day;
- **embargo**: `embargo` more days are dropped before the test block (extra safety for slow-decaying features);
- **expanding** (default): training starts at d[0]; **rolling**: training keeps the first fold's length.

All tickers share the split (one calendar), so no ticker's future lands in another ticker's training fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from trendcast.errors import ConfigError, LeakageError


@dataclass(frozen=True)
class Fold:
    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    purge_days: int
    embargo_days: int

    def train_mask(self, dates: np.ndarray) -> np.ndarray:
        return (dates >= self.train_start.to_datetime64()) & (dates <= self.train_end.to_datetime64())

    def test_mask(self, dates: np.ndarray) -> np.ndarray:
        return (dates >= self.test_start.to_datetime64()) & (dates <= self.test_end.to_datetime64())

    def as_dict(self) -> dict[str, object]:
        return {
            "fold": self.index,
            "train_start": str(self.train_start.date()),
            "train_end": str(self.train_end.date()),
            "test_start": str(self.test_start.date()),
            "test_end": str(self.test_end.date()),
            "purge_days": self.purge_days,
            "embargo_days": self.embargo_days,
        }


def walk_forward_splits(
    dates: np.ndarray,
    *,
    folds: int = 5,
    horizon: int = 1,
    purge: int | None = None,
    embargo: int = 0,
    min_train_fraction: float = 0.4,
    scheme: Literal["expanding", "rolling"] = "expanding",
) -> list[Fold]:
    """Purged walk-forward folds over the unique values of `dates` (any order, duplicates allowed)."""
    calendar = np.unique(dates)
    gap = max(horizon, purge if purge is not None else horizon)
    n = len(calendar)
    first_test = round(min_train_fraction * n)
    test_days = n - first_test
    if folds < 1 or test_days < folds or first_test - gap - embargo < 2:
        raise ConfigError(
            f"cannot make {folds} folds from {n} trading days with min_train_fraction={min_train_fraction}, "
            f"purge={gap}, embargo={embargo}: use fewer folds or more history."
        )
    bounds = np.linspace(first_test, n, folds + 1).round().astype(int)
    train_length = first_test - gap - embargo
    out = []
    for k in range(folds):
        start, end = int(bounds[k]), int(bounds[k + 1]) - 1
        train_end = start - gap - embargo - 1
        train_start = 0 if scheme == "expanding" else max(0, train_end - train_length + 1)
        out.append(
            Fold(
                k,
                pd.Timestamp(calendar[train_start]),
                pd.Timestamp(calendar[train_end]),
                pd.Timestamp(calendar[start]),
                pd.Timestamp(calendar[end]),
                gap,
                embargo,
            )
        )
    return out


def check_purged(fold: Fold, calendar: np.ndarray, train_dates: np.ndarray, test_dates: np.ndarray) -> None:
    """Raise LeakageError unless at least `purge + embargo` calendar days separate train and test samples."""
    if len(train_dates) == 0 or len(test_dates) == 0:
        return
    cal = np.unique(calendar)
    last_train = int(np.searchsorted(cal, train_dates.max()))
    first_test = int(np.searchsorted(cal, test_dates.min()))
    if first_test - last_train - 1 < fold.purge_days + fold.embargo_days:
        raise LeakageError(
            f"fold {fold.index}: only {first_test - last_train - 1} days between the last training sample and the "
            f"first test sample; {fold.purge_days + fold.embargo_days} required"
        )
