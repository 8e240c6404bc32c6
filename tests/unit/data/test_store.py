"""SQLite store: bit-for-bit round trip, idempotent upserts, unknown tickers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trendcast.data.store import BarStore
from trendcast.data.synthetic import random_walk_bars
from trendcast.data.validation import validate_bars
from trendcast.errors import ConfigError, MissingPricesError


def _clean() -> pd.DataFrame:
    bars, _ = validate_bars(random_walk_bars(n_tickers=3, n_days=50, seed=3))
    return bars


def assert_bit_identical(stored: pd.DataFrame, bars: pd.DataFrame) -> None:
    left = stored.sort_values(["ticker", "date"]).reset_index(drop=True)
    right = bars.sort_values(["ticker", "date"]).reset_index(drop=True)
    assert left["ticker"].tolist() == right["ticker"].tolist()
    assert (left["date"].to_numpy() == right["date"].to_numpy()).all()
    for column in ("open", "high", "low", "close", "volume", "adj_close"):
        a, b = left[column].to_numpy(), right[column].to_numpy()
        assert a.tobytes() == b.tobytes(), column


def test_sqlite_round_trip_is_bit_identical(tmp_path: Path) -> None:
    store = BarStore(f"sqlite:///{tmp_path / 'bars.db'}")
    bars = _clean()
    store.upsert(bars)
    assert_bit_identical(store.load(), bars)


def test_upsert_is_idempotent_and_updates(tmp_path: Path) -> None:
    store = BarStore(f"sqlite:///{tmp_path / 'bars.db'}")
    bars = _clean()
    store.upsert(bars)
    store.upsert(bars)
    assert store.count() == len(bars)
    changed = bars.copy()
    changed.loc[0, "close"] = changed.loc[0, "high"]
    store.upsert(changed)
    assert store.count() == len(bars)
    assert store.load(["RW000"])["close"].iloc[0] == changed.loc[0, "close"]


def test_missing_ticker_names_close_matches(tmp_path: Path) -> None:
    store = BarStore(f"sqlite:///{tmp_path / 'bars.db'}")
    store.upsert(_clean())
    with pytest.raises(MissingPricesError, match="RW001"):
        store.load(["RW01"])


def test_summaries(tmp_path: Path) -> None:
    store = BarStore(f"sqlite:///{tmp_path / 'bars.db'}")
    bars = _clean()
    store.upsert(bars)
    summary = {s.ticker: s for s in store.tickers()}
    assert summary["RW002"].rows == 50
    assert summary["RW002"].first == bars["date"].min()
    assert np.isclose(
        store.load(start=str(bars["date"].iloc[10].date()))["date"].min().value, bars["date"].iloc[10].value
    )


@pytest.mark.parametrize(
    "url", ["mysql://user:secret@db/trendcast", "oracle://db/x", "postgresql+asyncpg://db/x", "not a url"]
)
def test_unsupported_database_urls_say_what_is_supported(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        BarStore(url)
    message = str(info.value)
    assert "sqlite:///" in message and "postgresql+psycopg://" in message and "TRENDCAST_DATABASE_URL" in message
    assert "secret" not in message
