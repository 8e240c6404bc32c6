"""Round-trip trades read off a (days x tickers) position grid, without a loop over bars.

A trade is a maximal run of bars on which a ticker's position keeps the same non-zero sign. Resizing within the
run (confidence sizing) stays in the same trade; going flat or flipping sign ends it. Its return is the product of
the factors attributed to it:

    the move of a bar earned by the position it was held with,
    the cost of the part of each order that opens or grows it (entry) and that shrinks or closes it (exit),
    the borrow fee of each night it is short.

A flip from long to short at one bar closes one trade and opens the next: the exit part |old| is charged to the
first, the entry part |new| to the second. Trades still open at the last bar are marked to market and `open=True`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TRADE_COLUMNS: tuple[str, ...] = ("ticker", "direction", "entry_date", "exit_date", "bars", "size", "return", "open")


@dataclass(frozen=True)
class BarFactors:
    """Per-bar inputs of one window, each (days x tickers). `position` is taken at the bar's execution point."""

    position: FloatArray  # after this bar's order
    previous: FloatArray  # before it (carried in from the previous bar)
    move_before: FloatArray  # market move earned by `previous` (whole bar for next_close, the gap for next_open)
    move_after: FloatArray  # market move earned by `position` (0 for next_close, open -> close for next_open)
    cost_rate: float  # commission + slippage per unit of turnover
    borrow: FloatArray  # borrow fee charged this bar (fraction of the sleeve)


@dataclass(frozen=True)
class TradeRuns:
    """Trades found on a (days x tickers) grid; each trade is named by the flat index of its entry cell."""

    starts: IntArray  # flat (day-major) index of each entry cell, ascending: trades in entry order
    run: IntArray  # (days x tickers) flat index of the entry of the trade held at each cell, -1 where flat
    returns: FloatArray  # return of each trade, aligned with `starts`


def _runs(sign: FloatArray, previous_sign: FloatArray) -> tuple[npt.NDArray[np.bool_], IntArray]:
    """Entry flags and, per cell, the flat index of the entry of the trade it belongs to (-1 where flat)."""
    starts = (sign != 0) & (sign != previous_sign)
    flat = np.arange(sign.size, dtype=np.int64).reshape(sign.shape)
    last_start = np.maximum.accumulate(np.where(starts, flat, -1), axis=0)
    return starts, np.where(sign != 0, last_start, -1)


def trade_returns(bars: BarFactors) -> TradeRuns:
    """Every trade of a position grid with its return (the attribution in the module docstring)."""
    sign, previous_sign = np.sign(bars.position), np.sign(bars.previous)
    starts, run = _runs(sign, previous_sign)
    previous_run = np.vstack([np.full((1, run.shape[1]), -1), run[:-1]])
    flip = sign != previous_sign
    size, previous_size = np.abs(bars.position), np.abs(bars.previous)
    closing = np.where(flip, previous_size, np.maximum(previous_size - size, 0.0))
    opening = np.where(flip, size, np.maximum(size - previous_size, 0.0))
    to_previous = np.log1p(bars.previous * bars.move_before) + np.log1p(-(bars.cost_rate * closing + bars.borrow))
    to_current = np.log1p(bars.position * bars.move_after) + np.log1p(-bars.cost_rate * opening)
    log_return = _sum_by_run(previous_run, to_previous) + _sum_by_run(run, to_current)
    entries = np.flatnonzero(starts)
    return TradeRuns(entries, run, np.expm1(log_return[entries]))


def _sum_by_run(run: IntArray, values: FloatArray) -> FloatArray:
    held = run >= 0
    return np.bincount(run[held], weights=values[held], minlength=run.size).astype(np.float64)


def extract_trades(bars: BarFactors, dates: pd.DatetimeIndex, tickers: list[str]) -> pd.DataFrame:
    """One row per trade, in entry order: ticker, direction, entry_date, exit_date (NaT if open), bars, size,
    return, open."""
    runs = trade_returns(bars)
    n_days, n_tickers = bars.position.shape
    entry, ticker_index = np.divmod(runs.starts, n_tickers)
    last_bar = np.full(runs.run.size, n_days - 1, dtype=np.int64)  # per entry cell: last bar the trade is held
    sign = np.sign(bars.position)
    next_sign = np.vstack([sign[1:], np.full((1, n_tickers), np.nan)])
    ends = np.flatnonzero((sign != 0) & (next_sign != sign))
    last_bar[runs.run.ravel()[ends]] = ends // n_tickers
    end = last_bar[runs.starts]
    is_open = end == n_days - 1
    exit_bar = np.where(is_open, n_days - 1, end + 1)
    return pd.DataFrame(
        {
            "ticker": np.asarray(tickers, dtype=object)[ticker_index],
            "direction": np.where(sign.ravel()[runs.starts] > 0, "long", "short"),
            "entry_date": dates[entry],
            "exit_date": pd.DatetimeIndex(dates[exit_bar]).where(~is_open),
            "bars": (exit_bar - entry).astype(np.int64),
            "size": np.abs(bars.position.ravel()[runs.starts]),
            "return": runs.returns,
            "open": is_open,
        },
        columns=list(TRADE_COLUMNS),
    )
