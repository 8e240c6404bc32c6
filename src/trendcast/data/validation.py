"""OHLCV checks at the boundary: structural problems raise, row-level problems are repaired or dropped and reported.

Structural (raise `SchemaError`, naming the file, column and line):
    missing required column, two columns that both give one of ours (`Close` and `close`), unparsable date,
    dates in more than one format (or day and month that cannot be told apart), non-numeric price or volume,
    a ticker the API would refuse (`InvalidTickerError`).

Dates written as text are read in ONE format per file, inferred from the whole column: ISO 8601 (`2015-02-03`,
with or without a time) is preferred, then the one other format that fits every value (`DD/MM/YYYY`,
`MM/DD/YYYY`, `YYYYMMDD`, ...). A file whose dates fit both `DD/MM` and `MM/DD` needs `date_format`
(`--date-format`, strftime syntax). Datetime columns (Parquet, DataFrames) are taken as they are.

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

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trendcast.errors import ConfigError, InvalidTickerError, SchemaError, ValidationError

REQUIRED = ("date", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_COLUMNS = ("ticker", "date", "open", "high", "low", "close", "volume", "adj_close")
GAP_DAYS = 5
MAX_EXAMPLES = 5

TICKER_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9.^=-]{0,31}$"  # what the API accepts (serving.schemas.Ticker)
TICKER_RULE = "1 to 32 letters, digits, '.', '^', '=' or '-', the first a letter, digit or '^'"

ISO_DATES = "YYYY-MM-DD"
DATE_FORMATS: dict[str, str] = {  # label -> strftime, in order of preference; ISO also takes a time and offset
    ISO_DATES: "%Y-%m-%d",
    "YYYY/MM/DD": "%Y/%m/%d",
    "YYYYMMDD": "%Y%m%d",
    "DD/MM/YYYY": "%d/%m/%Y",
    "MM/DD/YYYY": "%m/%d/%Y",
    "DD.MM.YYYY": "%d.%m.%Y",
    "DD-MM-YYYY": "%d-%m-%Y",
    "MM-DD-YYYY": "%m-%d-%Y",
    "DD/MM/YY": "%d/%m/%y",
    "MM/DD/YY": "%m/%d/%y",
    "DD-Mon-YYYY": "%d-%b-%Y",
    "DD Mon YYYY": "%d %b %Y",
    "Mon DD, YYYY": "%b %d, %Y",
}
_TIME_OF_DAY = r"[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?$"  # a trailing time on a non-ISO date (Excel exports)

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
_TARGET_OF = {spelling: target for target, spellings in _ALIASES.items() for spelling in spellings}


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
    """Map the usual spellings (`Date`, `Adj Close`, `Name`, any case) onto trendcast's column names.

    Two columns that would give the same one (`Close` twice, `Close` and `close`, `Date` and `Timestamp`) raise.
    """
    found: dict[str, list[str]] = {}
    for column in frame.columns:
        target = _TARGET_OF.get(str(column).strip().lower().replace(" ", "_").replace("-", "_"))
        if target is not None:
            found.setdefault(target, []).append(column)
    _raise_duplicates(found, path)
    renamed = {columns[0]: target for target, columns in found.items()}
    if "date" not in renamed.values() and isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.reset_index(names="date")
        return normalise_columns(frame, path=path)
    out = frame.rename(columns=renamed)[[c for c in _ALIASES if c in renamed.values()]]
    missing = [c for c in REQUIRED if c not in out.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}. "
            "Expected date, open, high, low, close, volume (any case; `Adj Close` and `ticker`/`Name` optional).",
            path=path,
            column=missing[0],
        )
    return out


def _raise_duplicates(found: dict[str, list[str]], path: str) -> None:
    twice = {target: columns for target, columns in found.items() if len(columns) > 1}
    if not twice:
        return
    said = "; ".join(
        f"{', '.join(repr(str(c)) for c in columns[:-1])} and {str(columns[-1])!r} all become column {target!r}"
        for target, columns in twice.items()
    )
    raise SchemaError(
        f"{path}: duplicate columns: {said}. Keep one of each (delete or rename the others): trendcast will not "
        "guess which one holds the right values.",
        path=path,
        column=next(iter(twice)),
    )


def coerce_types(
    frame: pd.DataFrame, *, path: str, header_lines: int = 1, date_format: str | None = None
) -> pd.DataFrame:
    """Parse dates (one format per file, see the module docstring) and numbers; the first unparsable value raises
    naming its column and file line."""
    out = frame.copy()
    out["date"] = parse_dates(out["date"], path=path, header_lines=header_lines, date_format=date_format)
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


def parse_dates(raw: pd.Series, *, path: str, header_lines: int = 1, date_format: str | None = None) -> pd.Series:
    """Naive midnight dates from a date column. Datetime columns keep their wall-clock date; text is read in one
    format for the whole column (`date_format`, strftime syntax, or inferred; see the module docstring)."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        dates = raw
    elif raw.map(lambda value: isinstance(value, str)).all():
        dates = _text_dates(raw.str.strip(), path, header_lines, date_format)
    else:  # dates, timestamps or numbers from a DataFrame
        dates = pd.to_datetime(raw, errors="coerce", utc=False, format="mixed")
        _raise_first_bad(raw, dates.isna(), path, "date", header_lines)
    if dates.dt.tz is not None:
        dates = dates.dt.tz_localize(None)
    return dates.dt.normalize()


