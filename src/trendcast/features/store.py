"""The feature store: every catalog feature computed once per ticker and kept as Parquet, so training streams it.

Layout (hive-partitioned, one file per ticker):

    <root>/ticker=<TICKER>/features.parquet    date, every catalog feature (float32), adjusted_close (float64)

Labels are not stored: they depend on the `LabelConfig`, so they are computed at read time from the stored adjusted
close with `direction_labels` (or, in cross_sectional mode, `cross_sectional_labels` over every row read, once all
tickers are in). Each file's Parquet metadata records a fingerprint of the ticker's bars, one of the
feature catalog (indicator names, TA-Lib version and the source of `indicators` and `feature_set`, so a change to
any indicator's code recomputes) and a format version; `sync` recomputes a ticker only when one of them changed,
and writes through a temporary file and `os.replace`, so an interrupted sync never leaves a half-written file.

`load_window_set` reads only the tickers asked for, only the columns needed and only rows up to `end`, and fills
one preallocated float32 row matrix ticker by ticker: peak memory is about the feature table plus one ticker, not
windows x samples. With `start`/`end` unset it gives exactly the `WindowSet` of `build_window_set` on the same bars.
Features are causal (the value at t uses bars up to t only), so storing them computed on the full history changes
no window that ends at or before any later cut.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import Progress

from trendcast.config import LabelConfig
from trendcast.data.store import BarStore
from trendcast.data.validation import check_ticker
from trendcast.errors import DataError, MissingPricesError
from trendcast.features import feature_set, indicators
from trendcast.features.feature_set import adjusted_ohlcv, compute_features
from trendcast.features.labels import (
    DOWN,
    NO_LABEL,
    LabelMode,
    check_universe,
    cross_sectional_labels,
    direction_labels,
)
from trendcast.features.windows import WindowSet, ticker_column, valid_ends

FORMAT_VERSION = "1"
FILE_NAME = "features.parquet"
DATE_COLUMN = "date"
CLOSE_COLUMN = "adjusted_close"  # back-adjusted close, float64, for labels at read time
BAR_COLUMNS = ("open", "high", "low", "close", "volume", "adj_close")
META_FORMAT = b"trendcast.format"
META_BARS = b"trendcast.bars_sha256"
META_CATALOG = b"trendcast.catalog_sha256"

Bars = BarStore | Iterable[tuple[str, pd.DataFrame]]  # a bar store, or (ticker, bars of that ticker) pairs


@dataclass(frozen=True)
class SyncSummary:
    """Tickers whose features `sync` computed (new or changed) and those whose stored file it kept."""

    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)


def bars_fingerprint(bars: pd.DataFrame) -> str:
    """sha256 of one ticker's bars (date, OHLCV, adj_close; sorted by date), with NaN normalised."""
    digest = hashlib.sha256()
    dates = bars[DATE_COLUMN].to_numpy(dtype="datetime64[ns]")
    digest.update(b"date" + np.ascontiguousarray(dates.view(np.int64)).tobytes())
    for column in BAR_COLUMNS:
        values = bars[column].to_numpy(dtype=np.float64) if column in bars else np.full(len(bars), np.nan)
        values = np.where(np.isnan(values), np.nan, values)  # one bit pattern for every NaN
        digest.update(column.encode() + np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def catalog_fingerprint() -> str:
    """sha256 of the catalog's indicator names, the TA-Lib version and the source of `indicators` and
    `feature_set`: any change to how a feature is computed changes it, and `sync` then recomputes every ticker."""
    import talib

    digest = hashlib.sha256()
    digest.update("\n".join(ind.name for ind in indicators.catalog()).encode())
    digest.update(str(talib.__version__).encode())
    for module in (indicators, feature_set):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()


def _sorted_by_date(bars: pd.DataFrame) -> pd.DataFrame:
    return bars if bars[DATE_COLUMN].is_monotonic_increasing else bars.sort_values(DATE_COLUMN)


def feature_table(bars: pd.DataFrame, bars_sha256: str) -> pa.Table:
    """One ticker's bars (sorted by date) -> the stored table: date, every catalog feature as float32 (cast once
    from compute_features' float64), the adjusted close as float64, and the fingerprints as metadata."""
    arrays = adjusted_ohlcv(bars)
    chosen = indicators.catalog()
    features = compute_features(bars, chosen, arrays)
    columns: dict[str, pa.Array] = {DATE_COLUMN: pa.array(features.index.to_numpy(dtype="datetime64[ns]"))}
    for ind in chosen:
        columns[ind.name] = pa.array(features[ind.name].to_numpy(dtype=np.float32))
    columns[CLOSE_COLUMN] = pa.array(arrays["close"])
    metadata = {META_FORMAT: FORMAT_VERSION.encode(), META_BARS: bars_sha256.encode()}
    metadata[META_CATALOG] = catalog_fingerprint().encode()
    return pa.table(columns).replace_schema_metadata(metadata)


def write_atomically(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` through a temporary file in the same folder and `os.replace`: readers see the old
    file or the new one, never a half-written one. The temporary name starts with '.', which hive readers skip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    os.close(handle)
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class FeatureStore:
    """Per-ticker feature files under `root` (normally `settings.data_dir / "features"`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, ticker: str) -> Path:
        check_ticker(ticker, where="feature store: ")  # also keeps path separators out of the folder name
        return self.root / f"ticker={ticker}" / FILE_NAME

    def stored_tickers(self) -> list[str]:
        """Tickers that have a feature file, sorted."""
        if not self.root.is_dir():
            return []
        folders = (p for p in self.root.iterdir() if p.name.startswith("ticker=") and (p / FILE_NAME).is_file())
        return sorted(p.name.removeprefix("ticker=") for p in folders)

    def stored_metadata(self, ticker: str) -> dict[bytes, bytes]:
        """The key-value metadata of a ticker's file ({} when there is none or it cannot be read)."""
        try:
            return dict(pq.read_schema(self.path(ticker)).metadata or {})
        except (OSError, pa.ArrowException):
            return {}

    # -- writing ------------------------------------------------------------------------------------------------
    def sync(self, bars: Bars, tickers: list[str] | None = None, *, progress: bool = False) -> SyncSummary:
        """Bring the files of `tickers` (every ticker `bars` has when None) up to date with their bars and the
        feature catalog; recompute and rewrite only those whose fingerprints changed.

        `bars` is a `BarStore` (read one ticker at a time, so memory never holds the whole universe's bars) or an
        iterable of (ticker, bars) pairs (filtered to `tickers` when given). Unknown tickers in a bar store raise
        `MissingPricesError`."""
        frames, total = _ticker_frames(bars, tickers)
        summary = SyncSummary()
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("features", total=total)
            for ticker, frame in frames:
                (summary.computed if self.sync_ticker(ticker, frame) else summary.reused).append(ticker)
                bar.advance(task)
        return summary

    def sync_ticker(self, ticker: str, bars: pd.DataFrame) -> bool:
        """Recompute and write one ticker's file when its bars or the catalog changed; True when it did."""
        if bars.empty:
            raise DataError(f"no bars for {ticker!r}: ingest its prices with `trendcast data ingest` first")
        bars = _sorted_by_date(bars)
        fingerprint = bars_fingerprint(bars)
        path = self.path(ticker)
        expected = _expected_metadata(fingerprint)
        stored = self.stored_metadata(ticker)
        if all(stored.get(key) == value for key, value in expected.items()):
            return False
        write_atomically(feature_table(bars, fingerprint), path)
        return True

    # -- reading ------------------------------------------------------------------------------------------------
    def load_window_set(
        self,
        tickers: list[str],
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        *,
        window: int,
        labels: LabelConfig,
        features: list[str] | None = None,
        require_label: bool = True,
        progress: bool = False,
    ) -> WindowSet:
        """The `WindowSet` of `tickers` (sorted, as `build_window_set` orders them) over rows dated in [start, end].

        Only those tickers' files are opened, only the date, the adjusted close and the requested features are
        read, and only rows up to `end`. Labels are computed from the close up to `end` (a label needs
        t + horizon <= end) and then cut to dates >= `start`, so the volatility band keeps its look-back. In
        cross_sectional mode the median of a date is over the rows of all `tickers` read on that date.

        With `start` and `end` unset the result equals `build_window_set(bars, ...)` on the synced bars exactly.
        With `start` set, the features before `start` are already warmed up (they were computed on the whole
        history), so more early samples exist than `build_window_set` finds on bars cut at `start`; their values
        are the honest ones, because every feature is causal (a truncation test checks it)."""
        names = tuple(ind.name for ind in indicators.resolve(features))
        lo, hi = _bound(start), _bound(end)
        chosen = sorted(set(tickers))
        if require_label:
            check_universe(labels.mode, len(chosen))
        counts = [self._row_count(ticker, lo, hi) for ticker in chosen]
        if sum(counts) == 0:
            raise DataError(
                f"the store holds no bars for this selection ({len(chosen)} tickers, {start or 'first day'} to "
                f"{end or 'last day'}); run `trendcast data ingest` first"
            )
        builder = _WindowSetBuilder(sum(counts), names, window, labels.horizon, labels.mode)
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("windows", total=len(chosen))
            for ticker, count in zip(chosen, counts, strict=True):
                table = self._read(ticker, names, hi)
                builder.add(ticker, table, count, lo, labels, require_label)
                bar.advance(task)
        return builder.build()

    def _row_count(self, ticker: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> int:
        """Rows of `ticker` dated in [lo, hi], from the Parquet footer when the range is open; checks that the file
        was written by this catalog and format."""
        path = self.path(ticker)
        if not path.is_file():
            raise DataError(
                f"the feature store {self.root} has no file for {ticker!r}; sync it from the bars first "
                "(`trendcast train` does this, or FeatureStore.sync)"
            )
        with pq.ParquetFile(path) as parquet:
            stored = dict(parquet.schema_arrow.metadata or {})
            if stored.get(META_FORMAT) != FORMAT_VERSION.encode() or stored.get(META_CATALOG) != (
                catalog_fingerprint().encode()
            ):
                raise DataError(
                    f"the stored features of {ticker!r} ({path}) were computed by another feature catalog or "
                    "format; sync the feature store again (`trendcast train` does this)"
                )
            if lo is None and hi is None:
                return int(parquet.metadata.num_rows)
            dates = parquet.read(columns=[DATE_COLUMN])[DATE_COLUMN].to_numpy()
        keep = np.ones(len(dates), dtype=bool)
        if lo is not None:
            keep &= dates >= lo.to_datetime64()
        if hi is not None:
            keep &= dates <= hi.to_datetime64()
        return int(keep.sum())

    def _read(self, ticker: str, names: tuple[str, ...], hi: pd.Timestamp | None) -> pa.Table:
        filters = [(DATE_COLUMN, "<=", hi)] if hi is not None else None
        return pq.read_table(self.path(ticker), columns=[DATE_COLUMN, CLOSE_COLUMN, *names], filters=filters)


class _WindowSetBuilder:
    """Fills one preallocated float32 row matrix ticker by ticker and collects the samples, as `stack_windows`.

    In cross_sectional mode a label needs every ticker's forward return on its date, so `add` keeps each row's
    forward return and `build` cuts the labels once all tickers are in."""

    def __init__(
        self, n_rows: int, names: tuple[str, ...], window: int, horizon: int, label_mode: LabelMode = "absolute"
    ) -> None:
        self.rows = np.empty((n_rows, len(names)), dtype=np.float32)
        self.row_dates = np.empty(n_rows, dtype="datetime64[ns]")
        self.row_forward = np.empty(n_rows, dtype=np.float64)  # every row's forward return (cross_sectional mode)
        self.names, self.window, self.horizon, self.label_mode = names, window, horizon, label_mode
        self.offset = 0
        self.ends: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.forward: list[np.ndarray] = []
        self.tickers: list[np.ndarray] = []
        self.dates: list[np.ndarray] = []

    def add(
        self,
        ticker: str,
        table: pa.Table,
        count: int,
        lo: pd.Timestamp | None,
        labels: LabelConfig,
        require_label: bool,
    ) -> None:
        dates = table[DATE_COLUMN].to_numpy()
        y, forward = direction_labels(table[CLOSE_COLUMN].to_numpy(), labels)  # on the close up to `end`
        if self.label_mode == "cross_sectional":  # known where the forward return is; the class comes in `build`
            y = np.where(np.isfinite(forward), DOWN, NO_LABEL)
        first = 0 if lo is None else int(np.searchsorted(dates, lo.to_datetime64(), side="left"))
        if len(dates) - first != count:
            raise DataError(f"the feature file of {ticker!r} changed while it was read; run the command again")
        block = self.rows[self.offset : self.offset + count]
        for j, name in enumerate(self.names):
            block[:, j] = table[name].to_numpy()[first:]
        finite = np.asarray(np.isfinite(block).all(axis=1))
        block[~np.isfinite(block)] = 0.0  # as stack_windows' nan_to_num
        self.row_dates[self.offset : self.offset + count] = dates[first:]
        self.row_forward[self.offset : self.offset + count] = forward[first:]
        idx = np.flatnonzero(valid_ends(finite, y[first:] if require_label else None, self.window))
        self.ends.append(idx + self.offset)
        self.labels.append(y[first:][idx])
        self.forward.append(forward[first:][idx])
        self.tickers.append(ticker_column(ticker, len(idx)))
        self.dates.append(dates[first:][idx])
        self.offset += count

    def build(self) -> WindowSet:
        end_rows = np.concatenate(self.ends).astype(np.int64)
        labels = np.concatenate(self.labels).astype(np.int64)
        if self.label_mode == "cross_sectional":
            labels = cross_sectional_labels(self.row_dates, self.row_forward)[end_rows]
        return WindowSet(
            rows=self.rows,
            row_dates=self.row_dates,
            end_rows=end_rows,
            labels=labels,
            forward_returns=np.concatenate(self.forward),
            tickers=np.concatenate(self.tickers),
            dates=np.concatenate(self.dates),
            feature_names=self.names,
            window=self.window,
            horizon=self.horizon,
        )


def _expected_metadata(bars_sha256: str) -> dict[bytes, bytes]:
    return {
        META_FORMAT: FORMAT_VERSION.encode(),
        META_BARS: bars_sha256.encode(),
        META_CATALOG: catalog_fingerprint().encode(),
    }


def _bound(value: str | pd.Timestamp | None) -> pd.Timestamp | None:
    return None if value is None or value == "" else pd.Timestamp(value)


def _ticker_frames(bars: Bars, tickers: list[str] | None) -> tuple[Iterator[tuple[str, pd.DataFrame]], int | None]:
    """(ticker, bars) pairs one ticker at a time, and how many there will be when known."""
    if isinstance(bars, BarStore):
        known = bars.ticker_names()
        names = tickers if tickers is not None else known
        stored = set(known)
        unknown = [ticker for ticker in names if ticker not in stored]
        if unknown:  # checked once here, not by every one-ticker load (each check scans the table)
            raise MissingPricesError(unknown[0], known)
        return ((ticker, bars.load([ticker], check=False)) for ticker in names), len(names)
    wanted = None if tickers is None else set(tickers)
    pairs = ((str(t), frame) for t, frame in bars if wanted is None or str(t) in wanted)
    total = len(wanted) if wanted is not None else len(bars) if isinstance(bars, Sized) else None
    return pairs, total
