"""Performance metrics as pure functions of daily return series.

Every function takes simple (not log) daily returns, oldest first, and works along axis 0: a 1-D series gives a
float, a 2-D (days x series) array gives one value per column. Missing days (NaN) are skipped, never read as 0.
The definitions follow quantstats and empyrical-reloaded wherever those libraries define the same quantity, and
`tests/unit/backtest/test_metrics_vs_reference.py` checks each one against them to 1e-9. Where the two libraries
disagree (alpha), the choice is named in the docstring and in docs/backtest.md.

Conventions (`n` observed days, `P` periods a year, default 252):

    rf_d   = (1 + rf) ** (1 / P) - 1          daily risk-free rate from the annual one (quantstats' deannualize)
    e_t    = r_t - rf_d                        excess return
    E_t    = prod_{s <= t} (1 + r_s)            equity, starting from 1

Examples:
    >>> import numpy as np
    >>> r = np.array([0.01, -0.02, 0.015, 0.003])
    >>> round(total_return(r), 6)
    0.007661
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

PERIODS_PER_YEAR = 252

FloatArray: TypeAlias = npt.NDArray[np.float64]
Returns: TypeAlias = pd.Series | pd.DataFrame | FloatArray
Stat: TypeAlias = float | FloatArray

# Order in which the return-series metrics are reported.
RETURN_METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_days",
    "max_drawdown_bars",
    "win_rate_days",
    "profit_factor",
    "avg_win",
    "avg_loss",
    "beta",
    "alpha",
)


# -- small helpers ------------------------------------------------------------------------------------------------
def _values(returns: Returns) -> FloatArray:
    return np.asarray(returns, dtype=np.float64)


def _out(value: FloatArray | np.floating | float) -> Stat:
    """0-d results become a Python float; column results stay an array."""
    array = np.asarray(value, dtype=np.float64)
    return float(array) if array.ndim == 0 else array


def _divide(num: FloatArray, den: FloatArray) -> FloatArray:
    """num / den, NaN where den is 0 or NaN (no warnings)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    out = np.full(num.shape, np.nan)
    ok = np.isfinite(den) & (den != 0)
    np.divide(num, den, out=out, where=ok)
    return out


def _count(x: FloatArray) -> FloatArray:
    return np.sum(np.isfinite(x), axis=0).astype(np.float64)


def _mean(x: FloatArray) -> FloatArray:
    return _divide(np.nansum(x, axis=0), _count(x))


def _std(x: FloatArray) -> FloatArray:
    """Sample standard deviation (ddof=1) of the observed values; NaN with fewer than two."""
    n = _count(x)
    centred = x - _mean(x)
    return np.sqrt(_divide(np.nansum(centred**2, axis=0), n - 1.0))


def _masked_mean(x: FloatArray, mask: npt.NDArray[np.bool_]) -> FloatArray:
    picked = np.where(mask, x, 0.0)
    return _divide(np.sum(picked, axis=0), np.sum(mask, axis=0).astype(np.float64))


def daily_risk_free(rf: float, periods: int = PERIODS_PER_YEAR) -> float:
    """The per-period rate equivalent to an annual rate `rf`: (1 + rf) ** (1 / periods) - 1."""
    return float((1.0 + rf) ** (1.0 / periods) - 1.0)


def _excess(returns: Returns, rf: float, periods: int) -> FloatArray:
    return _values(returns) - daily_risk_free(rf, periods)


# -- growth ---------------------------------------------------------------------------------------------------------
def equity_curve(returns: Returns) -> FloatArray:
    """E_t = prod_{s<=t} (1 + r_s), starting from 1; a missing day leaves equity unchanged."""
    return np.cumprod(1.0 + np.nan_to_num(_values(returns), nan=0.0), axis=0, dtype=np.float64)


def total_return(returns: Returns) -> Stat:
    """prod(1 + r) - 1. Same as quantstats `comp`."""
    return _out(np.prod(1.0 + np.nan_to_num(_values(returns), nan=0.0), axis=0) - 1.0)


