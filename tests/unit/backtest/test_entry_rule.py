"""Entry rules: the fixed and the training-quantile rule on hand-made numbers, the per-row fold thresholds a
predictions frame carries, the fallback for frames without them, and the rule every result states."""

from __future__ import annotations

import html
import logging

import numpy as np
import pandas as pd
import pytest

from tests.unit.backtest._helpers import hand_bars, probability_predictions
from trendcast.backtest import run_backtest, target_positions
from trendcast.backtest.entry import (
    LONG_COLUMN,
    QUANTILE_COLUMN,
    SHORT_COLUMN,
    FoldThresholds,
    quantile_thresholds,
    resolve_entry,
)
from trendcast.config import BacktestConfig
from trendcast.errors import ConfigError, DataError
from trendcast.reporting.html import render_report

FREE = BacktestConfig(commission_bps=0.0, slippage_bps=0.0, execution="next_close")
P_DOWN = np.array([0.10, 0.30, 0.20, 0.50, 0.25, 0.40])
P_UP = np.array([0.50, 0.35, 0.30, 0.20, 0.25, 0.30])  # scores: 0.40, 0.05, 0.10, -0.30, 0.00, -0.10
LONG = np.array([0.08, 0.08, 0.08, 0.00, 0.00, 0.00])  # two folds: three rows each
SHORT = np.array([-0.05, -0.05, -0.05, -0.20, -0.20, -0.20])


def test_train_quantile_longs_above_and_shorts_below_the_rows_fold_thresholds() -> None:
    thresholds = FoldThresholds(LONG, SHORT)
    config = BacktestConfig(entry_rule="train_quantile")
    np.testing.assert_array_equal(target_positions(P_DOWN, P_UP, config, thresholds), [1, 0, 1, 0, 0, 0])
    both = config.model_copy(update={"long_short": True})
    np.testing.assert_array_equal(target_positions(P_DOWN, P_UP, both, thresholds), [1, 0, 1, -1, 0, 0])
    sized = both.model_copy(update={"sizing": "confidence"})
    np.testing.assert_allclose(target_positions(P_DOWN, P_UP, sized, thresholds), [0.5, 0, 0.3, -0.5, 0, 0])


def test_overlapping_bands_stay_flat_and_the_rule_needs_thresholds() -> None:
    # entry_quantile < 0.5 puts the long threshold below the short one: a score between them meets both -> flat
    thresholds = FoldThresholds(np.full(6, -0.2), np.full(6, 0.2))
    config = BacktestConfig(entry_rule="train_quantile", long_short=True)
    np.testing.assert_array_equal(target_positions(P_DOWN, P_UP, config, thresholds), [1, 0, 0, -1, 0, 0])
    with pytest.raises(ConfigError, match="entry_rule='fixed'"):
        target_positions(P_DOWN, P_UP, config)


def test_quantile_thresholds_are_numpy_quantiles() -> None:
    scores = np.random.default_rng(0).normal(0.0, 0.1, 501)
    ordered = np.sort(scores)  # 501 values: the 70% and 30% quantiles are the 350th and 150th order statistics
    assert quantile_thresholds(scores, 0.7) == pytest.approx((ordered[350], ordered[150]), abs=1e-12)
    with pytest.raises(DataError, match="at least one"):
        quantile_thresholds(np.array([]), 0.5)


def frame_with_thresholds() -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = hand_bars({"A": [100.0, 101.0, 103.0, 102.0, 106.0, 105.0, 104.0]})
    predictions = probability_predictions(bars.iloc[:6], P_UP, P_DOWN)
    predictions[LONG_COLUMN], predictions[SHORT_COLUMN], predictions[QUANTILE_COLUMN] = LONG, SHORT, 0.5
    return bars, predictions


def test_the_backtest_applies_each_rows_thresholds_and_says_so() -> None:
    bars, predictions = frame_with_thresholds()
    result = run_backtest(predictions, bars, FREE)
    # signals at bars 0..5 -> positions at bars 1..6 (next_close); the window runs bars 1..6
    np.testing.assert_array_equal(result.positions["A"].to_numpy(), [1, 0, 1, 0, 0, 0])
    assert result.entry.rule == "train_quantile" and result.config.entry_rule == "train_quantile"
    assert result.entry.long_range == (0.0, 0.08) and result.entry.short_range == (-0.2, -0.05)
    text = result.entry.describe()
    assert text == "long when P(Up)-P(Down) > its training-fold 50% quantile (fold thresholds 0.000..0.080)"
    assert f"Entry rule: {text}." in result.notes
    assert html.escape(text) in render_report(result, predictions)  # the settings' "Entry rule" row
    fixed = run_backtest(predictions, bars, FREE.model_copy(update={"entry_rule": "fixed"}))
    expected = ((P_UP > 0.4) & (P_UP > P_DOWN)).astype(float)  # only the first row passes P(Up) > 0.4
    np.testing.assert_array_equal(fixed.positions["A"].to_numpy(), expected)
    assert fixed.entry.describe() == "long when P(Up) > 0.40 and P(Up) > P(Down)"


def test_a_frame_without_thresholds_falls_back_to_the_fixed_rule_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bars, predictions = frame_with_thresholds()
    bare = predictions.drop(columns=[LONG_COLUMN, SHORT_COLUMN, QUANTILE_COLUMN])
    with caplog.at_level(logging.WARNING, logger="trendcast.backtest"):
        result = run_backtest(bare, bars, FREE)
    assert "falls back to fixed" in caplog.text
    assert result.entry.rule == "fixed" and result.config.entry_rule == "fixed" and result.entry.fallback
    fixed = run_backtest(bare, bars, FREE.model_copy(update={"entry_rule": "fixed"}))
    pd.testing.assert_frame_equal(result.positions, fixed.positions)
    assert "fell back" in result.entry.describe() and not fixed.entry.fallback
    assert any("retrain" in note and "entry_rule: fixed" in note for note in result.notes)


def test_rows_without_thresholds_in_a_frame_that_has_them_are_refused() -> None:
    bars, predictions = frame_with_thresholds()
    predictions.loc[2, LONG_COLUMN] = np.nan
    with pytest.raises(DataError, match="1 of 6 predictions have no entry thresholds"):
        run_backtest(predictions, bars, FREE)


def test_long_short_description_and_a_quantile_fitted_elsewhere_is_noted() -> None:
    bars, predictions = frame_with_thresholds()
    predictions[QUANTILE_COLUMN] = 0.7
    rule, thresholds = resolve_entry(predictions, BacktestConfig(long_short=True))
    assert thresholds is not None
    np.testing.assert_array_equal(thresholds.long, LONG)
    assert rule.describe() == (
        "long when P(Up)-P(Down) > its training-fold 70% quantile (fold thresholds 0.000..0.080); "
        "short when P(Up)-P(Down) < its training-fold 30% quantile (fold thresholds -0.200..-0.050)"
    )
    result = run_backtest(predictions, bars, FREE)
    assert any("fitted at entry_quantile 0.7" in note for note in result.notes)
