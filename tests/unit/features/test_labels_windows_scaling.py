"""Labels look only forward by `horizon`; windows stay inside one ticker; the scaler refuses later data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trendcast.config import LabelConfig
from trendcast.data.synthetic import random_walk_bars
from trendcast.errors import DataError, LeakageError
from trendcast.features.feature_set import compute_features
from trendcast.features.labels import (
    DOWN,
    NEUTRAL,
    NO_LABEL,
    UP,
    cross_sectional_labels,
    direction_labels,
    forward_return,
)
from trendcast.features.scaling import WindowScaler, column_statistics
from trendcast.features.windows import build_window_set


def test_fixed_band_labels() -> None:
    close = np.array([100.0, 101.0, 100.9, 99.0, 99.2])
    labels, fwd = direction_labels(close, LabelConfig(horizon=1, threshold=0.005))
    assert labels.tolist() == [UP, NEUTRAL, DOWN, NEUTRAL, NO_LABEL]
    assert np.isclose(fwd[0], 0.01)
    assert np.isnan(fwd[-1])


def test_horizon_leaves_the_last_days_unlabelled() -> None:
    close = np.linspace(100, 110, 10)
    labels, _ = direction_labels(close, LabelConfig(horizon=3, threshold=0.0))
    assert (labels[-3:] == NO_LABEL).all()
    assert (labels[:-3] == UP).all()


def test_volatility_band_uses_only_the_past() -> None:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 200)))
    config = LabelConfig(threshold_mode="volatility", vol_lookback=20)
    base, _ = direction_labels(close, config)
    changed = close.copy()
    changed[150:] *= 1.5
    after, _ = direction_labels(changed, config)
    assert (base[:149] == after[:149]).all()
    assert (base[:20] == NO_LABEL).all()


@settings(max_examples=30, deadline=None)
@given(t=st.integers(5, 80), horizon=st.integers(1, 5), seed=st.integers(0, 100))
def test_label_at_t_depends_only_on_t_to_t_plus_horizon(t: int, horizon: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 100)))
    config = LabelConfig(horizon=horizon)
    base, _ = direction_labels(close, config)
    changed = close.copy()
    changed[t + horizon + 1 :] *= rng.uniform(0.5, 1.5, len(changed[t + horizon + 1 :]))
    changed[:t] *= rng.uniform(0.5, 1.5, t)
    after, _ = direction_labels(changed, config)
    assert base[t] == after[t]


def test_cross_sectional_labels_by_hand() -> None:
    dates = np.array(["a", "a", "a", "b", "b", "b", "b", "c", "d", "d"])
    fwd = np.array([0.3, 0.1, 0.2, 0.1, np.nan, 0.2, 0.4, 0.5, -0.1, 0.2])
    # a: median 0.2 (0.2 itself ties -> Down); b: 0.2 over the three known; c: one row is its own median; d: 0.05
    expected = [UP, DOWN, DOWN, DOWN, NO_LABEL, DOWN, UP, DOWN, DOWN, UP]
    assert cross_sectional_labels(dates, fwd).tolist() == expected
    order = np.random.default_rng(0).permutation(len(dates))  # pure: the row order does not matter
    assert cross_sectional_labels(dates[order], fwd[order]).tolist() == np.array(expected)[order].tolist()
    assert (cross_sectional_labels(dates[:2], np.full(2, np.nan)) == NO_LABEL).all()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_tickers=st.integers(1, 7), n_days=st.integers(1, 12))
def test_cross_sectional_labels_equal_a_per_date_median_loop(seed: int, n_tickers: int, n_days: int) -> None:
    rng = np.random.default_rng(seed)
    dates = np.repeat(np.arange(n_days), n_tickers)
    fwd = np.round(rng.normal(0.0, 0.02, len(dates)), 2)  # rounded: ties at the median happen
    fwd[rng.random(len(dates)) < 0.2] = np.nan
    labels = cross_sectional_labels(dates, fwd)
    for day in range(n_days):
        on_day = dates == day
        known = on_day & np.isfinite(fwd)
        assert (labels[on_day & ~known] == NO_LABEL).all()
        if known.any():
            median = np.median(fwd[known])
            assert np.array_equal(labels[known], np.where(fwd[known] > median, UP, DOWN))


@settings(max_examples=30, deadline=None)
@given(t=st.integers(5, 80), horizon=st.integers(1, 5), seed=st.integers(0, 100))
def test_cross_sectional_label_at_t_ignores_prices_after_t_plus_horizon(t: int, horizon: int, seed: int) -> None:
    """No ticker's close after t + horizon (nor before t) moves the median or the label of date t."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (4, 100)), axis=1))
    changed = close.copy()
    changed[:, t + horizon + 1 :] *= rng.uniform(0.5, 1.5, changed[:, t + horizon + 1 :].shape)
    changed[:, :t] *= rng.uniform(0.5, 1.5, (4, t))
    dates = np.tile(np.arange(100), 4)

    def labels_of(prices: np.ndarray) -> np.ndarray:
        fwd = np.concatenate([forward_return(row, horizon) for row in prices])
        return cross_sectional_labels(dates, fwd).reshape(4, 100)

    assert np.array_equal(labels_of(close)[:, t], labels_of(changed)[:, t])
    assert (labels_of(close)[:, -horizon:] == NO_LABEL).all()