def cagr(returns: Returns, periods: int = PERIODS_PER_YEAR) -> Stat:
    """(1 + total_return) ** (P / n) - 1, years counted as observed days / P.

    Same as quantstats `cagr` and empyrical `annual_return`; NaN if wealth ends below zero.
    """
    wealth = 1.0 + np.asarray(total_return(returns))
    years = _count(_values(returns)) / periods
    with np.errstate(invalid="ignore", divide="ignore"):
        grown = np.where((wealth >= 0) & (years > 0), np.abs(wealth) ** _divide(np.ones_like(years), years), np.nan)
    return _out(grown - 1.0)


# -- risk and risk-adjusted return ----------------------------------------------------------------------------------
def volatility(returns: Returns, periods: int = PERIODS_PER_YEAR) -> Stat:
    """std(r, ddof=1) * sqrt(P). Same as quantstats `volatility` and empyrical `annual_volatility`."""
    return _out(_std(_values(returns)) * np.sqrt(periods))


def sharpe(returns: Returns, rf: float = 0.0, periods: int = PERIODS_PER_YEAR) -> Stat:
    """mean(e) / std(e, ddof=1) * sqrt(P) on excess returns e = r - rf_d; `rf` is annual.

    Same as quantstats `sharpe(returns, rf, periods)` and empyrical `sharpe_ratio(returns, risk_free=rf_d)`.
    NaN when the excess returns do not vary.
    """
    excess = _excess(returns, rf, periods)
    return _out(_divide(_mean(excess), _std(excess)) * np.sqrt(periods))


def downside_deviation(returns: Returns, rf: float = 0.0, periods: int = PERIODS_PER_YEAR) -> Stat:
    """sqrt(mean(min(e, 0) ** 2)) * sqrt(P): the root mean square of shortfalls below the risk-free rate."""
    shortfall = np.minimum(_excess(returns, rf, periods), 0.0)
    return _out(np.sqrt(_mean(shortfall**2)) * np.sqrt(periods))


def sortino(returns: Returns, rf: float = 0.0, periods: int = PERIODS_PER_YEAR) -> Stat:
    """mean(e) * P / downside_deviation: every day counts in the downside mean, gains as zero shortfall.

    Same as quantstats `sortino(returns, rf, periods)` and empyrical `sortino_ratio(returns, required_return=rf_d)`.
    NaN when no day falls below the risk-free rate.
    """
    excess = _excess(returns, rf, periods)
    downside = np.asarray(downside_deviation(returns, rf, periods))
    return _out(_divide(_mean(excess) * periods, downside))


def drawdown(returns: Returns) -> FloatArray:
    """E_t / max(1, max_{s<=t} E_s) - 1: the starting capital counts as the first peak, so a loss on day one shows."""
    equity = equity_curve(returns)
    peak = np.maximum.accumulate(np.maximum(equity, 1.0), axis=0)
    return equity / peak - 1.0


def max_drawdown(returns: Returns) -> Stat:
    """min_t drawdown_t (a negative number, 0 for a series that never lost).

    Same as quantstats `max_drawdown` and empyrical `max_drawdown`.
    """
    return _out(_deepest(drawdown(returns)))


def max_drawdown_bars(returns: Returns) -> Stat:
    """Longest run of consecutive days spent below a previous peak, in trading days (bars)."""
    return _out(_longest_runs(drawdown(returns))[0])


def max_drawdown_days(returns: Returns, dates: pd.DatetimeIndex) -> Stat:
    """Longest drawdown in calendar days: last day under water - first day under water + 1.

    Same as the longest `days` in quantstats `drawdown_details(to_drawdown_series(returns))`.
    """
    return _out(_longest_runs(drawdown(returns), dates)[1])


def calmar(returns: Returns, periods: int = PERIODS_PER_YEAR) -> Stat:
    """cagr / |max_drawdown|; NaN without a drawdown. Same as quantstats `calmar` and empyrical `calmar_ratio`."""
    return _out(_calmar(np.asarray(cagr(returns, periods)), _deepest(drawdown(returns))))


