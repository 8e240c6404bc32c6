"""Synthetic daily bars for tests, benchmarks and leakage guards (no network, fully seeded).

`random_walk_bars` has no predictable direction: any model scoring above chance on it is leaking.
`planted_signal_bars` makes tomorrow's return follow today's (AR(1) with coefficient `phi`), so the 1-day return
(`ret_1`) carries a learnable signal that an honest pipeline must find.
`cross_sectional_signal_bars` plants a *relative* signal under a common market factor: for a subset of stocks,
tomorrow's return beyond the day's average follows today's, which is what a cross-sectional study must rank.
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


def cross_sectional_signal_bars(
    n_tickers: int = 40,
    n_days: int = 500,
    *,
    seed: int = 0,
    phi: float = 0.4,
    signal_share: float = 0.5,
    market_vol: float = 0.01,
    vol: float = 0.015,
    start: str = "2010-01-04",
) -> pd.DataFrame:
    """A market factor plus a planted relative signal in the first `signal_share` of the tickers.

        r_i[t] = beta_i * m[t] + phi * s_i * (r_i[t-1] - mean_j r_j[t-1]) + e_i[t]

    with m[t] ~ N(0, market_vol), beta_i ~ U(0.5, 1.5), e_i[t] ~ N(0, vol) and s_i = 1 for the planted stocks, 0
    for the others. The market moves every stock together (no cross-sectional information); a planted stock that
    beat the day's average today tends to beat it tomorrow, so its previous-day relative return (from `ret_1`) ranks
    tomorrow's relative return. Tickers are XS000.. (planted first).
    """
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, market_vol, n_days)
    beta = rng.uniform(0.5, 1.5, n_tickers)
    noise = rng.normal(0.0, vol, (n_days, n_tickers))
    planted = (np.arange(n_tickers) < round(signal_share * n_tickers)).astype(np.float64)
    returns = beta * market[:, None] + noise
    for t in range(1, n_days):
        relative = returns[t - 1] - returns[t - 1].mean()
        returns[t] += phi * planted * relative
    return _bars_from_returns(returns, [f"XS{j:03d}" for j in range(n_tickers)], start, rng)
