"""Costs: the exact charge for a known turnover, borrow for shorts, and zero/high-cost runs bracketing the result."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.backtest._helpers import hand_bars, random_predictions, signal_predictions
from trendcast.backtest import run_backtest
from trendcast.config import BacktestConfig
from trendcast.data.synthetic import random_walk_bars

FLAT = [50.0] * 9  # prices never move: every return is a cost


def test_known_turnover_costs_exactly_its_bps() -> None:
    bars = hand_bars({"A": FLAT, "B": FLAT})
    config = BacktestConfig(long_short=True, commission_bps=4.0, slippage_bps=6.0)
    # A: long, long, flat, short, long, flat -> position changes 1, 0, 1, 1, 2, 1 ; B: never trades
    predictions = signal_predictions(bars, {"A": [1, 1, 0, -1, 1, 0], "B": [0] * 6})
    result = run_backtest(predictions, bars, config)
    turnover_a = np.array([1, 0, 1, 1, 2, 1])
    rate = 10.0 / 1e4
    np.testing.assert_allclose(result.costs["A"].to_numpy()[:6], rate * turnover_a, atol=1e-15)
    np.testing.assert_allclose(result.ticker_returns["A"].to_numpy()[:6], -rate * turnover_a, atol=1e-15)
    np.testing.assert_allclose(result.turnover.to_numpy()[:6], turnover_a / 2, atol=1e-15)  # A is half the book
    assert result.metrics["strategy"]["total_costs"] == pytest.approx(rate * turnover_a.sum() / 2, abs=1e-15)
    expected_total = np.prod(1 - rate * turnover_a / 2) - 1
    assert result.metrics["strategy"]["total_return"] == pytest.approx(expected_total, abs=1e-15)


def test_net_is_gross_after_costs_every_day() -> None:
    bars = random_walk_bars(n_tickers=3, n_days=150, seed=21)
    result = run_backtest(random_predictions(bars, seed=22), bars, BacktestConfig(long_short=True))
    cost = result.costs.to_numpy()
    gross = result.ticker_returns.to_numpy()  # recompute gross from the factors: net = (1 + gross)(1 - cost) - 1
    implied_gross = (1 + gross) / (1 - cost) - 1
    free = run_backtest(
        random_predictions(bars, seed=22), bars, BacktestConfig(long_short=True, commission_bps=0, slippage_bps=0)
    )
    np.testing.assert_allclose(implied_gross, free.ticker_returns.to_numpy(), atol=1e-14)
    np.testing.assert_allclose(result.gross_returns.to_numpy(), free.returns.to_numpy(), atol=1e-14)


def test_borrow_accrues_for_each_night_short() -> None:
    bars = hand_bars({"A": FLAT})
    config = BacktestConfig(long_short=True, commission_bps=0, slippage_bps=0, borrow_bps_annual=252.0)
    result = run_backtest(signal_predictions(bars, {"A": [-1, -1, -1, 0, 0]}), bars, config)
    daily = 252.0 / 1e4 / 252  # 1 bp a night
    # short established at the closes of bars 1..3, carried into bars 2..4
    np.testing.assert_allclose(result.costs["A"].to_numpy(), [0, daily, daily, daily, 0, 0], atol=1e-15)
    long_only = run_backtest(signal_predictions(bars, {"A": [1, 1, 1, 0, 0]}), bars, config)
    assert long_only.metrics["strategy"]["total_costs"] == 0.0


def test_commission_and_slippage_add_up() -> None:
    bars = random_walk_bars(n_tickers=2, n_days=80, seed=23)
    predictions = random_predictions(bars, seed=24)
    split = run_backtest(predictions, bars, BacktestConfig(commission_bps=3, slippage_bps=7))
    single = run_backtest(predictions, bars, BacktestConfig(commission_bps=10, slippage_bps=0))
    np.testing.assert_allclose(split.returns.to_numpy(), single.returns.to_numpy(), atol=0)


def test_zero_and_high_costs_bracket_the_default() -> None:
    bars = random_walk_bars(n_tickers=4, n_days=200, seed=25)
    predictions = random_predictions(bars, seed=26)
    runs = {
        bps: run_backtest(predictions, bars, BacktestConfig(commission_bps=bps / 2, slippage_bps=bps / 2))
        for bps in (0.0, 10.0, 50.0)
    }
    totals = [runs[bps].metrics["strategy"]["total_return"] for bps in (0.0, 10.0, 50.0)]
    sharpes = [runs[bps].metrics["strategy"]["sharpe"] for bps in (0.0, 10.0, 50.0)]
    assert totals[0] > totals[1] > totals[2]
    assert sharpes[0] > sharpes[1] > sharpes[2]
    assert runs[0.0].metrics["strategy"]["total_costs"] == 0.0
    # the benchmark never pays costs, so it is the same in every run
    assert runs[0.0].metrics["benchmark"]["total_return"] == runs[50.0].metrics["benchmark"]["total_return"]
