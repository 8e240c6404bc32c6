"""Look-ahead guards: the engine trades only at a later bar, oracles look absurd, noise does not, early fills raise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.backtest._helpers import hand_bars, probability_predictions, random_predictions, signal_predictions
from trendcast.backtest import check_lookahead, run_backtest
from trendcast.config import BacktestConfig
from trendcast.data.synthetic import random_walk_bars
from trendcast.errors import LeakageError

FREE = BacktestConfig(commission_bps=0.0, slippage_bps=0.0, execution="next_close")
OPEN = FREE.model_copy(update={"execution": "next_open"})


@pytest.fixture(scope="module")
def walk() -> pd.DataFrame:
    return random_walk_bars(n_tickers=6, n_days=500, seed=31).sort_values(["ticker", "date"]).reset_index(drop=True)


def _future_return(bars: pd.DataFrame, start: int, stop: int) -> np.ndarray:
    """close[t + stop] / close[t + start] - 1 per row of long bars (NaN past the end)."""
    close = bars.groupby("ticker")["close"]
    return (close.shift(-stop) / close.shift(-start) - 1.0).to_numpy()


def _oracle(bars: pd.DataFrame, future: np.ndarray) -> pd.DataFrame:
    """Confident Up when the future return is positive, confident Down otherwise (labels from forward returns)."""
    up = np.where(future > 0, 0.9, 0.05)
    predictions = probability_predictions(bars, up, 0.95 - up)
    return predictions.loc[np.isfinite(future)]


def test_oracle_of_the_traded_move_has_an_absurd_sharpe(walk: pd.DataFrame) -> None:
    # next_close: a signal dated t earns close[t+1] -> close[t+2]
    result = run_backtest(_oracle(walk, _future_return(walk, 1, 2)), walk, FREE.model_copy(update={"long_short": True}))
    assert result.metrics["strategy"]["sharpe"] > 5


def test_label_oracle_is_absurd_with_next_open(walk: pd.DataFrame) -> None:
    # the usual 1-day label (close[t] -> close[t+1]) is mostly earned open[t+1] -> close[t+1]
    result = run_backtest(_oracle(walk, _future_return(walk, 0, 1)), walk, OPEN)
    assert result.metrics["strategy"]["sharpe"] > 5


@pytest.mark.parametrize("config", [FREE, OPEN], ids=["next_close", "next_open"])
def test_random_predictions_on_a_random_walk_are_not_absurd(walk: pd.DataFrame, config: BacktestConfig) -> None:
    for seed in (1, 2, 3):
        result = run_backtest(random_predictions(walk, seed), walk, config)
        assert abs(result.metrics["strategy"]["sharpe"]) < 2


def test_label_oracle_earns_nothing_at_next_close_unless_shifted_a_day_earlier(walk: pd.DataFrame) -> None:
    """The engine really uses the dates: the same leaky predictions dated one bar earlier become absurd."""
    oracle = _oracle(walk, _future_return(walk, 0, 1))
    honest = run_backtest(oracle, walk, FREE)
    dates = pd.DatetimeIndex(sorted(walk["date"].unique()))
    earlier = oracle.assign(date=dates[dates.get_indexer(oracle["date"]) - 1])
    earlier = earlier.loc[oracle["date"] > dates[0]]
    shifted = run_backtest(earlier, walk, FREE)
    assert not np.allclose(honest.returns.to_numpy()[1:], shifted.returns.reindex(honest.returns.index).to_numpy()[1:])
    assert abs(honest.metrics["strategy"]["sharpe"]) < 2
    assert shifted.metrics["strategy"]["sharpe"] > 5


def test_label_and_forward_return_columns_are_never_read(walk: pd.DataFrame) -> None:
    predictions = random_predictions(walk, 4)
    predictions["forward_return"] = _future_return(walk, 0, 1)
    predictions["label"] = np.where(predictions["forward_return"] > 0, 2, 0)
    scrambled = predictions.assign(
        label=predictions["label"].sample(frac=1.0, random_state=0).to_numpy(),
        forward_return=-predictions["forward_return"],
    )
    a, b = run_backtest(predictions, walk), run_backtest(scrambled, walk)
    pd.testing.assert_series_equal(a.returns, b.returns)


# -- refusals -------------------------------------------------------------------------------------------------------
def _small() -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = hand_bars({"A": [10.0, 11.0, 12.0, 11.0, 12.0, 13.0]})
    return bars, signal_predictions(bars, {"A": [1, 0, 1, 1]})


@pytest.mark.parametrize("offset_days", [0, -1, -3])
def test_trade_date_on_or_before_the_signal_is_refused(offset_days: int) -> None:
    bars, predictions = _small()
    predictions["trade_date"] = predictions["date"] + pd.Timedelta(days=offset_days)
    with pytest.raises(LeakageError, match="on or before"):
        run_backtest(predictions, bars)
    with pytest.raises(LeakageError):
        check_lookahead(predictions, execution="next_close")


def test_trade_date_of_the_next_bar_is_the_default() -> None:
    bars, predictions = _small()
    dates = pd.DatetimeIndex(bars["date"])
    later = predictions.assign(trade_date=dates[dates.get_indexer(predictions["date"]) + 1])
    pd.testing.assert_series_equal(run_backtest(later, bars).returns, run_backtest(predictions, bars).returns)


def test_trade_date_two_bars_later_delays_the_fill() -> None:
    bars, predictions = _small()
    dates = pd.DatetimeIndex(bars["date"])
    delayed = run_backtest(predictions.assign(trade_date=dates[dates.get_indexer(predictions["date"]) + 2]), bars)
    lagged = run_backtest(predictions, bars, lag_bars=2)
    pd.testing.assert_series_equal(delayed.returns, lagged.returns)


def test_same_bar_lag_is_refused() -> None:
    bars, predictions = _small()
    with pytest.raises(LeakageError, match="lag_bars=0"):
        run_backtest(predictions, bars, lag_bars=0)


@pytest.mark.parametrize("execution", ["close", "same_close", "open"])
def test_same_bar_execution_is_refused(execution: str) -> None:
    bars, predictions = _small()
    config = BacktestConfig.model_construct(**{**BacktestConfig().model_dump(), "execution": execution})
    with pytest.raises(LeakageError, match="next_open, next_close"):
        run_backtest(predictions, bars, config)
