"""Synthetic daily bars for tests, benchmarks and leakage guards (no network, fully seeded).

`random_walk_bars` has no predictable direction: any model scoring above chance on it is leaking.
`planted_signal_bars` makes tomorrow's return follow today's (AR(1) with coefficient `phi`), so the 1-day return
(`ret_1`) carries a learnable signal that an honest pipeline must find.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _bars_from_returns(returns: np.ndarray, tickers: list[str], start: str, rng: np.random.Generator) -> pd.DataFrame:
    n_days = returns.shape[0]
    dates = pd.bdate_range(start, periods=n_days)
    frames = []
    for j, ticker in enumerate(tickers):
        close = 50.0 * np.exp(np.cumsum(returns[:, j]))
        prev = np.concatenate([[close[0]], close[:-1]])
        open_ = prev * np.exp(rng.normal(0, 0.002, n_days))
        wick = np.abs(rng.normal(0, 0.006, (2, n_days)))
        high = np.maximum(open_, close) * (1 + wick[0])
        low = np.minimum(open_, close) * (1 - wick[1])
        volume = np.round(rng.lognormal(13, 0.4, n_days))
        frames.append(
            pd.DataFrame(
                {
                    "ticker": ticker,
                    "date": dates,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                    "adj_close": close,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def random_walk_bars(
    n_tickers: int = 5, n_days: int = 800, *, seed: int = 0, vol: float = 0.015, start: str = "2010-01-04"
) -> pd.DataFrame:
    """Independent Gaussian random walks: direction is unpredictable by construction."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, vol, (n_days, n_tickers))
    return _bars_from_returns(returns, [f"RW{j:03d}" for j in range(n_tickers)], start, rng)


def planted_signal_bars(
    n_tickers: int = 5,
    n_days: int = 800,
    *,
    seed: int = 0,
    phi: float = 0.6,
    vol: float = 0.015,
    start: str = "2010-01-04",
) -> pd.DataFrame:
    """AR(1) daily returns: r[t] = phi * r[t-1] + noise. The sign of today's return predicts tomorrow's."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, vol, (n_days, n_tickers))
    returns = np.zeros_like(noise)
    for t in range(1, n_days):
        returns[t] = phi * returns[t - 1] + noise[t]
    return _bars_from_returns(returns, [f"SIG{j:03d}" for j in range(n_tickers)], start, rng)