def check_date_format(date_format: str) -> str:
    """`date_format` if it is a strftime format with a day in it, else ConfigError naming the fix."""
    try:
        pd.to_datetime(pd.Index(["2000-01-01"]), format=date_format, errors="coerce")
    except ValueError as exc:
        raise ConfigError(f"--date-format {date_format!r}: {exc}. Use strftime syntax, e.g. %d/%m/%Y.") from exc
    if not re.search(r"%[dj]", date_format):
        raise ConfigError(f"--date-format {date_format!r} has no day (%d); use strftime syntax, e.g. %d/%m/%Y.")
    return date_format


def _text_dates(text: pd.Series, path: str, header_lines: int, date_format: str | None) -> pd.Series:
    values = pd.Index(pd.unique(text))  # parse each distinct string once (multi-ticker files repeat dates)
    rows = values.get_indexer(pd.Index(text))
    if date_format is not None:
        return _dates_in_format(text, values, rows, date_format, path, header_lines)
    parsed_as = {
        label: np.asarray(_read_as(values, fmt, iso=label == ISO_DATES))[rows] for label, fmt in DATE_FORMATS.items()
    }
    fits = {label: ~np.isnat(parsed) for label, parsed in parsed_as.items()}
    first_miss = {label: int(np.argmin(fit)) if not fit.all() else len(text) for label, fit in fits.items()}
    everywhere = [label for label, miss in first_miss.items() if miss == len(text)]
    if everywhere:
        label = _one_format({k: parsed_as[k] for k in everywhere}, text, path, header_lines)
        return pd.Series(parsed_as[label], index=text.index)
    row = max(first_miss.values())  # the first line that no one format reads together with every line before it
    own = [label for label, fit in fits.items() if fit[row]]
    if not own:  # the value fits no format at all (and is the first such one)
        nowhere = ~np.logical_or.reduce(list(fits.values()))
        _raise_first_bad(text, pd.Series(nowhere, index=text.index), path, "date", header_lines)
    before = [label for label, miss in first_miss.items() if miss == row]
    raise SchemaError(
        f"{path}: line {row + 1 + header_lines}, column 'date': {text.iloc[row]!r} is written {' or '.join(own)}, "
        f"but the dates before it are {' or '.join(before)} (line {1 + header_lines}: {text.iloc[0]!r}). "
        f"Use one date format for the whole file (YYYY-MM-DD is safest), or pass the file's format with "
        f"--date-format (strftime syntax, e.g. --date-format {DATE_FORMATS[own[0]]}).",
        path=path,
        column="date",
    )


