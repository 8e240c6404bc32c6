"""The per-worker feature cache answers exactly what `ticker_window` answers, for every `as_of`, and never serves a
matrix older than the store's bars."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.unit.serving.support import TICKERS, fit_tiny_model, tiny_bars
from trendcast.data.store import BarStore
from trendcast.errors import InsufficientHistoryError, MissingPricesError
from trendcast.features.feature_set import compute_features
from trendcast.features.indicators import resolve
from trendcast.models.base import DirectionModel
from trendcast.serving.inference import TickerWindow, ticker_window
from trendcast.serving.ticker_cache import SqliteVersion, TickerFeatureCache, TickerFeatures, bar_stamp

TICKER = TICKERS[0]
Answer = TickerWindow | tuple[int, int, int, str]  # a window, or the numbers and message of InsufficientHistoryError


@pytest.fixture(scope="module")
def model() -> DirectionModel:
    return fit_tiny_model()


@pytest.fixture(params=["data_version", "bar_stamp"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BarStore]:
    """A SQLite store, its changes seen through `PRAGMA data_version`, or as on other databases: by `bar_stamp`."""
    if request.param == "bar_stamp":
        monkeypatch.setattr(SqliteVersion, "of", classmethod(lambda cls, store: None))
    result = BarStore(f"sqlite:///{tmp_path / 'bars.db'}")
    yield result
    result.close()


def answer(fn: Callable[..., TickerWindow], *args: object) -> Answer:
    """The window, or the InsufficientHistoryError's numbers and message."""
    try:
        return fn(*args)
    except InsufficientHistoryError as exc:
        return exc.needed, exc.available, exc.missing, str(exc)


def assert_same(cached: Answer, direct: Answer) -> None:
    if isinstance(direct, tuple):
        assert cached == direct
        return
    assert isinstance(cached, TickerWindow)
    np.testing.assert_array_equal(cached.scaled, direct.scaled)
    np.testing.assert_array_equal(cached.unscaled, direct.unscaled)
    assert cached.scaled.dtype == direct.scaled.dtype and cached.unscaled.dtype == direct.unscaled.dtype
    assert (cached.ticker, cached.dates, cached.window_end, cached.closed) == (
        direct.ticker,
        direct.dates,
        direct.window_end,
        direct.closed,
    )


def as_of_days(bars: pd.DataFrame) -> list[date | None]:
    """Every stored day, the weekend days between them, days before the first bar, and no as_of at all."""
    first, last = bars["date"].min().date(), bars["date"].max().date()
    days = [first + timedelta(days=i) for i in range(-3, (last - first).days + 4)]
    return [*days, None]


def test_every_as_of_gives_what_ticker_window_gives(store: BarStore, model: DirectionModel) -> None:
    bars = tiny_bars(n_days=120)
    store.upsert(bars)
    cache = TickerFeatureCache(max_tickers=4)
    ticker_bars = bars[bars["ticker"] == TICKER]
    outcomes = {"window": 0, "too little history": 0}
    for as_of in as_of_days(ticker_bars):
        direct = answer(ticker_window, store, TICKER, as_of, model)
        assert_same(answer(cache.window, store, TICKER, as_of, model, "v1"), direct)
        outcomes["too little history" if isinstance(direct, tuple) else "window"] += 1
    assert min(outcomes.values()) > 10  # both sides of the first usable day were compared
    assert len(cache) == 1  # one matrix served every request


def test_first_usable_day_and_the_day_before(store: BarStore, model: DirectionModel) -> None:
    bars = tiny_bars(n_days=80)
    store.upsert(bars)
    cache = TickerFeatureCache(max_tickers=4)
    dates = [d.date() for d in bars[bars["ticker"] == TICKER]["date"]]
    first_usable = next(d for d in dates if not isinstance(answer(ticker_window, store, TICKER, d, model), tuple))
    before = dates[dates.index(first_usable) - 1]
    with pytest.raises(InsufficientHistoryError) as info:
        cache.window(store, TICKER, before, model, "v1")
    assert (info.value.available, info.value.missing) == (model.window - 1, 1)
    assert cache.window(store, TICKER, first_usable, model, "v1").window_end == first_usable


def test_later_bars_leave_earlier_windows_alone_and_refresh_the_matrix(store: BarStore, model: DirectionModel) -> None:
    bars = tiny_bars(n_days=160)
    ticker_bars = bars[bars["ticker"] == TICKER]
    cut = ticker_bars["date"].iloc[99].date()
    store.upsert(ticker_bars[ticker_bars["date"].dt.date <= cut])
    cache = TickerFeatureCache(max_tickers=4)
    days = [d.date() for d in ticker_bars["date"].iloc[40:100:7]]
    before = {d: cache.window(store, TICKER, d, model, "v1") for d in days}
    latest = cache.window(store, TICKER, None, model, "v1")
    assert latest.window_end == cut and not latest.closed

    store.upsert(ticker_bars[ticker_bars["date"].dt.date > cut])  # the next 60 bars arrive
    for day, window in before.items():
        again = cache.window(store, TICKER, day, model, "v1")
        assert_same(again, window)  # bars after a window's end never change it...
        assert again.closed  # ...and it is now closed
    new_last = ticker_bars["date"].iloc[-1].date()
    assert cache.window(store, TICKER, None, model, "v1").window_end == new_last  # the matrix was rebuilt
    assert_same(cache.window(store, TICKER, new_last, model, "v1"), ticker_window(store, TICKER, new_last, model))


