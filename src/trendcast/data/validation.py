"""OHLCV checks at the boundary: structural problems raise, row-level problems are repaired or dropped and reported.

Structural (raise `SchemaError`, naming the file, column and line):
    missing required column, unparsable date, non-numeric price or volume.

Row-level rules (applied in this order, counted per kind, first examples kept; `strict=True` raises instead):
    duplicate_date        the same (ticker, date) more than once: the last occurrence is kept
    bad_price             an open/high/low/close that is NaN, infinite or <= 0: the row is dropped
    bad_volume            a volume that is NaN or negative: the row is dropped
    high_below_low        high < low: the row is dropped (no safe way to know which is wrong)
    close_outside_range   close (or open) outside [low, high]: repaired by widening high/low to include it
    unsorted              rows not in date order: sorted (not an error, just reported)
Calendar gaps longer than `GAP_DAYS` calendar days are reported, never filled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trendcast.errors import SchemaError, ValidationError

REQUIRED = ("date", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_COLUMNS = ("ticker", "date", "open", "high", "low", "close", "volume", "adj_close")
GAP_DAYS = 5
MAX_EXAMPLES = 5

_ALIASES = {
    "date": ("date", "timestamp", "datetime", "time", "day"),
    "ticker": ("ticker", "name", "symbol"),
    "adj_close": ("adj_close", "adjclose", "adjusted_close", "adj_close_price"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume", "vol"),
}


@dataclass
class ValidationReport:
    """What validation found and did, per kind of problem."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    gaps: int = 0
    gap_examples: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0

    def add(self, kind: str, tickers: pd.Series, dates: pd.Series) -> None:
        n = len(tickers)
        if n == 0:
            return
        self.counts[kind] = self.counts.get(kind, 0) + n
        shown = self.examples.setdefault(kind, [])
        for tk, dt in zip(tickers.iloc[:MAX_EXAMPLES], dates.iloc[:MAX_EXAMPLES], strict=True):
            if len(shown) < MAX_EXAMPLES:
                shown.append(f"{tk} {pd.Timestamp(dt).date()}")

    def merge(self, other: ValidationReport) -> None:
        for kind, n in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
            shown = self.examples.setdefault(kind, [])
            shown.extend(other.examples.get(kind, [])[: MAX_EXAMPLES - len(shown)])
        self.gaps += other.gaps
        self.gap_examples.extend(other.gap_examples[: MAX_EXAMPLES - len(self.gap_examples)])
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out

    @property
    def problems(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind != "unsorted")

    def summary(self) -> str:
        if not self.counts and not self.gaps:
            return "no problems found"
        parts = [
            "input was unsorted: sorted by ticker and date"
            if kind == "unsorted"
            else f"{kind}: {n} (e.g. {', '.join(self.examples.get(kind, []))})"
            for kind, n in self.counts.items()
        ]
        if self.gaps:
            parts.append(f"calendar gaps > {GAP_DAYS} days: {self.gaps} (e.g. {', '.join(self.gap_examples)})")
        return "; ".join(parts)


def normalise_columns(frame: pd.DataFrame, *, path: str) -> pd.DataFrame:
    """Map the usual spellings (`Date`, `Adj Close`, `Name`, any case) onto trendcast's column names."""
    lookup = {str(c).strip().lower().replace(" ", "_").replace("-", "_"): c for c in frame.columns}
    renamed: dict[str, str] = {}
    for target, spellings in _ALIASES.items():
        for spelling in spellings:
            if spelling in lookup and target not in renamed.values():
                renamed[lookup[spelling]] = target
                break
    if "date" not in renamed.values() and isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.reset_index(names="date")
        return normalise_columns(frame, path=path)
    out = frame.rename(columns=renamed)[[c for c in renamed.values()]]
    missing = [c for c in REQUIRED if c not in out.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}. "
            "Expected date, open, high, low, close, volume (any case; `Adj Close` and `ticker`/`Name` optional).",
            path=path,
            column=missing[0],
        )
    return out


