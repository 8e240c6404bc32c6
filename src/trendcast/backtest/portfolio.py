"""A cross-sectional long/short portfolio: each day, long the k stocks a model scores highest (most likely to beat
the day's cross-sectional median) and short the k it scores lowest, equal weight, traded at the next open.

Timeline of a score dated t (known after the close of t):

    weights chosen at the close of t -> traded at the open of t+1 -> held until the open of t+2 (the next trade)
    r_i(t)     = open_i[t+2] / open_i[t+1] - 1                   (the stock's return over the holding period)
    gross(t)   = mean_{i in long} r_i(t) - mean_{i in short} r_i(t)   (one unit long, one unit short: gross exposure 2)
    w_i(t)     = +1/k (long), -1/k (short), 0 otherwise
    turnover(t)= sum_i |w_i(t) - w_i(t-1)|                      (weights at target: intraday drift is ignored)
    net(t)     = gross(t) - turnover(t) * cost_bps / 1e4          (cost per unit traded, each side)

A day is traded only when at least 2k stocks have a score and an open at t+1 (else the book is flat that day and
the move to flat is charged). A held stock with no open at t+2 (delisted) earns nothing and is counted in
`missing_exits`. The score is never compared with prices after t: the signal bar is t, the trade bar t+1.
The metric definitions are the single-asset backtest's (trendcast.backtest.metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendcast.backtest import metrics
from trendcast.errors import DataError


@dataclass(frozen=True)
class PortfolioResult:
    """Daily returns (indexed by the signal date t), the legs held, and the summary before and after costs."""

    daily: pd.DataFrame  # signal date -> entry_date, gross, net, turnover, n_long, n_short, missing_exits
    longs: dict[pd.Timestamp, list[str]]
    shorts: dict[pd.Timestamp, list[str]]
    k: int
    cost_bps: float

    def summary(self) -> dict[str, float]:
        return summarise(self.daily)

    def by_year(self) -> dict[int, dict[str, float]]:
        years = pd.DatetimeIndex(self.daily["entry_date"]).year
        return {int(year): summarise(frame) for year, frame in self.daily.groupby(years)}


def summarise(daily: pd.DataFrame) -> dict[str, float]:
    """Annualised return, Sharpe and max drawdown before and after costs, mean daily turnover and the day count."""
    out: dict[str, float] = {"days": float(len(daily)), "mean_turnover": float(daily["turnover"].mean())}
    for name in ("gross", "net"):
        r = daily[name].to_numpy(dtype=np.float64)
        out[f"{name}_mean_daily"] = float(np.mean(r)) if len(r) else float("nan")
        out[f"{name}_annual_return"] = float(metrics.cagr(r))
        out[f"{name}_sharpe"] = float(metrics.sharpe(r))
        out[f"{name}_max_drawdown"] = float(metrics.max_drawdown(r))
    return out


def long_short_portfolio(
    scores: pd.DataFrame, prices: pd.DataFrame, *, k: int = 10, cost_bps: float = 10.0
) -> PortfolioResult:
    """Daily top-k / bottom-k portfolio from `scores` (ticker, date, score) on `prices` (ticker, date, open).

    Examples:
        result = long_short_portfolio(frame.rename(columns={"p_up": "score"}), bars, k=10, cost_bps=5)
        result.summary()["net_sharpe"], result.by_year()
    """
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")
    score, opens = _grids(scores, prices)
    held = np.zeros(score.shape[1])
    rows, longs, shorts = [], {}, {}
    for t in range(len(opens.index) - 2):
        weights, long_idx, short_idx = _weights(score.iloc[t].to_numpy(), opens.iloc[t + 1].to_numpy(), k)
        r = opens.iloc[t + 2].to_numpy() / opens.iloc[t + 1].to_numpy() - 1.0
        gross, missing = _leg_return(r, long_idx) - _leg_return(r, short_idx), _missing(r, long_idx, short_idx)
        turnover = float(np.abs(weights - held).sum())
        held = weights
        day = opens.index[t]
        rows.append((day, opens.index[t + 1], gross, gross - turnover * cost_bps / 1e4, turnover, missing))
        longs[day], shorts[day] = list(score.columns[long_idx]), list(score.columns[short_idx])
    daily = pd.DataFrame(rows, columns=["date", "entry_date", "gross", "net", "turnover", "missing_exits"])
    daily["n_long"] = [len(longs[d]) for d in daily["date"]]
    daily["n_short"] = [len(shorts[d]) for d in daily["date"]]
    return PortfolioResult(daily.set_index("date"), longs, shorts, k, cost_bps)


def _grids(scores: pd.DataFrame, prices: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(score grid, open grid) on the price calendar x the scored tickers."""
    for frame, columns, what in (
        (scores, {"ticker", "date", "score"}, "scores"),
        (prices, {"ticker", "date", "open"}, "prices"),
    ):
        missing = columns - set(frame.columns)
        if missing:
            raise DataError(f"{what} lack the columns {sorted(missing)}")
    if scores.duplicated(["ticker", "date"]).any():
        raise DataError("scores hold more than one score for a (ticker, date): pass one model's predictions")
    opens = prices.pivot_table(index="date", columns="ticker", values="open", aggfunc="last").sort_index()
    tickers = sorted(set(scores["ticker"]) & set(opens.columns))
    score = scores.pivot(index="date", columns="ticker", values="score").reindex(index=opens.index, columns=tickers)
    return score, opens.reindex(columns=tickers)


def _weights(score: np.ndarray, entry_open: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target weights and the long/short column indices (ties broken by ticker order, so results are stable)."""
    weights = np.zeros(len(score))
    tradeable = np.flatnonzero(np.isfinite(score) & np.isfinite(entry_open) & (entry_open > 0))
    if len(tradeable) < 2 * k:
        return weights, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    ranked = tradeable[np.argsort(-score[tradeable], kind="stable")]
    long_idx, short_idx = np.sort(ranked[:k]), np.sort(ranked[-k:])
    weights[long_idx], weights[short_idx] = 1.0 / k, -1.0 / k
    return weights, long_idx, short_idx


def _leg_return(r: np.ndarray, idx: np.ndarray) -> float:
    """Equal-weight leg return; a stock without an exit price earns 0 (it still counts in the leg's size)."""
    if len(idx) == 0:
        return 0.0
    return float(np.nansum(r[idx]) / len(idx))


def _missing(r: np.ndarray, long_idx: np.ndarray, short_idx: np.ndarray) -> int:
    return int((~np.isfinite(r[long_idx])).sum() + (~np.isfinite(r[short_idx])).sum())