def test_a_backfilled_bar_refreshes_the_matrix(store: BarStore, model: DirectionModel) -> None:
    ticker_bars = tiny_bars(n_days=90).query("ticker == @TICKER")
    gap = ticker_bars.index[60]
    store.upsert(ticker_bars.drop(index=gap))
    cache = TickerFeatureCache(max_tickers=4)
    as_of = ticker_bars["date"].iloc[62].date()  # its window covers the gap
    without = cache.window(store, TICKER, as_of, model, "v1")
    store.upsert(ticker_bars.loc[[gap]])  # the latest date is unchanged, the count is not
    with_gap_filled = cache.window(store, TICKER, as_of, model, "v1")
    assert ticker_bars.loc[gap, "date"].date() in with_gap_filled.dates
    assert ticker_bars.loc[gap, "date"].date() not in without.dates
    assert_same(with_gap_filled, ticker_window(store, TICKER, as_of, model))


def test_a_price_corrected_in_place_refreshes_the_matrix_on_sqlite(tmp_path: Path, model: DirectionModel) -> None:
    store = BarStore(f"sqlite:///{tmp_path / 'bars.db'}")
    ticker_bars = tiny_bars(n_days=60).query("ticker == @TICKER").reset_index(drop=True)
    store.upsert(ticker_bars)
    cache = TickerFeatureCache(max_tickers=4)
    before = cache.window(store, TICKER, None, model, "v1")
    corrected = ticker_bars.copy()
    corrected.loc[len(corrected) - 2, ["open", "high", "low", "close", "adj_close"]] *= 1.05  # same dates and count
    store.upsert(corrected)
    after = cache.window(store, TICKER, None, model, "v1")
    assert not np.array_equal(after.unscaled, before.unscaled)
    assert_same(after, ticker_window(store, TICKER, None, model))
    cache.close()
    store.close()


def test_bounded_by_ticker_count_and_keyed_by_model_version(store: BarStore, model: DirectionModel) -> None:
    store.upsert(tiny_bars(n_days=80))
    cache = TickerFeatureCache(max_tickers=1)
    for ticker in [*TICKERS, *TICKERS]:
        assert_same(cache.window(store, ticker, None, model, "v1"), ticker_window(store, ticker, None, model))
        assert len(cache) == 1
    other = fit_tiny_model(seed=1)  # another version: its own matrix, its own scaler
    assert_same(cache.window(store, TICKER, None, other, "v2"), ticker_window(store, TICKER, None, other))


def test_unknown_ticker_and_cache_off(store: BarStore, model: DirectionModel) -> None:
    store.upsert(tiny_bars(n_days=80))
    with pytest.raises(MissingPricesError, match="SIG000"):
        TickerFeatureCache(max_tickers=4).window(store, "SIG00", None, model, "v1")
    off = TickerFeatureCache(max_tickers=0)
    assert_same(off.window(store, TICKER, None, model, "v1"), ticker_window(store, TICKER, None, model))
    assert len(off) == 0
    assert bar_stamp(store, "NOPE") == (0, None)


def test_concurrent_first_requests_compute_the_matrix_once(
    store: BarStore, model: DirectionModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.upsert(tiny_bars(n_days=80))
    cache = TickerFeatureCache(max_tickers=4)
    computed: list[str] = []
    original = TickerFeatures.compute

    def counting(ticker: str, bars: pd.DataFrame, model: DirectionModel) -> TickerFeatures:
        computed.append(ticker)
        return original(ticker, bars, model)

    monkeypatch.setattr(TickerFeatures, "compute", staticmethod(counting))
    results: list[TickerWindow] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.window(store, TICKER, None, model, "v1")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert computed == [TICKER] and len(results) == 8


def test_every_catalog_indicator_is_causal() -> None:
    """What the cache rests on: features over all bars, cut at a row, equal the features of the bars up to that row."""
    bars = tiny_bars(n_days=400).query("ticker == @TICKER").reset_index(drop=True)
    indicators = resolve(None)
    full = compute_features(bars, indicators).to_numpy()
    for end in (1, 30, 61, 120, 250, 399):
        cut = compute_features(bars.iloc[:end], indicators).to_numpy()
        np.testing.assert_array_equal(full[:end], cut)  # NaN == NaN here, bit-for-bit elsewhere
