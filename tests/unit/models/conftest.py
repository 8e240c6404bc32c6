"""Small window sets for the model tests (built once per session; WindowSets are frozen and never mutated)."""

from __future__ import annotations

import pytest

from tests.unit.models._data import FEATURES, WINDOW, split_by_date
from trendcast.config import LabelConfig
from trendcast.data.synthetic import planted_signal_bars
from trendcast.features.windows import WindowSet, build_window_set


@pytest.fixture(scope="session")
def small_set() -> WindowSet:
    """3 tickers x 260 days of planted-signal bars, 5 features, window 10 (~700 samples)."""
    bars = planted_signal_bars(n_tickers=3, n_days=260, seed=5)
    return build_window_set(bars, window=WINDOW, labels=LabelConfig(), features=FEATURES)


@pytest.fixture(scope="session")
def small_split(small_set: WindowSet) -> tuple[WindowSet, WindowSet]:
    """(train, test): the first 75% of dates, a purge gap of the horizon, then the rest."""
    return split_by_date(small_set, 0.75, gap=small_set.horizon)


@pytest.fixture(scope="session")
def planted_split() -> tuple[WindowSet, WindowSet]:
    """6 tickers x 800 days; train on the first 70% of dates, test on the rest after a purge gap of the horizon."""
    bars = planted_signal_bars(n_tickers=6, n_days=800, seed=3)
    data = build_window_set(bars, window=WINDOW, labels=LabelConfig(), features=FEATURES)
    return split_by_date(data, 0.7, gap=data.horizon)
