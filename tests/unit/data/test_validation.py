"""Validation: structural problems raise naming file/column/line; row-level problems are repaired or dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trendcast.data.sources import CsvSource, read_price_file
from trendcast.data.store import BarStore
from trendcast.data.validation import TICKER_PATTERN, check_ticker, validate_bars
from trendcast.errors import ConfigError, InvalidTickerError, SchemaError, SourceError, ValidationError
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


# -- dates: one format per file, inferred from the whole column --------------------------------------------------------
def _dated(dates: list[str]) -> str:
    rows = "".join(f"{d},10,11,9,10.5,1000\n" for d in dates)
    return "Date,Open,High,Low,Close,Volume\n" + rows


def test_mixed_date_formats_are_an_error_naming_the_line(tmp_path: Path) -> None:
    store = _seeded_store(tmp_path)
    before = _snapshot(store)
    path = _write(tmp_path, _dated(["2015-02-02", "03/02/2015", "12/02/2015"]), "MIX.csv")
    with pytest.raises(SchemaError) as info:
        ingest(CsvSource(path), store)
    message = str(info.value)
    assert str(path) in message and "line 3" in message and "'03/02/2015'" in message
    assert "one date format" in message and "--date-format" in message
    pd.testing.assert_frame_equal(_snapshot(store), before)


def test_ambiguous_day_and_month_need_a_date_format(tmp_path: Path) -> None:
    path = _write(tmp_path, _dated(["02/03/2015", "03/03/2015", "04/03/2015"]))
    with pytest.raises(SchemaError) as info:
        read_price_file(path)
    message = str(info.value)
    assert "line 2" in message and "DD/MM/YYYY" in message and "MM/DD/YYYY" in message
    assert "--date-format %d/%m/%Y" in message


def test_date_format_says_which(tmp_path: Path) -> None:
    path = _write(tmp_path, _dated(["02/03/2015", "03/03/2015", "04/03/2015"]))
    day_first = read_price_file(path, date_format="%d/%m/%Y")
    assert day_first["date"].dt.strftime("%Y-%m-%d").tolist() == ["2015-03-02", "2015-03-03", "2015-03-04"]
    month_first = CsvSource(path, date_format="%m/%d/%Y").load()
    assert month_first["date"].dt.strftime("%Y-%m-%d").tolist() == ["2015-02-03", "2015-03-03", "2015-04-03"]


def test_a_date_not_in_the_given_format_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _dated(["02/03/2015", "2015-03-03"]))
    with pytest.raises(
        SchemaError, match=r"line 3, column 'date': '2015-03-03' does not match --date-format '%d/%m/%Y'"
    ):
        read_price_file(path, date_format="%d/%m/%Y")


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["02/03/2015", "13/03/2015"], ["2015-03-02", "2015-03-13"]),  # 13 can only be a day
        (["03/02/2015", "03/13/2015"], ["2015-03-02", "2015-03-13"]),  # 13 can only be a day, month first
        (["2015-02-02", "2015-02-03 00:00:00"], ["2015-02-02", "2015-02-03"]),
        (["2015-02-02 00:00:00-05:00", "2015-06-02 00:00:00-04:00"], ["2015-02-02", "2015-06-02"]),  # local dates
        (["20150202", "20150203"], ["2015-02-02", "2015-02-03"]),
        (["02-Feb-2015", "03-Feb-2015"], ["2015-02-02", "2015-02-03"]),
    ],
)
def test_one_format_is_inferred_from_the_whole_column(tmp_path: Path, dates: list[str], expected: list[str]) -> None:
    frame = read_price_file(_write(tmp_path, _dated(dates)))
    assert frame["date"].dt.strftime("%Y-%m-%d").tolist() == expected


def test_datetime_columns_are_not_reparsed(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"date": pd.to_datetime(["2015-02-03", "2015-03-02"]), "open": 1.0, "high": 2.0, "low": 1.0, "close": 1.5}
    ).assign(volume=10.0)
    frame.to_parquet(tmp_path / "PQ.parquet")
    loaded = read_price_file(tmp_path / "PQ.parquet", date_format="%d/%m/%Y")
    assert loaded["date"].dt.strftime("%Y-%m-%d").tolist() == ["2015-02-03", "2015-03-02"]


# -- duplicate columns ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("Date,Open,High,Low,Close,Close,Volume", "'Close' and 'Close'"),
        ("Date,Open,High,Low,Close,close,Volume", "'Close' and 'close'"),
        ("Date,Open,High,Low,Close,Adj Close,adj_close,Volume", "'Adj Close' and 'adj_close'"),
        ("Date,Timestamp,Open,High,Low,Close,Volume", "'Date' and 'Timestamp'"),
    ],
)
def test_duplicate_columns_are_an_error_naming_them(tmp_path: Path, header: str, named: str) -> None:
    row = ",".join("2020-01-02" if name in ("Date", "Timestamp") else "1.5" for name in header.split(","))
    path = _write(tmp_path, f"{header}\n{row}\n")
    with pytest.raises(SchemaError) as info:
        read_price_file(path)
    message = str(info.value)
    assert str(path) in message and named in message and "Keep one of each" in message


# -- tickers: the pattern the API accepts -----------------------------------------------------------------------------
def test_a_file_name_the_api_refuses_is_not_stored(tmp_path: Path) -> None:
    store = _seeded_store(tmp_path)
    before = _snapshot(store)
    folder = tmp_path / "in"
    folder.mkdir()
    _write(folder, GOOD, "GOOD.csv")
    _write(folder, GOOD, "weird name$€.csv")
    with pytest.raises(InvalidTickerError) as info:
        ingest(CsvSource(folder), store)
    message = str(info.value)
    assert "'WEIRD NAME$€'" in message and TICKER_PATTERN in message and "Rename the file" in message
    pd.testing.assert_frame_equal(_snapshot(store), before)


def test_a_ticker_column_value_the_api_refuses_names_its_line(tmp_path: Path) -> None:
    text = (
        "Date,Open,High,Low,Close,Volume,Name\n"
        "2020-01-02,1,2,1,1.5,5,AAPL\n"
        "2020-01-02,1,2,1,1.5,5,AAPL'; DROP TABLE bars;--\n"
    )
    with pytest.raises(InvalidTickerError) as info:
        read_price_file(_write(tmp_path, text, "ALL.csv"))
    assert "line 3" in str(info.value) and '"AAPL\'; DROP TABLE BARS;--"' in str(info.value)


def test_requested_tickers_the_api_refuses_are_refused_before_loading(tmp_path: Path) -> None:
    class Recording:
        name = "recording"
        calls = 0

        def load(self, tickers: list[str] | None = None) -> pd.DataFrame:
            Recording.calls += 1
            return pd.DataFrame()

    with pytest.raises(InvalidTickerError, match="--tickers"):
        ingest(Recording(), _store(tmp_path), tickers=["AAPL", "AAPL'; DROP TABLE bars;--"])
    assert Recording.calls == 0


@pytest.mark.parametrize("ticker", ["AAPL", "^GSPC", "BRK.B", "EURUSD=X", "BF-B", "7203.T"])
def test_usual_tickers_pass(ticker: str) -> None:
    assert check_ticker(ticker) == ticker


@pytest.mark.parametrize(("date_format", "needle"), [("%Q/%m/%Y", "bad directive"), ("%Y-%m", "no day")])
def test_a_date_format_that_cannot_work_is_refused_up_front(tmp_path: Path, date_format: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        CsvSource(tmp_path, date_format=date_format)
