"""Direction labels from the forward return. The label at t looks at closes t+1..t+horizon only.

    forward_return[t] = close[t + horizon] / close[t] - 1
    label = Down (0) if r < -band, Up (2) if r > band, else Neutral (1)

`band` is a fixed return (default 0.5%) or, with threshold_mode="volatility", k x the trailing `vol_lookback`-day
std of daily returns (known at t) x sqrt(horizon). Where t + horizon is past the data, there is no label (-1).

With `LabelConfig.mode = "cross_sectional"` the label is relative to the universe instead (`cross_sectional_labels`):

    median[d] = median of forward_return[i] over every row i dated d whose forward return is known
    label     = Up (2) if forward_return > median[date], Down (0) if at or below it (ties go to Down)

a binary label, about balanced by construction. Neutral (1) never occurs, and every model gives it probability
exactly 0, so the three probability columns keep their meaning. Each forward return in the median is known at
d + horizon, so the label at d, like the absolute one, uses nothing known later. The band settings (threshold,
threshold_mode, vol_*) are ignored in this mode. A universe of one ticker labels every row Down (its return is its
own median), so relative labels need at least two tickers.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import talib

from trendcast.config import LabelConfig
from trendcast.errors import DataError

DOWN, NEUTRAL, UP = 0, 1, 2
NO_LABEL = -1
LabelMode = Literal["absolute", "cross_sectional"]  # LabelConfig.mode
LABEL_CLASSES: dict[str, tuple[int, ...]] = {  # the class ids each label mode can produce
    "absolute": (DOWN, NEUTRAL, UP),
    "cross_sectional": (DOWN, UP),
}
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


def label_classes(mode: LabelMode) -> tuple[int, ...]:
    """The class ids that labels of `mode` can take: (0, 1, 2) for "absolute", (0, 2) for "cross_sectional"."""
    return LABEL_CLASSES[mode]


def check_universe(mode: LabelMode, n_tickers: int) -> None:
    """Refuse cross_sectional labels over fewer than two tickers: each would be its own median (all Down)."""
    if mode == "cross_sectional" and n_tickers < 2:
        raise DataError(
            f"cross_sectional labels compare each ticker with the day's median over the universe, but only "
            f"{n_tickers} ticker(s) were selected; select at least two tickers or set labels.mode: absolute"
        )


def cross_sectional_labels(dates: np.ndarray, forward_returns: np.ndarray) -> np.ndarray:
    """Relative labels of every row of a universe: Up (2) where the forward return is above the median forward
    return of that row's date, Down (0) where it is at or below it, NO_LABEL (-1) where it is not finite.

    `dates` and `forward_returns` (n,) hold every row of every ticker of the universe, in any order. The median of
    a date is over the rows of that date with a finite forward return (the mean of the two middle values for an
    even count), so a row whose features are not warmed up yet still counts. Pure: the labels depend only on the
    (date, return) pairs, not on their order."""
    fwd = np.asarray(forward_returns, dtype=np.float64)
    labels = np.full(fwd.shape, NO_LABEL, dtype=np.int64)
    known = np.isfinite(fwd)
    if not known.any():
        return labels
    returns = fwd[known]
    _, day, counts = np.unique(np.asarray(dates)[known], return_inverse=True, return_counts=True)
    day = day.ravel()
    ordered = returns[np.lexsort((returns, day))]  # by date, then by return
    starts = np.cumsum(counts) - counts
    median = (ordered[starts + (counts - 1) // 2] + ordered[starts + counts // 2]) / 2.0  # one per date
    labels[known] = np.where(returns > median[day], UP, DOWN)
    return labels
