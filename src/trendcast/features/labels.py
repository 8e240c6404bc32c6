"""Direction labels from the forward return. The label at t looks at closes t+1..t+horizon only.

    forward_return[t] = close[t + horizon] / close[t] - 1
    label = Down (0) if r < -band, Up (2) if r > band, else Neutral (1)

`band` is a fixed return (default 0.5%) or, with threshold_mode="volatility", k x the trailing `vol_lookback`-day
std of daily returns (known at t) x sqrt(horizon). Where t + horizon is past the data, there is no label (-1).
"""

from __future__ import annotations

import numpy as np
import talib

from trendcast.config import LabelConfig

DOWN, NEUTRAL, UP = 0, 1, 2
NO_LABEL = -1
LOOKAHEAD_ATTRIBUTE = "horizon"  # the label's look-ahead, in bars: purge gaps must be at least this


def forward_return(close: np.ndarray, horizon: int) -> np.ndarray:
    out = np.full(close.shape, np.nan)
    if len(close) > horizon:
        out[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    return out


def neutral_band(close: np.ndarray, config: LabelConfig) -> np.ndarray:
    """The half-width of the Neutral band at each t, using data up to t only."""
    if config.threshold_mode == "fixed":
        return np.full(close.shape, config.threshold)
    returns = np.full(close.shape, np.nan)
    returns[1:] = close[1:] / close[:-1] - 1.0
    vol = talib.STDDEV(returns, config.vol_lookback, 1.0)
    return np.asarray(config.vol_multiplier * vol * np.sqrt(config.horizon))


def direction_labels(close: np.ndarray, config: LabelConfig) -> tuple[np.ndarray, np.ndarray]:
    """(labels int64 with -1 where unknown, forward returns float64 with NaN where unknown)."""
    fwd = forward_return(close, config.horizon)
    band = neutral_band(close, config)
    labels = np.full(close.shape, NO_LABEL, dtype=np.int64)
    known = np.isfinite(fwd) & np.isfinite(band)
    labels[known] = NEUTRAL
    labels[known & (fwd > band)] = UP
    labels[known & (fwd < -band)] = DOWN
    return labels, fwd
