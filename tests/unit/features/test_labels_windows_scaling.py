"""Labels look only forward by `horizon`; windows stay inside one ticker; the scaler refuses later data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trendcast.config import LabelConfig
from trendcast.data.synthetic import random_walk_bars
from trendcast.errors import LeakageError
from trendcast.features.feature_set import compute_features
from trendcast.features.labels import DOWN, NEUTRAL, NO_LABEL, UP, direction_labels
from trendcast.features.scaling import WindowScaler
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
