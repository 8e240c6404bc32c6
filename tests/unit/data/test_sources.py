"""Sources: CSV/Parquet spellings and layouts, the bundled universe, Yahoo failing fast offline."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from trendcast.data.sources import BUNDLED, BundledSource, CsvSource, InMemorySource, YahooSource
from trendcast.data.synthetic import random_walk_bars
from trendcast.errors import SourceError


def test_multi_ticker_file_with_name_column(tmp_path: Path) -> None:
    bars = random_walk_bars(n_tickers=3, n_days=20)
    kaggle = bars.rename(columns={"ticker": "Name"}).drop(columns=["adj_close"])
    kaggle.to_csv(tmp_path / "all.csv.gz", index=False)
    frame = CsvSource(tmp_path / "all.csv.gz").load()
    assert sorted(frame["ticker"].unique()) == ["RW000", "RW001", "RW002"]
    assert len(frame) == 60
    assert frame["adj_close"].isna().all()


def test_folder_of_per_ticker_files_csv_and_parquet(tmp_path: Path) -> None:
    bars = random_walk_bars(n_tickers=4, n_days=15)
    for i, (ticker, group) in enumerate(bars.groupby("ticker")):
        frame = group.drop(columns=["ticker"]).rename(columns={"date": "timestamp", "adj_close": "Adj Close"})
        if i % 2:
            frame.to_parquet(tmp_path / f"{ticker}.parquet")
        else:
            frame.to_csv(tmp_path / f"{ticker}_data.csv", index=False)
    frame = CsvSource(tmp_path).load()
    assert sorted(frame["ticker"].unique()) == sorted(bars["ticker"].unique())
    merged = frame.sort_values(["ticker", "date"]).reset_index(drop=True)
    expected = bars.sort_values(["ticker", "date"]).reset_index(drop=True)
    assert (merged["close"] - expected["close"]).abs().max() < 1e-9


def test_csv_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        CsvSource(tmp_path / "missing.csv").load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no"):
        CsvSource(tmp_path / "empty").load()


def test_bundled_universe_loads_offline() -> None:
    frame = BundledSource().load()
    spans = frame.groupby("ticker")["date"].agg(["min", "max"])
    assert set(spans.index) == set(BUNDLED)
    assert spans.loc["^GSPC", "min"] == pd.Timestamp("1999-01-04")
    assert spans.loc["^GSPC", "max"] == pd.Timestamp("2018-12-31")
    assert spans.loc["AAPL", "min"] == pd.Timestamp("2000-03-01")
    assert frame["close"].gt(0).all()


def test_unknown_ticker_suggests_close_match() -> None:
    with pytest.raises(SourceError, match="did you mean AAPL"):
        BundledSource().load(["AAPLE"])


def test_in_memory_source_round_trip() -> None:
    bars = random_walk_bars(n_tickers=2, n_days=10)
    assert len(InMemorySource(bars).load(["RW001"])) == 10


def test_yahoo_fails_fast_and_clearly_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> socket.socket:
        raise OSError("Network is unreachable")

    def resolved(*_: object, **__: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", 443))]

    monkeypatch.setattr(socket, "getaddrinfo", resolved)
    monkeypatch.setattr(socket, "create_connection", refuse)
    started = time.perf_counter()
    with pytest.raises(SourceError, match="needs the internet"):
        YahooSource(timeout_s=5).load(["AAPL"])
    assert time.perf_counter() - started < 15


def test_yahoo_needs_tickers() -> None:
    with pytest.raises(SourceError, match="--tickers"):
        YahooSource().load(None)


def test_yahoo_gives_up_on_a_dns_server_that_never_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    released = threading.Event()

    def hang(*_: object, **__: object) -> list[object]:
        released.wait(30)  # a resolver that never answers (released when the test ends)
        raise socket.gaierror("released")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    started = time.perf_counter()
    try:
        with pytest.raises(SourceError, match=r"cannot reach Yahoo Finance.*needs the internet"):
            YahooSource(timeout_s=0.5).load(["AAPL"])
        assert time.perf_counter() - started < 0.5 + 0.5
    finally:
        released.set()
