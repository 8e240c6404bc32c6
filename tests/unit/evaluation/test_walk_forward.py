"""Purged walk-forward: splits without any model, and the guarantee that scalers never see test samples."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from trendcast.config import ExperimentConfig, LabelConfig, WalkForwardConfig
from trendcast.data.synthetic import random_walk_bars
from trendcast.errors import ConfigError, LeakageError
from trendcast.evaluation.walk_forward import make_folds, run_walk_forward
from trendcast.evaluation.walk_forward_splits import check_purged, walk_forward_splits
from trendcast.features import scaling
from trendcast.features.windows import build_window_set
from trendcast.models.registry import create_model

CALENDAR = pd.bdate_range("2020-01-01", periods=200).to_numpy()


@pytest.mark.parametrize("horizon", [1, 3, 5])
@pytest.mark.parametrize("scheme", ["expanding", "rolling"])
def test_splits_are_ordered_purged_and_cover_the_tail(horizon: int, scheme: str) -> None:
    folds = walk_forward_splits(np.repeat(CALENDAR, 3), folds=5, horizon=horizon, embargo=2, scheme=scheme)
    cal = list(pd.DatetimeIndex(CALENDAR))
    assert len(folds) == 5
    assert folds[0].test_start == cal[80]  # min_train_fraction 0.4
    assert folds[-1].test_end == cal[-1]
    for fold in folds:
        gap = cal.index(fold.test_start) - cal.index(fold.train_end) - 1
        assert gap == horizon + 2  # purge = horizon, plus the embargo
        assert fold.train_start <= fold.train_end < fold.test_start <= fold.test_end
    for a, b in itertools.pairwise(folds):
        assert cal.index(b.test_start) == cal.index(a.test_end) + 1
    lengths = [cal.index(f.train_end) - cal.index(f.train_start) for f in folds]
    if scheme == "expanding":
        assert all(f.train_start == cal[0] for f in folds)
        assert lengths == sorted(lengths)
    else:
        assert len(set(lengths)) == 1


def test_too_few_days_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="fewer folds"):
        walk_forward_splits(CALENDAR[:6], folds=5)


def test_check_purged_raises_on_overlap() -> None:
    fold = walk_forward_splits(CALENDAR, folds=2, horizon=5)[0]
    leaked = np.array([fold.test_start.to_datetime64() - np.timedelta64(1, "D")])
    with pytest.raises(LeakageError, match="required"):
        check_purged(fold, CALENDAR, leaked, np.array([fold.test_start.to_datetime64()]))


def test_scaler_never_sees_a_test_sample_and_purge_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    bars = random_walk_bars(n_tickers=3, n_days=260, seed=11)
    config = ExperimentConfig(window=10, labels=LabelConfig(horizon=3), walk_forward=WalkForwardConfig(folds=4))
    ws = build_window_set(bars, window=10, labels=config.labels)
    seen: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    original = scaling.WindowScaler.fit

    def spy(self: scaling.WindowScaler, train: object, fit_end: object) -> scaling.WindowScaler:
        rows = train.rows_used()  # type: ignore[attr-defined]
        seen.append((pd.Timestamp(train.row_dates[rows].max()), pd.Timestamp(fit_end)))  # type: ignore[attr-defined]
        return original(self, train, fit_end)  # type: ignore[arg-type]

    monkeypatch.setattr(scaling.WindowScaler, "fit", spy)
    folds = make_folds(ws, config)
    result = run_walk_forward(ws, ["logreg"], config, progress=False, factory=create_model)
    assert len(seen) == len(folds)
    cal = list(pd.DatetimeIndex(np.unique(ws.dates)))
    for (latest_row, fit_end), fold in zip(seen, folds, strict=True):
        assert latest_row <= fit_end <= fold.train_end
        assert cal.index(fold.test_start) - cal.index(fit_end) - 1 >= 3  # purge >= horizon
    preds = result.predictions["logreg"]
    for fold in folds:
        part = preds[preds["fold"] == fold.index]
        assert part["date"].min() >= fold.test_start and part["date"].max() <= fold.test_end
    assert not preds.duplicated(["ticker", "date"]).any()
