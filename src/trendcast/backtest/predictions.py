"""The predictions frame a backtest consumes: load it, check it, and refuse signals that would trade too early.

A predictions frame has one row per (ticker, signal date) with columns

    ticker, date            date = the close of day t the probabilities were computed from
    p_down, p_neutral, p_up class probabilities (each in [0, 1], summing to 1)
    label, forward_return   optional: the realised class and return (needed for the confusion/calibration plots)
    fold, model             optional: walk-forward fold id and model name (one model per backtest)
    trade_date              optional: the bar at which the signal may be traded; must be strictly after `date`
    entry_long_threshold,   optional: the fold's training-fitted thresholds of the train_quantile entry rule
    entry_short_threshold,  (trendcast.backtest.entry), written by the walk-forward
    entry_quantile

`check_lookahead` is the one gate against trading a signal on or before the bar it was computed from: it raises
`LeakageError` for a same-bar execution setting, a lag below one bar, or any `trade_date <= date`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from trendcast.errors import LeakageError, SchemaError, SourceError

REQUIRED_COLUMNS: tuple[str, ...] = ("ticker", "date", "p_down", "p_neutral", "p_up")
OPTIONAL_COLUMNS: tuple[str, ...] = ("label", "forward_return", "fold", "model", "trade_date")
PROBABILITY_COLUMNS: tuple[str, ...] = ("p_down", "p_neutral", "p_up")
EXECUTIONS: tuple[str, ...] = ("next_open", "next_close")
PROBABILITY_SUM_TOLERANCE = 1e-3


def load_predictions(path: str | Path) -> pd.DataFrame:
    """Read a predictions file (.csv, .parquet or .pq) and validate it.

    Raises SourceError when the file cannot be read and SchemaError (with `.column`) when a column is missing or
    holds unusable values.

    Examples:
        >>> frame = load_predictions("runs/predictions.parquet")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"Predictions file {path} does not exist. Pass the predictions.parquet of a training run.")
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet", ".pq"}:
        raise SchemaError(f"{path}: unknown predictions format {suffix!r}; use .csv or .parquet.", path=str(path))
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read predictions from {path}: {exc}") from exc
    return validate_predictions(frame, source=str(path))


def validate_predictions(predictions: pd.DataFrame, source: str = "predictions") -> pd.DataFrame:
    """A clean copy: required columns present, dates parsed (tz-naive, midnight), probabilities valid, keys unique."""
    _require_columns(predictions, source)
    frame = predictions.copy(deep=False)  # columns below are replaced, never modified in place
    frame["ticker"] = frame["ticker"].astype(str)
    frame["date"] = _parse_dates(frame["date"], source, "date")
    if "trade_date" in frame:
        frame["trade_date"] = _parse_dates(frame["trade_date"], source, "trade_date")
    for column in PROBABILITY_COLUMNS:
        frame[column] = _parse_probability(frame[column], source, column)
    _check_probability_sums(frame, source)
    _check_single_model(frame, source)
    _check_unique_keys(frame, source)
    return frame.reset_index(drop=True)


def check_lookahead(predictions: pd.DataFrame, *, execution: str, lag_bars: int = 1) -> None:
    """Raise LeakageError if any signal would be traded on or before the bar it was computed from.

    A signal dated t is computed from the close of t, so the earliest honest fill is the next bar (its open or its
    close). Refused: an `execution` other than next_open/next_close, `lag_bars < 1`, and rows whose `trade_date`
    is on or before their `date`.
    """
    if execution not in EXECUTIONS:
        raise LeakageError(
            f"execution={execution!r} is not allowed: a signal dated t uses the close of t, so it can only be "
            f"traded at a later bar. Use one of {', '.join(EXECUTIONS)}."
        )
    if lag_bars < 1:
        raise LeakageError(
            f"lag_bars={lag_bars} would trade signals on the bar they were computed from; it must be at least 1."
        )
    if "trade_date" in predictions:
        _check_trade_dates(predictions)