def test_cross_sectional_windows_use_the_median_of_every_ticker_that_day() -> None:
    """The median is over every ticker's row of the date (also those whose window is not complete yet), the band
    settings are ignored, and Neutral never occurs."""
    bars = random_walk_bars(n_tickers=5, n_days=150, seed=9)
    late = bars["ticker"] == "RW004"
    bars = bars[~late | (bars.groupby("ticker").cumcount() >= 60)]  # RW004 starts later: no windows early on
    config = LabelConfig(mode="cross_sectional", horizon=2, threshold=0.3, threshold_mode="volatility")
    ws = build_window_set(bars, window=20, labels=config, features=["ret_1", "rsi_14"])
    closes = {t: g.sort_values("date") for t, g in bars.groupby("ticker")}
    frame = pd.concat(
        [pd.DataFrame({"date": g["date"], "fwd": forward_return(g["close"].to_numpy(), 2)}) for g in closes.values()]
    )
    median = frame.dropna().groupby("date")["fwd"].median()
    expected = np.where(ws.forward_returns > median.loc[ws.dates].to_numpy(), UP, DOWN)
    assert np.array_equal(ws.labels, expected)
    assert set(np.unique(ws.labels)) == {DOWN, UP}
    assert abs(np.mean(ws.labels == UP) - 0.5) < 0.1


def test_cross_sectional_labels_need_two_tickers_except_for_live_windows() -> None:
    bars = random_walk_bars(n_tickers=1, n_days=120, seed=2)
    config = LabelConfig(mode="cross_sectional")
    with pytest.raises(DataError, match="at least two tickers"):
        build_window_set(bars, window=10, labels=config, features=["ret_1"])
    live = build_window_set(bars, window=10, labels=config, features=["ret_1"], require_label=False)
    assert len(live) > 0