def coerce_types(frame: pd.DataFrame, *, path: str, header_lines: int = 1) -> pd.DataFrame:
    """Parse dates and numbers; the first unparsable value raises naming its column and file line."""
    out = frame.copy()
    dates = pd.to_datetime(out["date"], errors="coerce", utc=False, format="mixed")
    _raise_first_bad(out["date"], dates.isna() & out["date"].notna() | out["date"].isna(), path, "date", header_lines)
    out["date"] = (
        pd.DatetimeIndex(dates).tz_localize(None).normalize() if dates.dt.tz is not None else dates.dt.normalize()
    )
    for column in (*PRICE_COLUMNS, "volume", "adj_close"):
        if column not in out.columns:
            continue
        values = pd.to_numeric(out[column], errors="coerce")
        _raise_first_bad(out[column], values.isna() & _present(out[column]), path, column, header_lines)
        out[column] = values.astype("float64")
    if "adj_close" not in out.columns:
        out["adj_close"] = np.nan
    out["ticker"] = out["ticker"].astype(str).str.strip().str.upper()
    return out


def _present(raw: pd.Series) -> pd.Series:
    text = raw.astype("string").str.strip().str.lower()
    return raw.notna() & ~text.isin(["", "nan", "na", "null", "none"])


def _raise_first_bad(raw: pd.Series, bad: pd.Series, path: str, column: str, header_lines: int) -> None:
    if not bad.any():
        return
    position = int(np.flatnonzero(bad.to_numpy())[0])
    line = position + 1 + header_lines
    kind = "date" if column == "date" else "number"
    raise SchemaError(
        f"{path}: line {line}, column {column!r}: cannot parse {raw.iloc[position]!r} as a {kind}. "
        f"Fix or remove that row ({int(bad.sum())} such value(s) in the column).",
        path=path,
        column=column,
    )


def validate_bars(frame: pd.DataFrame, *, strict: bool = False) -> tuple[pd.DataFrame, ValidationReport]:
    """Apply the row-level rules to typed bars of one or more tickers; return clean bars and the report."""
    report = ValidationReport(rows_in=len(frame))
    out = frame.reset_index(drop=True)
    order = out.sort_values(["ticker", "date"], kind="stable").index
    if not (order == out.index).all():
        report.counts["unsorted"] = 1
        out = out.loc[order].reset_index(drop=True)
    dup = out.duplicated(["ticker", "date"], keep="last")
    report.add("duplicate_date", out.loc[dup, "ticker"], out.loc[dup, "date"])
    out = out.loc[~dup]
    prices = out[list(PRICE_COLUMNS)].to_numpy()
    bad_price = ~(np.isfinite(prices) & (prices > 0)).all(axis=1)
    out = _drop(out, bad_price, "bad_price", report)
    volume = out["volume"].to_numpy()
    out = _drop(out, ~np.isfinite(volume) | (volume < 0), "bad_volume", report)
    out = _drop(out, (out["high"] < out["low"]).to_numpy(), "high_below_low", report)
    outside = (out[["open", "close"]].max(axis=1) > out["high"]) | (out[["open", "close"]].min(axis=1) < out["low"])
    report.add("close_outside_range", out.loc[outside, "ticker"], out.loc[outside, "date"])
    out = out.assign(
        high=out[["open", "high", "low", "close"]].max(axis=1), low=out[["open", "high", "low", "close"]].min(axis=1)
    )
    _report_gaps(out, report)
    report.rows_out = len(out)
    if strict and report.problems:
        raise ValidationError(f"strict mode: {report.summary()}")
    return out.reset_index(drop=True)[list(BAR_COLUMNS)], report


def _drop(frame: pd.DataFrame, mask: np.ndarray, kind: str, report: ValidationReport) -> pd.DataFrame:
    report.add(kind, frame.loc[mask, "ticker"], frame.loc[mask, "date"])
    return frame.loc[~mask]


def _report_gaps(frame: pd.DataFrame, report: ValidationReport) -> None:
    same = frame["ticker"].eq(frame["ticker"].shift())
    stamps = frame["date"].to_numpy()
    days = pd.Series((np.diff(stamps, prepend=stamps[:1]) / np.timedelta64(1, "D")).astype(int), index=frame.index)
    gap = same & (days > GAP_DAYS)
    report.gaps += int(gap.sum())
    for tk, dt, n in zip(frame.loc[gap, "ticker"], frame.loc[gap, "date"], days[gap], strict=True):
        if len(report.gap_examples) >= MAX_EXAMPLES:
            break
        report.gap_examples.append(f"{tk} {int(n)} days before {pd.Timestamp(dt).date()}")
