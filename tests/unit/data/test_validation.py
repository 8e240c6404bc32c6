"""Validation: structural problems raise naming file/column/line; row-level problems are repaired or dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trendcast.data.sources import CsvSource, read_price_file
from trendcast.data.store import BarStore
from trendcast.data.validation import validate_bars
from trendcast.errors import SchemaError, SourceError, ValidationError
from trendcast.pipelines.ingest import ingest

GOOD = """Date,Open,High,Low,Close,Adj Close,Volume
2020-01-02,10,11,9,10.5,10.4,1000
2020-01-03,10.5,11.5,10,11,10.9,1200
2020-01-06,11,12,10.5,11.5,11.4,900
"""


def _write(tmp_path: Path, text: str, name: str = "ABC.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _store(tmp_path: Path) -> BarStore:
    return BarStore(f"sqlite:///{tmp_path / 'store.db'}")


def _seeded_store(tmp_path: Path) -> BarStore:
    store = _store(tmp_path)
    ingest(CsvSource(_write(tmp_path, GOOD, "SEED.csv")), store)
    return store


def _snapshot(store: BarStore) -> pd.DataFrame:
    return store.load()


def test_good_file_loads_with_usual_spellings(tmp_path: Path) -> None:
    frame = read_price_file(_write(tmp_path, GOOD))
    assert list(frame["ticker"].unique()) == ["ABC"]
    assert frame["adj_close"].tolist() == [10.4, 10.9, 11.4]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Date,Open,High,Low,Volume\n2020-01-02,1,2,1,5\n", "missing column(s) close"),
        ("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,1,1.5,5\nnot-a-date,1,2,1,1.5,5\n", "line 3, column 'date'"),
        ("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,1,abc,5\n", "line 2, column 'close'"),
    ],
)
def test_structural_problems_raise_and_write_nothing(tmp_path: Path, text: str, needle: str) -> None:
    store = _seeded_store(tmp_path)
    before = _snapshot(store)
    bad = _write(tmp_path, text, "BAD.csv")
    with pytest.raises(SchemaError) as info:
        ingest(CsvSource(bad), store)
    assert needle in str(info.value)
    assert str(bad) in str(info.value)
    pd.testing.assert_frame_equal(_snapshot(store), before)


def test_unreadable_file_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "X.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(SourceError, match="cannot read"):
        read_price_file(path)


def _bars(rows: list[tuple[str, float, float, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["date", "open", "high", "low", "close", "volume"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["ticker"] = "T"
    frame["adj_close"] = np.nan
    return frame


ROW_CASES = [
    ("duplicate_date", [("2020-01-02", 1, 2, 1, 1.5, 5), ("2020-01-02", 1, 2, 1, 1.6, 5)], 1),
    ("bad_price", [("2020-01-02", np.nan, 2, 1, 1.5, 5), ("2020-01-03", 1, 2, 1, 1.5, 5)], 1),
    ("bad_price", [("2020-01-02", 1, 2, 1, -1.5, 5), ("2020-01-03", 1, 2, 1, 1.5, 5)], 1),
    ("bad_volume", [("2020-01-02", 1, 2, 1, 1.5, -5), ("2020-01-03", 1, 2, 1, 1.5, 5)], 1),
    ("high_below_low", [("2020-01-02", 1.5, 1, 2, 1.5, 5), ("2020-01-03", 1, 2, 1, 1.5, 5)], 1),
    ("close_outside_range", [("2020-01-02", 1, 2, 1, 2.5, 5), ("2020-01-03", 1, 2, 1, 1.5, 5)], 2),
]


@pytest.mark.parametrize(("kind", "rows", "kept"), ROW_CASES)
def test_row_problems_are_counted_and_fixed(
    kind: str, rows: list[tuple[str, float, float, float, float, float]], kept: int
) -> None:
    clean, report = validate_bars(_bars(rows))
    assert report.counts[kind] == 1
    assert report.examples[kind] == ["T 2020-01-02"]
    assert len(clean) == kept
    assert (clean["high"] >= clean[["open", "close"]].max(axis=1)).all()
    assert (clean["low"] <= clean[["open", "close"]].min(axis=1)).all()


def test_duplicate_keeps_the_last_occurrence() -> None:
    clean, _ = validate_bars(_bars([("2020-01-02", 1, 2, 1, 1.5, 5), ("2020-01-02", 1, 2, 1, 1.6, 5)]))
    assert clean["close"].tolist() == [1.6]


@pytest.mark.parametrize(("kind", "rows", "kept"), ROW_CASES)
def test_strict_turns_row_problems_into_errors_and_writes_nothing(
    tmp_path: Path, kind: str, rows: list[tuple[str, float, float, float, float, float]], kept: int
) -> None:
    store = _seeded_store(tmp_path)
    before = _snapshot(store)
    frame = _bars(rows).assign(ticker="ZZZ")
    text = frame.drop(columns=["adj_close"]).to_csv(index=False)
    with pytest.raises(ValidationError, match=kind):
        ingest(CsvSource(_write(tmp_path, text, "ZZZ.csv")), store, strict=True)
    pd.testing.assert_frame_equal(_snapshot(store), before)


def test_unsorted_input_is_sorted_and_gaps_reported() -> None:
    rows = [("2020-03-02", 1, 2, 1, 1.5, 5), ("2020-01-02", 1, 2, 1, 1.5, 5), ("2020-01-03", 1, 2, 1, 1.5, 5)]
    clean, report = validate_bars(_bars(rows))
    assert clean["date"].is_monotonic_increasing
    assert "unsorted" in report.counts
    assert report.gaps == 1
    assert "59 days before 2020-03-02" in report.gap_examples[0]
