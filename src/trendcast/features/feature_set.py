"""Assemble the feature matrix per ticker and stack windows across tickers.

Prices are back-adjusted first when the source has an adjusted close (open/high/low scaled by adj_close/close),
so splits and dividends do not look like crashes. Volume is left as reported.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendcast.config import LabelConfig
from trendcast.features.indicators import Indicator, resolve
from trendcast.features.labels import NO_LABEL, direction_labels


def adjusted_ohlcv(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """OHLCV arrays of one ticker, back-adjusted by adj_close/close where adj_close is known."""
    close = bars["close"].to_numpy(dtype="float64")
    adj = bars["adj_close"].to_numpy(dtype="float64") if "adj_close" in bars else np.full_like(close, np.nan)
    factor = np.where(np.isfinite(adj) & (adj > 0), adj / close, 1.0)
    arrays = {c: bars[c].to_numpy(dtype="float64") * factor for c in ("open", "high", "low", "close")}
    arrays["volume"] = bars["volume"].to_numpy(dtype="float64")
    return arrays


def compute_features(
    bars: pd.DataFrame, indicators: list[Indicator] | None = None, arrays: dict[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Feature frame of one ticker (bars sorted by date), indexed by date, in catalog order; NaN where an
    indicator has no value yet. `arrays` may pass precomputed `adjusted_ohlcv(bars)`."""
    chosen = indicators if indicators is not None else resolve(None)
    ohlcv = arrays if arrays is not None else adjusted_ohlcv(bars)
    matrix = np.column_stack([ind.fn(ohlcv) for ind in chosen])  # (n_days, n_features)
    matrix[~np.isfinite(matrix)] = np.nan
    index = pd.DatetimeIndex(bars["date"].to_numpy(), name="date")
    return pd.DataFrame(matrix, index=index, columns=[ind.name for ind in chosen])


def warmup_bars(indicators: list[Indicator]) -> int:
    """Bars before every one of `indicators` has a value: a ticker's first `warmup_bars` feature rows are NaN.

    Measured by running the indicators on a seeded random walk (TA-Lib's warm-up conventions differ by a bar from
    the declared `lookback` for some), and cached per set of names."""
    return _measured_warmup(tuple(ind.name for ind in indicators))


@functools.lru_cache(maxsize=32)
def _measured_warmup(names: tuple[str, ...]) -> int:
    indicators = resolve(list(names))
    n = 2 * max(ind.lookback for ind in indicators) + 50
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    wick = 1.0 + np.abs(rng.normal(0.0, 0.005, (2, n)))
    ohlcv = {"open": close, "high": close * wick[0], "low": close / wick[1], "close": close}
    ohlcv["volume"] = rng.uniform(1e5, 2e5, n)
    finite = np.isfinite(np.column_stack([ind.fn(ohlcv) for ind in indicators])).all(axis=1)
    return int(np.argmax(finite))


def days_still_needed(values: np.ndarray, window: int, warmup: int) -> int:
    """Trading days to add after the last row of `values` (one ticker's features, oldest first) before its last
    `window` rows are all finite: the warm-up of the first `warmup` bars counts, and so does a gap (a NaN row past
    the warm-up) that the window must clear."""
    finite = np.isfinite(values).all(axis=1) if len(values) else np.ones(0, dtype=bool)
    broken = np.flatnonzero(~finite)
    first_usable = max(warmup, int(broken[-1]) + 1 if len(broken) else 0)
    return max(0, first_usable + window - len(values))


@dataclass(frozen=True)
class TickerFrame:
    """Features, labels and forward returns of one ticker, aligned on its dates."""

    ticker: str
    features: pd.DataFrame
    labels: np.ndarray
    forward_returns: np.ndarray
    close: np.ndarray  # adjusted close


def build_ticker_frame(
    ticker: str, bars: pd.DataFrame, labels: LabelConfig, indicators: list[Indicator] | None = None
) -> TickerFrame:
    if not bars["date"].is_monotonic_increasing:
        bars = bars.sort_values("date")
    arrays = adjusted_ohlcv(bars)
    features = compute_features(bars, indicators, arrays)
    close = arrays["close"]
    y, fwd = direction_labels(close, labels)
    return TickerFrame(ticker, features, y, fwd, close)


def label_counts(labels: np.ndarray) -> dict[str, int]:
    from trendcast.config import CLASS_NAMES

    known = labels[labels != NO_LABEL]
    return {name: int((known == i).sum()) for i, name in enumerate(CLASS_NAMES)}
