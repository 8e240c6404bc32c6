"""Per-worker cache of each stored ticker's feature matrix, for the ticker form of the prediction routes.

`ticker_window` (serving.inference) loads a ticker's whole history and runs every indicator over it on each request
(milliseconds to tens of milliseconds). The indicators are causal: a feature row depends only on its own and earlier
bars, so the matrix computed once over all stored bars holds, row for row and bit for bit, what `ticker_window`
computes from the bars up to any `as_of`. A request then costs one indexed query and a slice:

    (model version, ticker) -> TickerFeatures     dates, unscaled features (float64, NaN during warm-up), gaps
      .window(as_of)  -> the `window` rows ending at the last bar on or before `as_of`, scaled by the model's scaler

Honesty, enforced here rather than promised:
- no row after `as_of` enters a window: the slice ends at the last bar dated on or before it;
- a matrix is never older than the store: before each use the cache reads a change token, read again before every
  rebuild, and rebuilds when it differs from the one read before the matrix's bars were loaded. SQLite (a file):
  `PRAGMA data_version` on a connection of the cache's own, which changes with every commit that changed the
  database from any other connection or process (new bars, a backfill, a corrected price), about 10 us. Other
  databases: the ticker's bar count and latest date (`bar_stamp`, one query on the primary-key index), which
  changes with new or backfilled bars but not with a price corrected in place (reload the model after one);
- a new model version is a new key;
- the same checks and errors as `ticker_window`: MissingPricesError for an unknown ticker, InsufficientHistoryError
  with `missing` counting the indicators' warm-up (`days_still_needed`) when fewer than `window` finite rows end at
  `as_of` (tests compare the two for every `as_of` around a ticker's history, the first usable day included).

Memory is bounded: at most `max_tickers` matrices per worker (least recently used dropped first), about
(8 x n_features + 16) bytes per stored bar each, e.g. 2.1 MB for 20 years of daily bars and 51 features.
`max_tickers` = 0 turns the cache off (every request runs `ticker_window`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from trendcast.data.store import BarStore, bars_table
from trendcast.errors import InsufficientHistoryError, MissingPricesError
from trendcast.features.feature_set import compute_features, days_still_needed, warmup_bars
from trendcast.features.indicators import resolve
from trendcast.models.base import DirectionModel
from trendcast.serving.inference import TickerWindow, ticker_window

BarStamp = tuple[int, date | None]  # (bars stored for the ticker, date of the latest)

_STAMP_QUERY = sa.select(sa.func.count(), sa.func.max(bars_table.c.date)).where(
    bars_table.c.ticker == sa.bindparam("ticker")
)


def bar_stamp(store: BarStore, ticker: str) -> BarStamp:
    """How many bars the store holds for `ticker` and the latest date: changes whenever bars are added."""
    with store.engine.connect() as conn:
        count, latest = conn.execute(_STAMP_QUERY, {"ticker": ticker}).one()
    return int(count), latest


class SqliteVersion:
    """`PRAGMA data_version` of a SQLite file on a connection of its own (it never writes): a number that changes
    whenever another connection, in this process or any other, commits a change to the database."""

    def __init__(self, path: str) -> None:
        self.path = path
        uri = f"{Path(path).resolve().as_uri()}?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)  # used under the lock only
        self._lock = threading.Lock()

    @classmethod
    def of(cls, store: BarStore) -> SqliteVersion | None:
        """For a store in a SQLite file; None for other databases (and in-memory SQLite, private per connection)."""
        url = store.engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return cls(url.database)

    def __call__(self) -> int:
        with self._lock:
            version: int = self._conn.execute("PRAGMA data_version").fetchone()[0]
        return version

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class TickerFeatures:
    """One ticker's features over its whole stored history, computed with one model's feature catalog."""

    ticker: str
    dates: np.ndarray  # (n_bars,) datetime64[ns], ascending
    values: np.ndarray  # (n_bars, n_features) float64, NaN where an indicator has no value
    last_gap: np.ndarray  # (n_bars,) index of the last row at or before each row with a NaN, -1 when none
    warmup: int  # the indicators' warm-up in bars (features.feature_set.warmup_bars)

    @classmethod
    def compute(cls, ticker: str, bars: pd.DataFrame, model: DirectionModel) -> TickerFeatures:
        """From a ticker's bars sorted by date (BarStore.load), with the model's feature catalog."""
        indicators = resolve(list(model.feature_names))
        features = compute_features(bars.reset_index(drop=True), indicators)
        values = features.to_numpy(dtype=np.float64)
        rows = np.arange(len(values))
        last_gap = np.maximum.accumulate(np.where(np.isfinite(values).all(axis=1), -1, rows)) if len(rows) else rows
        dates = features.index.to_numpy(dtype="datetime64[ns]")
        for array in (values, last_gap, dates):
            array.flags.writeable = False  # shared by every request of this worker
        return cls(ticker, dates, values, last_gap, warmup_bars(indicators))

    def window(self, as_of: date | None, model: DirectionModel) -> TickerWindow:
        """What `ticker_window(store, ticker, as_of, model)` returns for the bars this matrix was computed from."""
        end = len(self.dates) if as_of is None else int(np.searchsorted(self.dates, _midnight(as_of), side="right"))
        usable = end if end == 0 or self.last_gap[end - 1] < 0 else end - 1 - int(self.last_gap[end - 1])
        if usable < model.window:
            label = as_of.isoformat() if as_of is not None else "the latest bar"
            missing = days_still_needed(self.values[:end], model.window, self.warmup)
            raise InsufficientHistoryError(self.ticker, model.window, usable, label, missing=missing)
        rows = self.values[end - model.window : end].copy()
        dates: list[date] = self.dates[end - model.window : end].astype("datetime64[D]").tolist()
        closed = as_of is not None and self.dates[-1] > _midnight(as_of)
        return TickerWindow(self.ticker, model.scale_rows(rows), rows, dates, dates[-1], bool(closed))


def _midnight(day: date) -> np.datetime64:
    return np.datetime64(day.isoformat(), "ns")


class TickerFeatureCache:
    """Feature matrices by (model version, ticker), least recently used dropped beyond `max_tickers`.

    Called from worker threads (store queries block): the map is guarded by a lock, and a ticker being computed by
    one thread is waited for, not computed again, by the others."""

    def __init__(self, max_tickers: int) -> None:
        self.max_tickers = max_tickers
        self._entries: OrderedDict[tuple[str, str], tuple[Hashable, TickerFeatures]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[str, str], threading.Lock] = {}
        self._sqlite: SqliteVersion | None = None
        self._store_url: str | None = None  # the store `_sqlite` belongs to

    def __len__(self) -> int:
        return len(self._entries)

    def window(
        self, store: BarStore, ticker: str, as_of: date | None, model: DirectionModel, version: str
    ) -> TickerWindow:
        """The model's input for `ticker` up to `as_of`: equal to `ticker_window(store, ticker, as_of, model)`."""
        if self.max_tickers == 0:
            return ticker_window(store, ticker, as_of, model)
        return self._features(store, ticker, model, version).window(as_of, model)

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()

    def _token(self, store: BarStore, ticker: str) -> Hashable:
        """Equal tokens, read before two loads of the ticker's bars, mean the two loads return the same bars."""
        sqlite = self._sqlite_version(store)
        if sqlite is not None:
            return sqlite()
        stamp = bar_stamp(store, ticker)
        if stamp[0] == 0:
            raise MissingPricesError(ticker, store.ticker_names())
        return stamp

    def _sqlite_version(self, store: BarStore) -> SqliteVersion | None:
        with self._lock:
            if self._store_url != store.url:
                self.close()
                self._sqlite, self._store_url = SqliteVersion.of(store), store.url
            return self._sqlite

    def _features(self, store: BarStore, ticker: str, model: DirectionModel, version: str) -> TickerFeatures:
        key = (version, ticker)
        token = self._token(store, ticker)
        entry = self._fresh(key, token)
        if entry is not None:
            return entry
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            token = self._token(store, ticker)  # read before the bars: a commit after it shows at the next request
            entry = self._fresh(key, token)  # another thread may have computed it meanwhile
            if entry is None:
                entry = TickerFeatures.compute(ticker, store.load([ticker]), model)
                self._put(key, token, entry)
        with self._lock:
            self._building.pop(key, None)
        return entry

    def _fresh(self, key: tuple[str, str], token: Hashable) -> TickerFeatures | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] != token:
                return None
            self._entries.move_to_end(key)
            return found[1]

    def _put(self, key: tuple[str, str], token: Hashable, entry: TickerFeatures) -> None:
        with self._lock:
            self._entries[key] = (token, entry)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_tickers:
                self._entries.popitem(last=False)
