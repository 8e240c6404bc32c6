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


def _trade_ids(sign: FloatArray, previous_sign: FloatArray) -> tuple[npt.NDArray[np.bool_], IntArray]:
    """Entry flags and a trade id per (ticker, bar) of tickers-major arrays (-1 where flat)."""
    starts = (sign != 0) & (sign != previous_sign)
    ids = (np.cumsum(starts.ravel()) - 1).reshape(sign.shape)
    return starts, np.where(sign != 0, ids, -1)


def trade_returns(bars: BarFactors) -> tuple[npt.NDArray[np.bool_], IntArray, FloatArray]:
    """(entry flags, trade ids, return per trade) with arrays transposed to (tickers x days)."""
    position, previous = bars.position.T, bars.previous.T
    sign, previous_sign = np.sign(position), np.sign(previous)
    starts, ids = _trade_ids(sign, previous_sign)
    previous_ids = np.concatenate([np.full((ids.shape[0], 1), -1), ids[:, :-1]], axis=1)
    flip = sign != previous_sign
    size, previous_size = np.abs(position), np.abs(previous)
    closing = np.where(flip, previous_size, np.maximum(previous_size - size, 0.0))
    opening = np.where(flip, size, np.maximum(size - previous_size, 0.0))
    to_previous = np.log1p(previous * bars.move_before.T) + np.log1p(-(bars.cost_rate * closing + bars.borrow.T))
    to_current = np.log1p(position * bars.move_after.T) + np.log1p(-bars.cost_rate * opening)
    count = int(starts.sum())
    log_return = _sum_by_id(previous_ids, to_previous, count) + _sum_by_id(ids, to_current, count)
    return starts, ids, np.expm1(log_return)


def _sum_by_id(ids: IntArray, values: FloatArray, count: int) -> FloatArray:
    held = ids >= 0
    return np.bincount(ids[held], weights=values[held], minlength=count).astype(np.float64)


def extract_trades(bars: BarFactors, dates: pd.DatetimeIndex, tickers: list[str]) -> pd.DataFrame:
    """One row per trade: ticker, direction, entry_date, exit_date (NaT if open), bars, size, return, open."""
    starts, ids, returns = trade_returns(bars)
    n_days = ids.shape[1]
    sign = np.sign(bars.position.T)
    next_sign = np.concatenate([sign[:, 1:], np.full((sign.shape[0], 1), np.nan)], axis=1)
    ends = (sign != 0) & (next_sign != sign)
    ticker_index, entry = np.divmod(np.flatnonzero(starts.ravel()), n_days)
    end = np.flatnonzero(ends.ravel()) % n_days
    is_open = end == n_days - 1
    exit_bar = np.where(is_open, n_days - 1, end + 1)
    exit_dates = pd.DatetimeIndex(dates[np.minimum(exit_bar, n_days - 1)]).where(~is_open)
    return pd.DataFrame(
        {
            "ticker": np.asarray(tickers, dtype=object)[ticker_index],
            "direction": np.where(sign[ticker_index, entry] > 0, "long", "short"),
            "entry_date": dates[entry],
            "exit_date": exit_dates,
            "bars": (exit_bar - entry).astype(np.int64),
            "size": np.abs(bars.position.T[ticker_index, entry]),
            "return": returns,
            "open": is_open,
        },
        columns=list(TRADE_COLUMNS),
    )