def _dates_in_format(
    text: pd.Series, values: pd.Index, rows: np.ndarray, date_format: str, path: str, header_lines: int
) -> pd.Series:
    parsed = np.asarray(_read_as(values, date_format))[rows]
    bad = np.isnat(parsed)
    if bad.any():
        line, value = _first(text, bad, header_lines)
        raise SchemaError(
            f"{path}: line {line}, column 'date': {value!r} does not match --date-format {date_format!r} "
            f"({int(bad.sum())} such value(s)). Fix those rows, or pass the format the file uses.",
            path=path,
            column="date",
        )
    return pd.Series(parsed, index=text.index)


def _read_as(values: pd.Index, fmt: str, *, iso: bool = False) -> pd.Index:
    """Each value parsed with `fmt` (NaT where it does not fit). ISO takes any ISO 8601 date-time and keeps the
    date as written (the wall-clock date, whatever the offset); other formats allow a trailing time of day."""
    if iso:
        ok = np.asarray(pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True).notna())
        ok &= np.asarray(values.str.match(r"\d{4}-\d{2}-\d{2}"), dtype=bool)
        return pd.to_datetime(values.str.slice(0, 10), format=fmt, errors="coerce").where(ok)
    if fmt in DATE_FORMATS.values():
        values = values.str.replace(_TIME_OF_DAY, "", regex=True)
    return pd.to_datetime(values, format=fmt, errors="coerce")


def _one_format(parsed: dict[str, np.ndarray], text: pd.Series, path: str, header_lines: int) -> str:
    """Of the formats that read every value (in order of preference): ISO if it is one, else the only one, else
    ambiguous (unless they all read the same dates)."""
    first, *others = parsed
    differ = [label for label in others if not np.array_equal(parsed[label], parsed[first])]
    if first == ISO_DATES or not differ:
        return first
    row = int(np.argmax(parsed[differ[0]] != parsed[first]))
    readings = " or ".join(f"{label} ({pd.Timestamp(parsed[label][row]).date()})" for label in [first, *differ])
    options = " or ".join(f"--date-format {DATE_FORMATS[label]}" for label in [first, *differ])
    raise SchemaError(
        f"{path}: line {row + 1 + header_lines}, column 'date': {text.iloc[row]!r} reads as {readings}, and every "
        f"date in the file fits {' and '.join([first, *differ])}, so day and month cannot be told apart. "
        f"Say which with {options}.",
        path=path,
        column="date",
    )


def _first(text: pd.Series, bad: np.ndarray, header_lines: int) -> tuple[int, str]:
    position = int(np.flatnonzero(bad)[0])
    return position + 1 + header_lines, str(text.iloc[position])


def check_ticker(ticker: str, *, where: str = "", hint: str = "", path: str | None = None) -> str:
    """`ticker` if the API would accept it (TICKER_PATTERN), else InvalidTickerError: a stored ticker that can never
    be served is worse than none. `where` starts the message (file, line), `hint` ends it (the remedy)."""
    if re.fullmatch(TICKER_PATTERN, ticker):
        return ticker
    raise InvalidTickerError(
        f"{where}{ticker!r} is not a valid ticker: the API accepts {TICKER_RULE} (pattern {TICKER_PATTERN}). "
        f"{hint or 'Use the exchange symbol, e.g. AAPL, BRK.B or ^GSPC.'}",
        ticker=ticker,
        path=path,
        column=None if path is None else "ticker",
    )


def check_tickers(tickers: pd.Series, *, path: str, header_lines: int = 1, from_name: bool = False) -> None:
    """Every ticker of a source's bars through `check_ticker`; the first bad one names its line (or the file name,
    when the ticker comes from it)."""
    for ticker in map(str, pd.unique(tickers)):
        if re.fullmatch(TICKER_PATTERN, ticker):
            continue
        if from_name:
            where = f"{path}: the ticker taken from the file name, "
            hint = "Rename the file (its name is the ticker) or add a ticker column."
        else:
            line, _ = _first(tickers, (tickers == ticker).to_numpy(), header_lines)
            where, hint = f"{path}: line {line}, column 'ticker': ", "Fix or remove those rows."
        check_ticker(ticker, where=where, hint=hint, path=path)


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
