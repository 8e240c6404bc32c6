"""The `bars` table, keyed by (ticker, date): SQLite by default, PostgreSQL by URL. Upserts are idempotent.

Each ticker is written in one transaction, so a failure leaves every ticker either fully old or fully new.
Prices are stored as double precision, so a round trip returns the same floats bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from trendcast.errors import ConfigError, MissingPricesError, SourceError

metadata = sa.MetaData()
bars_table = sa.Table(
    "bars",
    metadata,
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("open", sa.Double, nullable=False),
    sa.Column("high", sa.Double, nullable=False),
    sa.Column("low", sa.Double, nullable=False),
    sa.Column("close", sa.Double, nullable=False),
    sa.Column("volume", sa.Double, nullable=False),
    sa.Column("adj_close", sa.Double, nullable=True),
)
_VALUE_COLUMNS = ("open", "high", "low", "close", "volume", "adj_close")
SUPPORTED_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")
_SUPPORTED_HINT = (
    "trendcast stores bars in SQLite or PostgreSQL: set TRENDCAST_DATABASE_URL to sqlite:///PATH/trendcast.db or "
    "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB (schemes: " + ", ".join(SUPPORTED_SCHEMES) + ")"
)


@dataclass(frozen=True)
class TickerSummary:
    ticker: str
    first: pd.Timestamp
    last: pd.Timestamp
    rows: int


class BarStore:
    """SQL store of daily bars."""

    def __init__(self, url: str) -> None:
        self.url = url
        check_database_url(url)
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        except ImportError as exc:  # a supported scheme whose driver is not installed (postgresql+psycopg2)
            raise ConfigError(f"cannot open the bar store at {_safe(url)}: {exc}. {_SUPPORTED_HINT}.") from exc
        try:
            metadata.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(f"cannot open the bar store at {_safe(url)}: {exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def upsert(self, bars: pd.DataFrame) -> dict[str, int]:
        """Insert or update validated bars, one transaction per ticker. Returns rows written per ticker."""
        written: dict[str, int] = {}
        for ticker, group in bars.groupby("ticker", sort=True):
            rows = _records(group)
            with self.engine.begin() as conn:
                conn.execute(_upsert_statement(self.engine.dialect.name), rows)
            written[str(ticker)] = len(rows)
        return written

    def tickers(self) -> list[TickerSummary]:
        t = bars_table.c
        query = sa.select(t.ticker, sa.func.min(t.date), sa.func.max(t.date), sa.func.count()).group_by(t.ticker)
        with self.engine.connect() as conn:
            result = conn.execute(query.order_by(t.ticker)).all()
        return [TickerSummary(r[0], pd.Timestamp(r[1]), pd.Timestamp(r[2]), int(r[3])) for r in result]

    def ticker_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(bars_table.c.ticker).distinct().order_by(bars_table.c.ticker))]

    def load(
        self, tickers: list[str] | None = None, start: str | None = None, end: str | None = None, *, check: bool = True
    ) -> pd.DataFrame:
        """Bars as a long frame sorted by (ticker, date); unknown tickers raise MissingPricesError. `check=False`
        skips that check (one scan of the table) for a caller that already made it, e.g. loading ticker by ticker."""
        t = bars_table.c
        query = sa.select(bars_table)
        if tickers is not None:
            if check:
                self._check(tickers)
            query = query.where(t.ticker.in_(tickers))
        if start:
            query = query.where(t.date >= pd.Timestamp(start).date())
        if end:
            query = query.where(t.date <= pd.Timestamp(end).date())
        with self.engine.connect() as conn:
            frame = pd.DataFrame(
                conn.execute(query.order_by(t.ticker, t.date)).all(), columns=list(bars_table.c.keys())
            )
        frame["date"] = pd.to_datetime(frame["date"])
        for column in _VALUE_COLUMNS:
            frame[column] = frame[column].astype("float64")
        return frame

    def _check(self, tickers: list[str]) -> None:
        names = self.ticker_names()
        for ticker in tickers:
            if ticker not in names:
                raise MissingPricesError(ticker, names)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(bars_table)).scalar_one())


def check_database_url(url: str) -> None:
    """Refuse, before any driver loads, a URL that is not SQLite or PostgreSQL (ConfigError with the fix)."""
    try:
        scheme = sa.engine.make_url(url).drivername
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"the database URL is not a URL ({exc}). {_SUPPORTED_HINT}.") from exc
    if scheme not in SUPPORTED_SCHEMES:
        raise ConfigError(f"unsupported database {_safe(url)!r}. {_SUPPORTED_HINT}.")


def _upsert_statement(dialect: str) -> Any:
    stmt: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(bars_table)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(bars_table)
    else:
        raise SourceError(f"unsupported database {dialect!r}; use SQLite or PostgreSQL.")
    update = {c: getattr(stmt.excluded, c) for c in _VALUE_COLUMNS}
    return stmt.on_conflict_do_update(index_elements=["ticker", "date"], set_=update)


def _records(group: pd.DataFrame) -> list[dict[str, object]]:
    frame = group[["ticker", "date", *_VALUE_COLUMNS]]
    dates = frame["date"].dt.date.to_numpy()
    values = {c: frame[c].to_numpy(dtype="float64") for c in _VALUE_COLUMNS}
    tickers = frame["ticker"].to_numpy()
    rows: list[dict[str, object]] = []
    for i in range(len(frame)):
        row: dict[str, object] = {"ticker": str(tickers[i]), "date": dates[i]}
        for column in _VALUE_COLUMNS:
            value = float(values[column][i])
            row[column] = None if np.isnan(value) else value
        rows.append(row)
    return rows


def _safe(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


@contextmanager
def open_store(url: str) -> Iterator[BarStore]:
    store = BarStore(url)
    try:
        yield store
    finally:
        store.close()
