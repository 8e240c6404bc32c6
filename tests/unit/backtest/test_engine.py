"""Engine: timing by hand, sizing, the portfolio over a union of dates, adjustment, trades, loading predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.unit.backtest._helpers import hand_bars, random_predictions, signal_predictions
from trendcast.backtest import METRIC_NAMES, load_predictions, run_backtest, target_positions
from trendcast.config import BacktestConfig
from trendcast.data.synthetic import random_walk_bars
from trendcast.errors import DataError, MissingPricesError, SchemaError, SourceError

FREE = BacktestConfig(commission_bps=0.0, slippage_bps=0.0, execution="next_close")
CLOSES = [100.0, 101.0, 103.0, 102.0, 106.0, 105.0, 104.0]
OPENS = [99.0, 100.5, 102.0, 103.5, 104.0, 107.0, 103.0]


def test_next_close_earns_from_the_close_after_the_signal() -> None:
    bars = hand_bars({"A": CLOSES})
    # signals dated bars 0..3: flat, long, long, flat -> long held from close[2] to close[4]
    result = run_backtest(signal_predictions(bars, {"A": [0, 1, 1, 0]}), bars, FREE)
    c = np.asarray(CLOSES)
    expected = np.array([0.0, 0.0, c[3] / c[2] - 1, c[4] / c[3] - 1, 0.0])  # window: bars 1..5
    np.testing.assert_allclose(result.returns.to_numpy(), expected, atol=1e-15)
    assert list(result.returns.index) == list(pd.DatetimeIndex(bars["date"])[1:6])
    np.testing.assert_array_equal(result.positions["A"].to_numpy(), [0, 1, 1, 0, 0])


def test_next_open_enters_at_the_next_open() -> None:
    bars = hand_bars({"A": CLOSES}, {"A": OPENS})
    result = run_backtest(
        signal_predictions(bars, {"A": [0, 1, 1, 0]}), bars, FREE.model_copy(update={"execution": "next_open"})
    )
    c, o = np.asarray(CLOSES), np.asarray(OPENS)
    # enter at open[2]: open->close on bar 2, close->close on bar 3, exit at open[4]: gap close[3]->open[4]
    expected = np.array([0.0, c[2] / o[2] - 1, c[3] / c[2] - 1, o[4] / c[3] - 1, 0.0])
    np.testing.assert_allclose(result.returns.to_numpy(), expected, atol=1e-15)


def test_target_positions_long_short_and_confidence() -> None:
    p_down = np.array([0.1, 0.5, 0.45, 0.3, 0.2])
    p_up = np.array([0.7, 0.3, 0.45, 0.35, 0.39])
    fixed = BacktestConfig(entry_rule="fixed", entry_threshold=0.4)
    long_only = target_positions(p_down, p_up, fixed)
    np.testing.assert_array_equal(long_only, [1, 0, 0, 0, 0])
    both = target_positions(p_down, p_up, fixed.model_copy(update={"long_short": True}))
    np.testing.assert_array_equal(both, [1, -1, 0, 0, 0])  # 0.45 vs 0.45: no side wins
    sized = target_positions(p_down, p_up, fixed.model_copy(update={"long_short": True, "sizing": "confidence"}))
    np.testing.assert_allclose(sized, [0.7, -0.5, 0, 0, 0])


def test_confidence_sizing_scales_the_returns() -> None:
    bars = random_walk_bars(n_tickers=2, n_days=60, seed=3)
    predictions = random_predictions(bars, seed=4)
    fixed = run_backtest(predictions, bars, FREE)
    sized = run_backtest(predictions, bars, FREE.model_copy(update={"sizing": "confidence"}))
    held = fixed.positions.shift(1).fillna(0.0)
    size = sized.positions.shift(1).fillna(0.0)
    moves = fixed.ticker_returns.where(held != 0) / held  # the market move on bars held long
    np.testing.assert_allclose(
        (sized.ticker_returns.where(held != 0)).to_numpy(), (moves * size).to_numpy(), atol=1e-12
    )


def test_portfolio_and_benchmark_over_a_union_of_dates() -> None:
    nan = float("nan")
    bars = hand_bars({"A": [10, 11, 12, 11, 12, 13, 12], "B": [nan, nan, 20, nan, 22, 21, 23]})
    predictions = signal_predictions(bars, {"A": [1, 1, 1, 1, 1], "B": [1, 1, 1, 1]})
    result = run_backtest(predictions, bars, FREE)
    # B: no bar on day 3 (price carried, 0 return), the gap is earned on day 4; before its first bar it is inactive
    b_bench = result.benchmark_ticker_returns["B"]
    assert np.isnan(b_bench.iloc[0])  # day 1: B not listed yet
    np.testing.assert_allclose(b_bench.loc[result.returns.index[2:4]], [0.0, 22 / 20 - 1])
    a, b = result.benchmark_ticker_returns["A"], result.benchmark_ticker_returns["B"]
    expected = pd.concat([a, b], axis=1).mean(axis=1)  # equal weight over listed tickers, rebalanced daily
    np.testing.assert_allclose(result.benchmark_returns.to_numpy(), expected.to_numpy(), atol=1e-15)


def test_adjusted_close_removes_a_split() -> None:
    closes = [100.0, 102.0, 51.5, 52.0, 53.0, 52.5]  # 2:1 split before day 2
    bars = hand_bars({"A": closes})
    bars["adj_close"] = np.array(closes) * np.array([0.5, 0.5, 1, 1, 1, 1])
    result = run_backtest(signal_predictions(bars, {"A": [1, 1, 1, 1]}), bars, FREE)
    assert result.benchmark_returns.min() > -0.05
    assert result.benchmark_returns.iloc[1] == pytest.approx(51.5 / 51.0 - 1)


def test_trades_by_hand_with_costs() -> None:
    bars = hand_bars({"A": CLOSES})
    config = BacktestConfig(commission_bps=5, slippage_bps=5, long_short=True)
    result = run_backtest(signal_predictions(bars, {"A": [1, 1, -1, 0, 0]}), bars, config)
    trades = result.trades
    assert list(trades["direction"]) == ["long", "short"]
    c, cost = np.asarray(CLOSES), 0.001
    # long: entered at close[1], flipped at close[3]; short: entered at close[3], closed at close[4]
    assert trades["return"].iloc[0] == pytest.approx((1 - cost) ** 2 * c[3] / c[1] - 1, abs=1e-12)
    assert trades["return"].iloc[1] == pytest.approx((1 - cost) ** 2 * (1 - (c[4] / c[3] - 1)) - 1, abs=1e-12)
    assert list(trades["bars"]) == [2, 1]
    assert not trades["open"].any()
    assert result.metrics["strategy"]["n_trades"] == 2
    assert result.metrics["strategy"]["win_rate_trades"] == pytest.approx(float((trades["return"] > 0).mean()))


def test_metrics_cover_every_name_for_both_sides() -> None:
    bars = random_walk_bars(n_tickers=3, n_days=120, seed=5)
    result = run_backtest(random_predictions(bars, seed=6), bars)
    assert set(result.metrics) == {"strategy", "benchmark"}
    for side in result.metrics.values():
        assert list(side) == list(METRIC_NAMES)
    assert result.metrics["benchmark"]["beta"] == pytest.approx(1.0)
    assert result.metrics_frame().shape == (len(METRIC_NAMES), 2)
    assert set(result.ticker_metrics.index) == {"RW000", "RW001", "RW002"}
    flat = result.flat_metrics()
    assert flat["backtest_strategy_sharpe"] == result.metrics["strategy"]["sharpe"]
    assert all(np.isfinite(v) for v in flat.values())


def test_signals_past_the_last_bar_are_counted() -> None:
    bars = hand_bars({"A": CLOSES})
    result = run_backtest(signal_predictions(bars, {"A": [1] * len(CLOSES)}), bars, FREE)
    assert result.dropped_signals == 1
    assert result.trades["open"].iloc[-1]


def test_unknown_ticker_names_the_stored_ones() -> None:
    bars = hand_bars({"AAPL": CLOSES})
    predictions = signal_predictions(bars, {"AAPL": [1, 1]}).assign(ticker="AAPLE")
    with pytest.raises(MissingPricesError, match="AAPL"):
        run_backtest(predictions, bars)


def test_prediction_dated_off_the_price_grid_is_refused() -> None:
    bars = hand_bars({"A": CLOSES})
    predictions = signal_predictions(bars, {"A": [1, 1]})
    predictions.loc[0, "date"] = pd.Timestamp("2030-01-01")
    with pytest.raises(DataError, match="without any price bar"):
        run_backtest(predictions, bars)


# -- loading predictions ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_load_predictions_round_trip(tmp_path: Path, suffix: str) -> None:
    bars = random_walk_bars(n_tickers=2, n_days=40, seed=7)
    predictions = random_predictions(bars, seed=8).assign(label=1, model="m")
    path = tmp_path / f"predictions{suffix}"
    predictions.to_csv(path, index=False) if suffix == ".csv" else predictions.to_parquet(path)
    loaded = load_predictions(path)
    assert loaded["date"].dtype.kind == "M"
    direct = run_backtest(predictions, bars)
    from_file = run_backtest(loaded, bars)
    pd.testing.assert_series_equal(direct.returns, from_file.returns)


def test_load_predictions_names_the_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    pd.DataFrame(
        {"ticker": ["A"], "date": ["2021-01-04"], "p_down": [0.2], "p_neutral": [0.3], "prob_up": [0.5]}
    ).to_csv(path, index=False)
    with pytest.raises(SchemaError, match="missing column 'p_up'") as info:
        load_predictions(path)
    assert info.value.column == "p_up"
    assert "prob_up" in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"p_up": [0.9, 0.5]}, "!= 1"),
        ({"p_up": ["x", 0.5]}, "not probabilities"),
        ({"model": ["a", "b"]}, "2 models"),
        ({"date": ["2021-01-04", "2021-01-04"]}, "share a"),
    ],
)
def test_load_predictions_refuses_bad_values(tmp_path: Path, change: dict[str, list[object]], message: str) -> None:
    frame = pd.DataFrame(
        {
            "ticker": ["A", "A"],
            "date": ["2021-01-04", "2021-01-05"],
            "p_down": [0.2, 0.2],
            "p_neutral": [0.3, 0.3],
            "p_up": [0.5, 0.5],
            "model": ["a", "a"],
        }
    )
    path = tmp_path / "p.csv"
    frame.assign(**change).to_csv(path, index=False)
    with pytest.raises(SchemaError, match=message):
        load_predictions(path)


def test_load_predictions_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        load_predictions(tmp_path / "nope.parquet")
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(SchemaError, match=r"csv or \.parquet"):
        load_predictions(tmp_path / "p.json")
