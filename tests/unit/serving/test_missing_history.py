"""`missing` in the 422 for too little history counts the indicators' warm-up: after that many more trading days,
the same request succeeds (and not one day earlier)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.unit.serving.support import fit_tiny_model, tiny_bars
from trendcast.data.store import BarStore
from trendcast.errors import InsufficientHistoryError
from trendcast.features.feature_set import warmup_bars
from trendcast.features.indicators import resolve
from trendcast.models.base import DirectionModel
from trendcast.serving.inference import ticker_window


@pytest.fixture(scope="module")
def model() -> DirectionModel:
    return fit_tiny_model()


def _as_of_after(store: BarStore, bars: int, model: DirectionModel) -> int:
    """`missing` for a request whose as_of is the `bars`-th stored bar (0 when it succeeds)."""
    last = store.load(["SIG000"])["date"].iloc[bars - 1]
    try:
        ticker_window(store, "SIG000", date.fromisoformat(str(last.date())), model)
    except InsufficientHistoryError as exc:
        return exc.missing
    return 0


@pytest.mark.parametrize("have", [1, 3, 10, 14, 16, 18])
def test_missing_days_are_exactly_the_days_still_needed(tmp_path: Path, model: DirectionModel, have: int) -> None:
    store = BarStore(f"sqlite:///{tmp_path / 'bars.db'}")
    store.upsert(tiny_bars(n_days=80).query("ticker == 'SIG000'"))
    missing = _as_of_after(store, have, model)
    assert missing > 0
    assert _as_of_after(store, have + missing, model) == 0  # `missing` more days: the request works
    assert _as_of_after(store, have + missing - 1, model) == 1  # one day fewer: still one missing
    store.close()


def test_no_bars_at_all_need_the_warm_up_and_the_window(tmp_path: Path, model: DirectionModel) -> None:
    store = BarStore(f"sqlite:///{tmp_path / 'bars.db'}")
    store.upsert(tiny_bars(n_days=80))
    with pytest.raises(InsufficientHistoryError) as info:
        ticker_window(store, "SIG000", date(2014, 1, 1), model)
    warmup = warmup_bars(resolve(list(model.feature_names)))
    assert info.value.missing == warmup + model.window
    assert (info.value.needed, info.value.available) == (model.window, 0)
    store.close()


def test_warm_up_of_the_whole_catalog_matches_real_prices() -> None:
    """The bundled AAPL history has its first complete feature row after exactly `warmup_bars` bars."""
    import numpy as np

    from trendcast.data.sources import BundledSource
    from trendcast.features.feature_set import compute_features

    bars = BundledSource().load(["AAPL"]).sort_values("date").reset_index(drop=True)
    indicators = resolve(None)
    finite = np.isfinite(compute_features(bars, indicators).to_numpy()).all(axis=1)
    assert int(np.argmax(finite)) == warmup_bars(indicators)
