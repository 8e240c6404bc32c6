"""The feature store gives the materialised path's windows bit for bit, recomputes only what changed, reads only
what is asked for, and never leaves a half-written file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from trendcast.config import LabelConfig
from trendcast.data.store import BarStore
from trendcast.data.synthetic import random_walk_bars
from trendcast.errors import DataError, MissingPricesError
from trendcast.features import store as store_module
from trendcast.features.feature_set import compute_features
from trendcast.features.labels import NO_LABEL
from trendcast.features.store import FeatureStore
from trendcast.features.windows import WindowSet, build_window_set

WINDOW = 15
FIXED = LabelConfig(horizon=2, threshold=0.004)
VOLATILITY = LabelConfig(horizon=3, threshold_mode="volatility", vol_lookback=20)
RELATIVE = LabelConfig(mode="cross_sectional", horizon=2, threshold_mode="volatility")  # the band is ignored
ARRAYS = ("rows", "row_dates", "end_rows", "labels", "forward_returns", "tickers", "dates")


def universe() -> pd.DataFrame:
    """Three tickers of different lengths; one has three flat bars (open = high = low = close: the balance of power
    and the close's place in the range are NaN there), a gap in its features that windows must not cross."""
    bars = random_walk_bars(n_tickers=3, n_days=260, seed=5)
    lengths = {"RW000": 260, "RW001": 170, "RW002": 220}
    bars = bars[bars.groupby("ticker").cumcount() < bars["ticker"].map(lengths)].reset_index(drop=True)
    flat = (bars["ticker"] == "RW002") & bars["date"].between(bars["date"].iloc[120], bars["date"].iloc[122])
    for column in ("open", "high", "low"):
        bars.loc[flat, column] = bars.loc[flat, "close"]
    return bars


@pytest.fixture
def bars() -> pd.DataFrame:
    return universe()


@pytest.fixture
def bar_store(tmp_path: Path, bars: pd.DataFrame) -> Iterator[BarStore]:
    store = BarStore(f"sqlite:///{tmp_path / 'bars.db'}")
    store.upsert(bars)
    yield store
    store.close()


def assert_same(expected: WindowSet, actual: WindowSet) -> None:
    for name in ARRAYS:
        left, right = getattr(expected, name), getattr(actual, name)
        assert left.dtype == right.dtype, name
        assert np.array_equal(left, right, equal_nan=left.dtype.kind == "f"), name
    assert (expected.feature_names, expected.window, expected.horizon) == (
        actual.feature_names,
        actual.window,
        actual.horizon,
    )
    assert np.array_equal(expected.windows(), actual.windows())


# -- 1. golden: the store path equals the materialised path ---------------------------------------------------------
@pytest.mark.parametrize("labels", [FIXED, VOLATILITY, RELATIVE])
@pytest.mark.parametrize("features", [None, ["ret_1", "rsi_14", "volume_z_20", "sma_ratio_20"]])
@pytest.mark.parametrize("require_label", [True, False])
def test_store_windows_equal_build_window_set(
    tmp_path: Path,
    bars: pd.DataFrame,
    bar_store: BarStore,
    labels: LabelConfig,
    features: list[str] | None,
    require_label: bool,
) -> None:
    store = FeatureStore(tmp_path / "features")
    store.sync(bar_store, None)
    expected = build_window_set(bars, window=WINDOW, labels=labels, features=features, require_label=require_label)
    actual = store.load_window_set(
        ["RW002", "RW000", "RW001"], window=WINDOW, labels=labels, features=features, require_label=require_label
    )
    assert_same(expected, actual)
    gap_rows = ~np.isfinite(compute_features(bars[bars["ticker"] == "RW002"]).to_numpy()).all(axis=1)
    assert np.array_equal(np.flatnonzero(gap_rows[100:]) + 100, [120, 121, 122])  # the gap is there, past warm-up


def test_the_gap_really_breaks_windows(tmp_path: Path, bars: pd.DataFrame) -> None:
    store = FeatureStore(tmp_path / "features")
    store.sync(bars.groupby("ticker"))
    ws = store.load_window_set(["RW002"], window=WINDOW, labels=FIXED, features=["close_position", "ret_1"])
    ticker = bars[bars["ticker"] == "RW002"]
    gap_dates = ticker.loc[ticker["high"] == ticker["low"], "date"].to_numpy()
    assert len(gap_dates) == 3
    touching = 0
    for i in range(len(ws)):  # no window contains a gap day
        window_dates = ws.row_dates[ws.end_rows[i] - WINDOW + 1 : ws.end_rows[i] + 1]
        touching += int(np.isin(window_dates, gap_dates).any())
    assert touching == 0
    assert not np.isin(ticker["date"].to_numpy()[123 : 123 + WINDOW - 1], ws.dates).any()  # the gap's shadow
    assert ticker["date"].to_numpy()[123 + WINDOW - 1] in ws.dates  # the first window after the gap


# -- 2. truncation: features are causal, so a history cut at t changes no window ending at or before t -------------
@pytest.mark.parametrize("labels", [FIXED, VOLATILITY])
def test_windows_ending_by_the_cut_do_not_change_when_history_grows(
    tmp_path: Path, bars: pd.DataFrame, labels: LabelConfig
) -> None:
    cut = pd.Timestamp(np.sort(bars["date"].unique())[150])
    short, full = FeatureStore(tmp_path / "short"), FeatureStore(tmp_path / "full")
    short.sync(bars[bars["date"] <= cut].groupby("ticker"))
    full.sync(bars.groupby("ticker"))
    tickers = sorted(bars["ticker"].unique())
    before = short.load_window_set(tickers, window=WINDOW, labels=labels, require_label=False)
    after = full.load_window_set(tickers, window=WINDOW, labels=labels, require_label=False)
    assert before.dates.max() == cut.to_datetime64()

    keys_after = {(t, d): i for i, (t, d) in enumerate(zip(after.tickers, after.dates, strict=True))}
    index = np.array([keys_after[(t, d)] for t, d in zip(before.tickers, before.dates, strict=True)])
    assert np.array_equal(before.windows(), after.windows(index))  # every window ending at or before the cut
    days = np.sort(bars["date"].unique())
    settled = before.dates <= days[np.searchsorted(days, cut.to_datetime64()) - labels.horizon]  # t + horizon <= cut
    assert settled.any() and (before.labels[settled] != NO_LABEL).all()
    assert np.array_equal(before.labels[settled], after.labels[index][settled])
    assert np.array_equal(before.forward_returns[settled], after.forward_returns[index][settled])
    assert (before.labels[~settled] == NO_LABEL).all()  # t + horizon past the cut: unknown, never guessed


# -- 3. invalidation: only changed tickers (or a changed catalog) are recomputed ------------------------------------
def test_sync_recomputes_only_what_changed(
    tmp_path: Path, bars: pd.DataFrame, bar_store: BarStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeatureStore(tmp_path / "features")
    first = store.sync(bar_store, ["RW000", "RW001", "RW002"])
    assert first.computed == ["RW000", "RW001", "RW002"] and first.reused == []
    assert store.stored_tickers() == ["RW000", "RW001", "RW002"]

    again = store.sync(bar_store, ["RW000", "RW001", "RW002"])
    assert again.computed == [] and again.reused == ["RW000", "RW001", "RW002"]

    corrected = bars[bars["ticker"] == "RW001"].iloc[[40]].copy()
    corrected["close"] *= 1.01
    bar_store.upsert(corrected)
    changed = store.sync(bar_store, ["RW000", "RW001", "RW002"])
    assert changed.computed == ["RW001"] and changed.reused == ["RW000", "RW002"]
    expected = build_window_set(bar_store.load(["RW001"]), window=WINDOW, labels=FIXED)
    assert_same(expected, store.load_window_set(["RW001"], window=WINDOW, labels=FIXED))

    monkeypatch.setattr(store_module, "catalog_fingerprint", lambda: "another catalog")
    assert store.sync(bar_store, None).computed == ["RW000", "RW001", "RW002"]


def test_catalog_fingerprint_follows_the_indicator_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edited = tmp_path / "indicators.py"
    edited.write_bytes(Path(str(store_module.indicators.__file__)).read_bytes() + b"\n# a changed indicator\n")
    store_module.catalog_fingerprint.cache_clear()
    before = store_module.catalog_fingerprint()
    monkeypatch.setattr(store_module.indicators, "__file__", str(edited))
    store_module.catalog_fingerprint.cache_clear()
    after = store_module.catalog_fingerprint()
    monkeypatch.undo()
    store_module.catalog_fingerprint.cache_clear()
    assert after != before
    assert store_module.catalog_fingerprint() == before


def test_stale_catalog_is_refused_at_read_time(
    tmp_path: Path, bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeatureStore(tmp_path / "features")
    store.sync(bars.groupby("ticker"))
    monkeypatch.setattr(store_module, "catalog_fingerprint", lambda: "another catalog")
    with pytest.raises(DataError, match="another feature catalog"):
        store.load_window_set(["RW000"], window=WINDOW, labels=FIXED)


def test_unknown_ticker_and_missing_file_say_what_to_do(tmp_path: Path, bar_store: BarStore) -> None:
    store = FeatureStore(tmp_path / "features")
    with pytest.raises(MissingPricesError, match="Ingest it"):
        store.sync(bar_store, ["NOPE"])
    with pytest.raises(DataError, match="sync it from the bars first"):
        store.load_window_set(["RW000"], window=WINDOW, labels=FIXED)


# -- 4. only the tickers, columns and dates asked for are read ------------------------------------------------------
def test_reads_only_the_tickers_and_dates_asked_for(tmp_path: Path, bars: pd.DataFrame) -> None:
    store = FeatureStore(tmp_path / "features")
    store.sync(bars.groupby("ticker"))
    store.path("RW001").write_bytes(b"not parquet")  # a ticker not asked for is never opened
    dates = np.sort(bars["date"].unique())
    start, end = pd.Timestamp(dates[60]), pd.Timestamp(dates[200])
    ws = store.load_window_set(["RW000", "RW002"], str(start.date()), str(end.date()), window=WINDOW, labels=VOLATILITY)
    assert set(ws.tickers) == {"RW000", "RW002"}
    assert ws.row_dates.min() == start.to_datetime64() and ws.row_dates.max() == end.to_datetime64()
    assert ws.dates.min() >= start.to_datetime64() and ws.dates.max() <= end.to_datetime64()

    # the same as computing on the full history and cutting: rows and labels are those of the whole-history set
    full = store.load_window_set(["RW000", "RW002"], window=WINDOW, labels=VOLATILITY, require_label=False)
    keys = {(t, d): i for i, (t, d) in enumerate(zip(full.tickers, full.dates, strict=True))}
    index = np.array([keys[(t, d)] for t, d in zip(ws.tickers, ws.dates, strict=True)])
    assert np.array_equal(ws.windows(), full.windows(index))
    assert np.array_equal(ws.labels, full.labels[index])
    # labels need t + horizon <= end; windows need all their rows >= start; the band's look-back reaches before start
    assert ws.dates.max() == dates[200 - VOLATILITY.horizon]
    assert ws.dates.min() == dates[60 + WINDOW - 1]


def test_cross_sectional_labels_with_a_date_range_are_those_of_the_whole_universe(
    tmp_path: Path, bars: pd.DataFrame
) -> None:
    """Cut at [start, end], a relative label equals the one over the whole history wherever t + horizon <= end: the
    median of a date is over every ticker read on that date, and no return known after `end` enters it."""
    store = FeatureStore(tmp_path / "features")
    store.sync(bars.groupby("ticker"))
    dates = np.sort(bars["date"].unique())
    start, end = pd.Timestamp(dates[60]), pd.Timestamp(dates[150])
    tickers = ["RW000", "RW001", "RW002"]
    ws = store.load_window_set(tickers, str(start.date()), str(end.date()), window=WINDOW, labels=RELATIVE)
    full = store.load_window_set(tickers, window=WINDOW, labels=RELATIVE)
    keys = {(t, d): i for i, (t, d) in enumerate(zip(full.tickers, full.dates, strict=True))}
    index = np.array([keys[(t, d)] for t, d in zip(ws.tickers, ws.dates, strict=True)])
    assert len(ws) > 100
    assert np.array_equal(ws.labels, full.labels[index])
    assert set(np.unique(ws.labels)) == {0, 2}
    assert ws.dates.max() == dates[150 - RELATIVE.horizon]


def test_reads_only_the_requested_columns(tmp_path: Path, bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FeatureStore(tmp_path / "features")
    store.sync(bars.groupby("ticker"))
    asked: list[list[str]] = []
    read_table = pq.read_table

    def spy(path: Path, *, columns: list[str], filters: object) -> object:
        asked.append(columns)
        return read_table(path, columns=columns, filters=filters)

    monkeypatch.setattr(store_module.pq, "read_table", spy)
    store.load_window_set(["RW000"], end="2010-06-30", window=WINDOW, labels=FIXED, features=["ret_1", "rsi_14"])
    assert asked == [["date", "adjusted_close", "ret_1", "rsi_14"]]


def test_an_empty_selection_is_a_data_error(tmp_path: Path, bars: pd.DataFrame) -> None:
    store = FeatureStore(tmp_path / "features")
    store.sync(bars.groupby("ticker"))
    with pytest.raises(DataError, match="no bars for this selection"):
        store.load_window_set(["RW000"], "2030-01-01", window=WINDOW, labels=FIXED)


# -- 5. an interrupted write leaves the previous file ----------------------------------------------------------------
def test_a_failed_write_keeps_the_previous_file(
    tmp_path: Path, bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeatureStore(tmp_path / "features")
    store.sync(bars.groupby("ticker"))
    path = store.path("RW000")
    previous = path.read_bytes()

    def half_write(table: object, where: str) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(store_module.pq, "write_table", half_write)
    changed = bars.copy()
    changed.loc[changed["ticker"] == "RW000", "close"] *= 1.02
    with pytest.raises(OSError, match="disk full"):
        store.sync(changed.groupby("ticker"), ["RW000"])
    assert path.read_bytes() == previous
    assert sorted(p.name for p in path.parent.iterdir()) == ["features.parquet"]  # no temporary left behind
    monkeypatch.undo()
    assert store.sync(changed.groupby("ticker"), ["RW000"]).computed == ["RW000"]  # and the next sync repairs it