def _check_trade_dates(predictions: pd.DataFrame) -> None:
    trade = pd.to_datetime(predictions["trade_date"])
    date = pd.to_datetime(predictions["date"])
    early = (trade <= date).to_numpy() | trade.isna().to_numpy()
    if early.any():
        row = predictions.loc[early].iloc[0]
        raise LeakageError(
            f"{int(early.sum())} prediction(s) would trade on or before the bar they were computed from "
            f"(first: {row['ticker']} dated {_day(row['date'])} with trade_date {_day(row['trade_date'])}). "
            "trade_date must be strictly after date; drop the column to trade at the next bar."
        )


def _require_columns(frame: pd.DataFrame, source: str) -> None:
    present = [str(c) for c in frame.columns]
    for column in REQUIRED_COLUMNS:
        if column not in present:
            close = difflib.get_close_matches(column, present, n=1)
            hint = f" Did you mean {close[0]!r} (rename it)?" if close else ""
            raise SchemaError(
                f"{source}: missing column {column!r}; a predictions frame needs {', '.join(REQUIRED_COLUMNS)}."
                f"{hint} Present: {', '.join(present) or 'none'}.",
                path=source,
                column=column,
            )


def _parse_dates(values: pd.Series, source: str, column: str) -> pd.Series:
    try:
        parsed = pd.to_datetime(values)
    except (ValueError, TypeError) as exc:
        raise SchemaError(
            f"{source}: column {column!r} has unparsable dates: {exc}", path=source, column=column
        ) from exc
    if parsed.isna().any():
        raise SchemaError(
            f"{source}: column {column!r} has {int(parsed.isna().sum())} missing dates; drop those rows.",
            path=source,
            column=column,
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed.dt.normalize()


def _parse_probability(values: pd.Series, source: str, column: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = ~np.isfinite(numbers.to_numpy()) | (numbers < -PROBABILITY_SUM_TOLERANCE).to_numpy()
    bad |= (numbers > 1 + PROBABILITY_SUM_TOLERANCE).to_numpy()
    if bad.any():
        raise SchemaError(
            f"{source}: column {column!r} has {int(bad.sum())} values that are not probabilities in "
            f"[0, 1] (first: {values[bad].iloc[0]!r}).",
            path=source,
            column=column,
        )
    return numbers.clip(0.0, 1.0)


def _check_probability_sums(frame: pd.DataFrame, source: str) -> None:
    total = frame[list(PROBABILITY_COLUMNS)].to_numpy(dtype=np.float64).sum(axis=1)
    off = np.abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        raise SchemaError(
            f"{source}: {int(off.sum())} rows have p_down + p_neutral + p_up != 1 (first sums to "
            f"{total[off][0]:.4f}); pass softmax probabilities, not logits or scores.",
            path=source,
            column="p_up",
        )


def _check_single_model(frame: pd.DataFrame, source: str) -> None:
    if "model" not in frame:
        return
    models = sorted(str(m) for m in frame["model"].dropna().unique())
    if len(models) > 1:
        raise SchemaError(
            f"{source}: predictions of {len(models)} models ({', '.join(models)}); backtest one at a time, "
            f"e.g. predictions[predictions.model == {models[0]!r}].",
            path=source,
            column="model",
        )


def _check_unique_keys(frame: pd.DataFrame, source: str) -> None:
    tickers, _ = pd.factorize(frame["ticker"])
    days, uniques = pd.factorize(frame["date"])
    keys = tickers.astype(np.int64) * max(len(uniques), 1) + days
    counts = np.bincount(keys, minlength=1)
    duplicated = counts[keys] > 1
    if duplicated.any():
        row = frame.loc[duplicated].iloc[0]
        raise SchemaError(
            f"{source}: {int(duplicated.sum())} rows share a (ticker, date) (first: {row['ticker']} "
            f"{_day(row['date'])}); overlapping walk-forward folds? Keep one prediction per day.",
            path=source,
            column="date",
        )


def _day(value: object) -> str:
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    return "NaT" if pd.isna(stamp) else stamp.strftime("%Y-%m-%d")


def unique_tickers(predictions: pd.DataFrame) -> list[str]:
    """Sorted tickers of a predictions frame."""
    values: Iterable[object] = predictions["ticker"].unique()
    return sorted(str(t) for t in values)
