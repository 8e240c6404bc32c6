"""Features equal direct TA-Lib calls; the catalog is complete; nothing looks ahead (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from trendcast.data.synthetic import random_walk_bars
from trendcast.features.feature_set import adjusted_ohlcv, compute_features
from trendcast.features.indicators import catalog, resolve

BARS = random_walk_bars(n_tickers=1, n_days=300, seed=5)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(a, b, rtol=1e-10, atol=1e-12, equal_nan=True))


def test_catalog_has_40_plus_indicators_in_five_groups() -> None:
    items = catalog()
    assert len(items) >= 40
    assert {i.group for i in items} == {"trend", "momentum", "volatility", "volume", "returns"}
    assert len({i.name for i in items}) == len(items)


def test_features_equal_direct_talib_calls() -> None:
    features = compute_features(BARS)
    a = adjusted_ohlcv(BARS)
    h, lo, c, v = a["high"], a["low"], a["close"], a["volume"]
    assert _close(features["rsi_14"].to_numpy(), talib.RSI(c, 14))
    assert _close(features["macd_hist"].to_numpy(), talib.MACD(c, 12, 26, 9)[2] / c)
    assert _close(features["atr_ratio_14"].to_numpy(), talib.ATR(h, lo, c, 14) / c)
    assert _close(features["adx_14"].to_numpy(), talib.ADX(h, lo, c, 14))
    assert _close(features["stoch_k"].to_numpy(), talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)[0])
    assert _close(features["mfi_14"].to_numpy(), talib.MFI(h, lo, c, v, 14))
    assert _close(features["willr_14"].to_numpy(), talib.WILLR(h, lo, c, 14))
    upper, _, lower = talib.BBANDS(c, 20, 2.0, 2.0)
    assert _close(features["bb_pctb_20"].to_numpy(), (c - lower) / (upper - lower))
    assert _close(features["sma_ratio_20"].to_numpy(), c / talib.SMA(c, 20) - 1)


def test_rolling_volatility_matches_pandas() -> None:
    features = compute_features(BARS)
    logret = np.log(BARS["close"]).diff()
    expected = logret.rolling(20).std().to_numpy()
    assert np.allclose(features["volatility_20"].to_numpy()[21:], expected[21:], rtol=1e-8)


def test_lookbacks_are_honest() -> None:
    """Each indicator has a value by its declared lookback (+1 for talib's unstable warm-up conventions)."""
    features = compute_features(BARS)
    for ind in catalog():
        first = int(np.argmax(np.isfinite(features[ind.name].to_numpy())))
        assert first <= ind.lookback + 1, (ind.name, first, ind.lookback)


def test_adjustment_uses_adjusted_close() -> None:
    bars = BARS.copy()
    bars["adj_close"] = bars["close"] / 2
    a = adjusted_ohlcv(bars)
    assert np.allclose(a["open"], bars["open"] / 2)
    assert np.allclose(a["volume"], bars["volume"])


@settings(max_examples=25, deadline=None)
@given(
    cut=st.integers(min_value=60, max_value=280),
    scale=st.floats(min_value=0.5, max_value=2.0),
    seed=st.integers(0, 1000),
)
def test_no_feature_looks_ahead(cut: int, scale: float, seed: int) -> None:
    """Changing any bar after t leaves every feature at or before t unchanged."""
    rng = np.random.default_rng(seed)
    changed = BARS.copy()
    later = changed.index[cut + 1 :]
    noise = rng.uniform(0.5, 1.5, len(later)) * scale
    for column in ("open", "high", "low", "close", "adj_close"):
        changed.loc[later, column] *= noise
    changed.loc[later, "volume"] *= rng.uniform(0.1, 10, len(later))
    before = compute_features(BARS).iloc[: cut + 1]
    after = compute_features(changed).iloc[: cut + 1]
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_resolve_suggests_names() -> None:
    import pytest

    from trendcast.errors import ConfigError

    with pytest.raises(ConfigError, match="rsi_14"):
        resolve(["rsi14"])
