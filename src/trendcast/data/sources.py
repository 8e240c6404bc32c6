"""Where daily bars come from. Every source returns typed, *unvalidated* long bars
(ticker, date, open, high, low, close, volume, adj_close); `ingest` validates them before anything is stored.

- `BundledSource`: real history that installs with the package's dependencies, no network.
- `CsvSource`: one CSV/Parquet file (single or multi-ticker) or a folder of per-ticker files.
- `YahooSource`: yfinance, for users online; fails fast and clearly offline.
- `InMemorySource`: a seam for tests and notebooks.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd
from rich.progress import Progress

from trendcast.data.validation import check_date_format, check_tickers, coerce_types, normalise_columns
from trendcast.errors import ConfigError, SchemaError, SourceError


class PriceSource(Protocol):
    name: str

    def load(self, tickers: list[str] | None = None) -> pd.DataFrame:
        """Typed long bars for the given tickers (None = all the source has)."""
        ...


@dataclass(frozen=True)
class BundledSeries:
    ticker: str
    origin: str
    adjustment: str
    loader: Callable[[], pd.DataFrame]


def _arch(module: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import importlib

        return importlib.import_module(f"arch.data.{module}").load()

    return load


def _bokeh(symbol: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import importlib

        data = getattr(importlib.import_module("bokeh_sampledata.stocks"), symbol)
        return pd.DataFrame(data)

    return load


BUNDLED: dict[str, BundledSeries] = {
    "^GSPC": BundledSeries(
        "^GSPC", "arch.data.sp500 (S&P 500 index, Yahoo)", "Adj Close = Close (index)", _arch("sp500")
    ),
    "^IXIC": BundledSeries(
        "^IXIC", "arch.data.nasdaq (NASDAQ Composite, Yahoo)", "Adj Close = Close (index)", _arch("nasdaq")
    ),
    "AAPL": BundledSeries("AAPL", "bokeh_sampledata.stocks.AAPL", "adj_close split+dividend adjusted", _bokeh("AAPL")),
    "GOOG": BundledSeries("GOOG", "bokeh_sampledata.stocks.GOOG", "adj_close split+dividend adjusted", _bokeh("GOOG")),
    "IBM": BundledSeries("IBM", "bokeh_sampledata.stocks.IBM", "adj_close split+dividend adjusted", _bokeh("IBM")),
    "MSFT": BundledSeries("MSFT", "bokeh_sampledata.stocks.MSFT", "adj_close split+dividend adjusted", _bokeh("MSFT")),
}


def _typed(
    frame: pd.DataFrame,
    *,
    ticker: str | None,
    path: str,
    header_lines: int = 1,
    date_format: str | None = None,
    ticker_from_name: bool = False,
) -> pd.DataFrame:
    """Every source's bars pass here: columns named, dates and numbers parsed, tickers checked against the API's
    pattern (so nothing is stored that could never be served)."""
    out = normalise_columns(frame, path=path)
    from_column = "ticker" in out.columns
    if not from_column:
        if ticker is None:
            raise SchemaError(f"{path}: no ticker/Name column and no ticker given.", path=path, column="ticker")
        out["ticker"] = ticker
    out = coerce_types(out, path=path, header_lines=header_lines, date_format=date_format)
    check_tickers(out["ticker"], path=path, header_lines=header_lines, from_name=ticker_from_name and not from_column)
    return out


class BundledSource:
    """Real daily history shipped by `arch` (S&P 500, NASDAQ Composite) and `bokeh-sampledata` (4 stocks)."""

    name = "bundled"

    def load(self, tickers: list[str] | None = None) -> pd.DataFrame:
        wanted = _check_known(tickers, list(BUNDLED))
        frames = []
        for ticker in wanted:
            series = BUNDLED[ticker]
            try:
                raw = series.loader()
            except Exception as exc:  # package data missing or broken
                raise SourceError(
                    f"bundled {ticker}: cannot load {series.origin}: {exc}. Reinstall trendcast."
                ) from exc
            frames.append(_typed(raw, ticker=ticker, path=f"bundled:{ticker}"))
        return pd.concat(frames, ignore_index=True)


def _check_known(tickers: list[str] | None, known: list[str]) -> list[str]:
    if tickers is None:
        return known
    import difflib

    unknown = [t for t in tickers if t not in known]
    if unknown:
        hints = {t: difflib.get_close_matches(t, known, n=1) for t in unknown}
        said = ", ".join(f"{t} (did you mean {h[0]}?)" if h else t for t, h in hints.items())
        raise SourceError(f"unknown ticker(s) {said}; this source has {', '.join(known)}.")
    return tickers


class CsvSource:
    """A CSV/Parquet file (one ticker, or many with a `ticker`/`Name` column) or a folder of such files."""

    name = "csv"
    suffixes = (".csv", ".csv.gz", ".parquet", ".pq", ".txt")

    def __init__(self, path: str | Path, *, progress: bool = True, date_format: str | None = None) -> None:
        self.path = Path(path)
        self.progress = progress
        self.date_format = None if date_format is None else check_date_format(date_format)  # None: inferred per file

    def files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if self.path.is_dir():
            found = sorted(p for p in self.path.iterdir() if p.is_file() and p.name.lower().endswith(self.suffixes))
            if found:
                return found
            raise SourceError(f"{self.path}: folder holds no .csv, .csv.gz or .parquet files.")
        raise SourceError(f"{self.path}: no such file or folder.")

    def load(self, tickers: list[str] | None = None) -> pd.DataFrame:
        files = self.files()
        frames: list[pd.DataFrame] = []
        with Progress(disable=not self.progress or len(files) < 2, transient=True) as bar:
            task = bar.add_task(f"reading {len(files)} files", total=len(files))
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
                for frame in pool.map(functools.partial(read_price_file, date_format=self.date_format), files):
                    frames.append(frame)
                    bar.advance(task)
        out = pd.concat(frames, ignore_index=True)
        if tickers is not None:
            _check_known(tickers, sorted(out["ticker"].unique()))
            out = out[out["ticker"].isin(tickers)]
        return out


def ticker_from_filename(path: Path) -> str:
    stem = path.name
    for suffix in (".csv.gz", ".csv", ".parquet", ".pq", ".txt"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for tail in ("_data", "-data", "_daily", ".us"):
        if stem.lower().endswith(tail):
            stem = stem[: -len(tail)]
    return stem.upper()


def read_price_file(path: Path, *, date_format: str | None = None) -> pd.DataFrame:
    """Read one file into typed bars; structural problems raise SchemaError naming the file."""
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            raw = pd.read_parquet(path)
        else:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
            header = pd.read_csv(path, dtype=str, keep_default_na=False, header=None, nrows=1).iloc[0].tolist()
            if len(header) == raw.shape[1]:
                raw.columns = header  # pandas renames a repeated `Close` to `Close.1`; keep it visible as a duplicate
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read the file ({exc}).") from exc
    if raw.empty:
        raise SchemaError(f"{path}: the file holds no rows.", path=str(path))
    return _typed(
        raw, ticker=ticker_from_filename(path), path=str(path), date_format=date_format, ticker_from_name=True
    )


class YahooSource:
    """Yahoo Finance through yfinance. Needs the internet; fails within `timeout_s` with a clear message."""

    name = "yahoo"

    def __init__(self, start: str | None = None, end: str | None = None, timeout_s: float = 10.0) -> None:
        self.start, self.end, self.timeout_s = start, end, timeout_s

    def load(self, tickers: list[str] | None = None) -> pd.DataFrame:
        if not tickers:
            raise SourceError("the yahoo source needs --tickers, e.g. --tickers AAPL,MSFT.")
        _check_reachable(self.timeout_s)
        frames = [self._one(t) for t in tickers]
        return pd.concat(frames, ignore_index=True)

    def _one(self, ticker: str) -> pd.DataFrame:
        import yfinance as yf

        try:
            raw = yf.Ticker(ticker).history(start=self.start, end=self.end, auto_adjust=False, timeout=self.timeout_s)
        except Exception as exc:  # yfinance raises many kinds
            raise SourceError(f"yahoo {ticker}: download failed ({exc}).") from exc
        if raw.empty:
            raise SourceError(f"yahoo {ticker}: no rows returned (unknown ticker, or no network).")
        return _typed(raw.reset_index(), ticker=ticker, path=f"yahoo:{ticker}")


def _check_reachable(timeout_s: float, host: str = "query1.finance.yahoo.com") -> None:
    """Resolve and connect to Yahoo within `timeout_s` in all, or raise the offline message.

    Name resolution (getaddrinfo) blocks and ignores socket timeouts, so it runs in a daemon thread that we stop
    waiting for at the deadline (a resolver that never answers would otherwise hold the command for its own
    retries, about 10 s or more, and a daemon thread does not keep the process alive at exit)."""
    import socket
    import threading
    import time

    deadline = time.monotonic() + timeout_s
    answer: list[tuple[str, int] | OSError] = []

    def resolve() -> None:
        try:
            sockaddr = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)[0][4]
            answer.append((str(sockaddr[0]), int(sockaddr[1])))
        except OSError as exc:
            answer.append(exc)

    worker = threading.Thread(target=resolve, name="trendcast-yahoo-dns", daemon=True)
    worker.start()
    worker.join(timeout_s)
    try:
        if not answer:
            raise TimeoutError(f"no DNS answer within {timeout_s:g} s")
        if isinstance(answer[0], OSError):
            raise answer[0]
        socket.create_connection(answer[0], timeout=max(deadline - time.monotonic(), 0.001)).close()
    except OSError as exc:
        raise SourceError(
            f"cannot reach Yahoo Finance ({host}:443: {exc}). The yahoo source needs the internet; "
            "offline, use --source bundled or --source csv --path FILE."
        ) from exc


class InMemorySource:
    """Bars held in memory: a seam for tests, notebooks and synthetic data."""

    name = "memory"

    def __init__(self, bars: pd.DataFrame) -> None:
        self.bars = _typed(bars, ticker=None, path="memory")

    def load(self, tickers: list[str] | None = None) -> pd.DataFrame:
        if tickers is None:
            return self.bars.copy()
        _check_known(tickers, sorted(self.bars["ticker"].unique()))
        return self.bars[self.bars["ticker"].isin(tickers)].copy()


def restrict_dates(frame: pd.DataFrame, start: str | None, end: str | None) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    if start:
        mask &= frame["date"] >= pd.Timestamp(start)
    if end:
        mask &= frame["date"] <= pd.Timestamp(end)
    return frame.loc[mask]


def make_source(
    kind: str,
    *,
    path: str | None = None,
    start: str | None = None,
    end: str | None = None,
    timeout_s: float = 10.0,
    date_format: str | None = None,
) -> PriceSource:
    if date_format is not None and kind != "csv":
        raise ConfigError(f"--date-format applies to --source csv only (text dates); {kind!r} has typed dates.")
    if kind == "bundled":
        return BundledSource()
    if kind == "csv":
        if not path:
            raise SourceError("--source csv needs --path FILE_OR_FOLDER.")
        return CsvSource(path, date_format=date_format)
    if kind == "yahoo":
        return YahooSource(start, end, timeout_s)
    raise SourceError(f"unknown source {kind!r}; use bundled, csv or yahoo.")


def known(values: Iterable[str]) -> list[str]:
    return sorted(set(values))