def _calmar(growth: FloatArray, deepest: FloatArray) -> FloatArray:
    return _divide(growth, np.abs(deepest))


def _deepest(dd: FloatArray) -> FloatArray:
    return np.min(dd, axis=0) if dd.shape[0] else np.zeros(dd.shape[1:])


def _time_index(dd: FloatArray) -> npt.NDArray[np.int64]:
    return np.arange(dd.shape[0]).reshape((-1,) + (1,) * (dd.ndim - 1))


def _last_peak(dd: FloatArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """For each day: index of the last day at a peak up to it (-1 if none yet), and whether it is under water."""
    under = dd < 0
    return np.maximum.accumulate(np.where(under, -1, _time_index(dd)), axis=0), under


def _longest_runs(dd: FloatArray, dates: pd.DatetimeIndex | None = None) -> tuple[FloatArray, FloatArray]:
    """(longest run under water in bars, the same in calendar days; zeros without `dates`)."""
    if dd.shape[0] == 0:
        return np.zeros(dd.shape[1:]), np.zeros(dd.shape[1:])
    last_peak, under = _last_peak(dd)
    bars = np.max(np.where(under, _time_index(dd) - last_peak, 0), axis=0).astype(np.float64)
    if dates is None:
        return bars, np.zeros_like(bars)
    day = dates.to_numpy(dtype="datetime64[D]").astype(np.int64).reshape(_time_index(dd).shape)
    day = np.broadcast_to(day, dd.shape)
    first_under = np.take_along_axis(day, np.minimum(last_peak + 1, dd.shape[0] - 1), axis=0)
    days = np.max(np.where(under, day - first_under + 1, 0), axis=0).astype(np.float64)
    return bars, days


# -- hit rates -----------------------------------------------------------------------------------------------------
def win_rate(returns: Returns) -> Stat:
    """Share of positive days among days with a non-zero return. Same as quantstats `win_rate`.

    Flat days (no position, no cost) are neither wins nor losses. NaN when every day is flat.
    """
    values = _values(returns)
    observed = np.isfinite(values)
    wins = np.sum(observed & (values > 0), axis=0).astype(np.float64)
    active = np.sum(observed & (values != 0), axis=0).astype(np.float64)
    return _out(_divide(wins, active))


def profit_factor(returns: Returns) -> Stat:
    """Sum of non-negative daily returns / |sum of negative daily returns|.

    Same as quantstats `profit_factor` and empyrical `omega_ratio` with a zero threshold. +inf with gains and no
    losses, NaN with neither.
    """
    values = np.nan_to_num(_values(returns), nan=0.0)
    gains = np.sum(np.where(values >= 0, values, 0.0), axis=0)
    losses = -np.sum(np.where(values < 0, values, 0.0), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(losses > 0, gains / np.where(losses > 0, losses, 1.0), np.where(gains > 0, np.inf, np.nan))
    return _out(ratio)


def avg_win(returns: Returns) -> Stat:
    """Mean of the positive daily returns. Same as quantstats `avg_win`."""
    values = _values(returns)
    return _out(_masked_mean(values, np.isfinite(values) & (values > 0)))


def avg_loss(returns: Returns) -> Stat:
    """Mean of the negative daily returns (a negative number). Same as quantstats `avg_loss`."""
    values = _values(returns)
    return _out(_masked_mean(values, np.isfinite(values) & (values < 0)))


# -- relative to a benchmark ------------------------------------------------------------------------------------------
def _paired(returns: Returns, benchmark: Returns) -> tuple[FloatArray, FloatArray]:
    """Returns and benchmark masked to the days where both are observed, broadcast to the same shape."""
    values = _values(returns)
    bench = _values(benchmark)
    if bench.ndim < values.ndim:
        bench = bench.reshape(bench.shape + (1,) * (values.ndim - bench.ndim))
    values, bench = np.broadcast_arrays(values, bench)
    both = np.isfinite(values) & np.isfinite(bench)
    return np.where(both, values, np.nan), np.where(both, bench, np.nan)


def beta(returns: Returns, benchmark: Returns) -> Stat:
    """cov(r, b) / var(b) over the days both are observed.

    Same as empyrical `beta` and quantstats `greeks()['beta']`. NaN when the benchmark does not vary.
    """
    values, bench = _paired(returns, benchmark)
    centred = bench - _mean(bench)
    variance = _mean(centred**2)
    return _out(_divide(_mean(centred * values), np.where(variance < 1e-30, np.nan, variance)))


def alpha(returns: Returns, benchmark: Returns, rf: float = 0.0, periods: int = PERIODS_PER_YEAR) -> Stat:
    """Jensen's alpha, compounded to a year: (1 + mean(e_r - beta * e_b)) ** P - 1.

    Same as empyrical `alpha(returns, benchmark, risk_free=rf_d)`. quantstats `greeks()['alpha']` annualises the
    same daily intercept arithmetically (x P, and without a risk-free rate); we follow empyrical because it honours
    the risk-free rate and compounds like cagr does.
    """
    values, bench = _paired(returns, benchmark)
    return _out(_alpha(values, bench, np.asarray(beta(values, bench)), rf, periods))


def _alpha(values: FloatArray, bench: FloatArray, slope: FloatArray, rf: float, periods: int) -> FloatArray:
    """Alpha of already paired series with a known beta."""
    rf_d = daily_risk_free(rf, periods)
    intercept = _mean((values - rf_d) - slope * (bench - rf_d))
    return (1.0 + intercept) ** periods - 1.0


# -- the table -------------------------------------------------------------------------------------------------------
def return_metrics(
    returns: pd.DataFrame, benchmark: pd.Series | pd.DataFrame, rf: float = 0.0, periods: int = PERIODS_PER_YEAR
) -> pd.DataFrame:
    """Every metric in RETURN_METRICS for each column of `returns` (days x series), one row per metric.

    `benchmark` is one series for all columns, or a frame with the same columns (each column its own benchmark).
    """
    values = returns.to_numpy(dtype=np.float64)
    bench = benchmark.to_numpy(dtype=np.float64)
    dd = drawdown(values)
    deepest = _deepest(dd)
    growth = np.asarray(cagr(values, periods))
    longest_bars, longest_days = _longest_runs(dd, pd.DatetimeIndex(returns.index))
    paired, paired_bench = _paired(values, bench)
    slope = np.asarray(beta(paired, paired_bench))
    table = {
        "total_return": total_return(values),
        "cagr": growth,
        "volatility": volatility(values, periods),
        "sharpe": sharpe(values, rf, periods),
        "sortino": sortino(values, rf, periods),
        "calmar": _calmar(growth, deepest),
        "max_drawdown": deepest,
        "max_drawdown_days": longest_days,
        "max_drawdown_bars": longest_bars,
        "win_rate_days": win_rate(values),
        "profit_factor": profit_factor(values),
        "avg_win": avg_win(values),
        "avg_loss": avg_loss(values),
        "beta": slope,
        "alpha": _alpha(paired, paired_bench, slope, rf, periods),
    }
    data = {name: np.broadcast_to(np.asarray(value), (values.shape[1],)) for name, value in table.items()}
    return pd.DataFrame(data, index=returns.columns).T.loc[list(RETURN_METRICS)]


def rolling_sharpe(
    returns: pd.Series, window: int = 126, rf: float = 0.0, periods: int = PERIODS_PER_YEAR
) -> pd.Series:
    """Sharpe over a trailing window of `window` days (NaN until full). Same as quantstats `rolling_sharpe`."""
    excess = returns - daily_risk_free(rf, periods)
    rolling = excess.rolling(window)
    return rolling.mean() / rolling.std() * np.sqrt(periods)


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return of each calendar month: years as rows, months 1..12 as columns (NaN where no data)."""
    dates = pd.DatetimeIndex(returns.index)
    grouped = (1.0 + returns.fillna(0.0)).groupby([dates.year, dates.month]).prod() - 1.0
    table = grouped.unstack()
    table.index.name, table.columns.name = "year", "month"
    return table.reindex(columns=range(1, 13))