def test_windows_match_feature_rows_and_stay_in_one_ticker() -> None:
    bars = random_walk_bars(n_tickers=3, n_days=150, seed=4)
    ws = build_window_set(bars, window=20, labels=LabelConfig())
    features = {t: compute_features(g) for t, g in bars.groupby("ticker")}
    x = ws.windows()
    for i in [0, len(ws) // 2, len(ws) - 1]:
        expected = features[ws.tickers[i]].loc[: ws.dates[i]].iloc[-20:].to_numpy(dtype=np.float32)
        assert np.array_equal(x[i], expected)
        window_dates = ws.row_dates[ws.end_rows[i] - 19 : ws.end_rows[i] + 1]
        assert window_dates[-1] == ws.dates[i]
        assert (np.diff(window_dates) > np.timedelta64(0)).all()
    assert np.isfinite(x).all()
    assert x.dtype == np.float32


def test_scaler_refuses_samples_after_the_cut_and_fits_only_before() -> None:
    bars = random_walk_bars(n_tickers=2, n_days=200, seed=6)
    ws = build_window_set(bars, window=10, labels=LabelConfig())
    cut = pd.Timestamp(np.sort(np.unique(ws.dates))[80])
    train = ws.take(ws.dates <= cut)
    with pytest.raises(LeakageError, match="after the cut"):
        WindowScaler().fit(ws, cut)
    scaler = WindowScaler().fit(train, cut)
    tampered = ws.rows.copy()
    tampered[ws.row_dates > cut] *= 1000.0
    from dataclasses import replace

    refit = WindowScaler().fit(replace(train, rows=tampered), cut)
    assert scaler.center_ is not None and refit.center_ is not None
    assert np.array_equal(scaler.center_, refit.center_)
    assert np.array_equal(scaler.scale_, refit.scale_)


def test_scaler_round_trips_through_dict() -> None:
    bars = random_walk_bars(n_tickers=1, n_days=120, seed=7)
    ws = build_window_set(bars, window=10, labels=LabelConfig())
    scaler = WindowScaler().fit(ws, pd.Timestamp(ws.dates.max()))
    again = WindowScaler.from_dict(scaler.to_dict())
    assert np.array_equal(scaler.transform(ws).rows, again.transform(ws).rows)


def test_rows_used_equals_the_index_array_formula() -> None:
    bars = random_walk_bars(n_tickers=3, n_days=160, seed=8)
    ws = build_window_set(bars, window=10, labels=LabelConfig())
    rng = np.random.default_rng(1)
    for mask in (np.ones(len(ws), dtype=bool), rng.random(len(ws)) < 0.05, ws.tickers == "RW001"):
        subset = ws.take(mask)
        offsets = np.arange(-subset.window + 1, 1)
        expected = np.unique((subset.end_rows[:, None] + offsets[None, :]).ravel())  # the previous formula
        np.testing.assert_array_equal(subset.rows_used(), expected)
        assert subset.rows_used().dtype == np.int64
    assert len(ws.take(np.zeros(len(ws), dtype=bool)).rows_used()) == 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 400), n_features=st.integers(1, 6))
def test_column_statistics_equal_the_whole_matrix_formulas(seed: int, n: int, n_features: int) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.normal(0.0, 2.0, (n, n_features)).astype(np.float32)
    rows[:, 0] = np.round(rows[:, 0])  # many ties
    rows[rng.random(n) < 0.3, -1] = 0.0
    used = np.flatnonzero(rng.random(n) < 0.7)
    if len(used) == 0:
        used = np.array([0])
    q25, median, q75, std = column_statistics(rows, used)
    values = rows[used].astype(np.float64)
    expected = np.percentile(values, [25, 50, 75], axis=0)
    np.testing.assert_array_equal(np.stack([q25, median, q75]), expected)
    # std is taken per contiguous column (pairwise sums); over a 2-D matrix numpy sums row by row, so the two can
    # differ in the last bit: exactly equal to the per-column formula, within rounding of the matrix one
    np.testing.assert_array_equal(std, [np.std(values[:, j]) for j in range(n_features)])
    np.testing.assert_allclose(std, values.std(axis=0), rtol=1e-12, atol=0.0)


def test_transform_in_blocks_equals_one_pass() -> None:
    bars = random_walk_bars(n_tickers=2, n_days=200, seed=3)
    ws = build_window_set(bars, window=10, labels=LabelConfig())
    scaler = WindowScaler(clip=2.0).fit(ws, pd.Timestamp(ws.dates.max()))
    assert scaler.center_ is not None and scaler.scale_ is not None
    one_pass = np.clip((ws.rows.astype(np.float64) - scaler.center_) / scaler.scale_, -2.0, 2.0).astype(np.float32)
    np.testing.assert_array_equal(scaler.transform_rows(ws.rows, block=7), one_pass)
    np.testing.assert_array_equal(scaler.transform_rows(ws.rows), one_pass)
    assert (np.abs(one_pass) == 2.0).any()  # the clip is exercised
