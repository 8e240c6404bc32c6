"""Entry thresholds fitted on each training fold: they are quantiles of the fitted model's scores on the fold's
most recent training dates, nothing after the training cut moves them, and on synthetic bars the fitted rule is in
the market about 1 - entry_quantile of the test days where the fixed 0.4 rule on a majority model never is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendcast.backtest import run_backtest
from trendcast.backtest.entry import LONG_COLUMN, QUANTILE_COLUMN, SHORT_COLUMN
from trendcast.config import BacktestConfig, ExperimentConfig, LabelConfig, WalkForwardConfig
from trendcast.data.synthetic import random_walk_bars
from trendcast.errors import LeakageError
from trendcast.evaluation.entry_fit import fit_entry_thresholds, recent_training_sample
from trendcast.evaluation.executor import LocalExecutor, fit_fold, merge, plan
from trendcast.evaluation.walk_forward import make_folds, run_walk_forward
from trendcast.features.windows import WindowSet, build_window_set
from trendcast.models.registry import create_model

FEATURES = ["ret_1", "ret_5", "rsi_14", "volatility_20"]
CONFIG = ExperimentConfig(
    window=8,
    features=FEATURES,
    labels=LabelConfig(horizon=1, threshold=0.005),
    walk_forward=WalkForwardConfig(folds=3, min_train_fraction=0.5),
    backtest=BacktestConfig(entry_quantile=0.6),
)


def windows(bars: pd.DataFrame) -> WindowSet:
    return build_window_set(bars, window=CONFIG.window, labels=CONFIG.labels, features=CONFIG.features)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return random_walk_bars(n_tickers=3, n_days=320, seed=5)


@pytest.fixture(scope="module")
def ws(bars: pd.DataFrame) -> WindowSet:
    return windows(bars)


def test_fold_thresholds_are_quantiles_of_the_recent_training_scores(ws: WindowSet) -> None:
    tasks = plan(ws, ["logreg"], CONFIG)
    outputs = LocalExecutor().map(ws, tasks, CONFIG, create_model)
    merged = merge(outputs, [t.fold for t in tasks], ["logreg"]).predictions["logreg"]
    for output in outputs:
        fold = output.fold
        train_days = sorted(set(pd.DatetimeIndex(ws.dates[fold.train_mask(ws.dates)])))
        recent = train_days[len(train_days) - int(np.ceil(0.2 * len(train_days))) :]  # the last 20% of the dates
        chosen = np.isin(ws.dates, pd.DatetimeIndex(recent).to_numpy())
        proba = output.fitted.predict_proba(ws.take(chosen))
        score = proba[:, 2] - proba[:, 0]
        assert output.entry is not None and output.entry.n_samples == int(chosen.sum())
        assert output.entry.long == pytest.approx(np.quantile(score, 0.6), abs=1e-12)
        assert output.entry.short == pytest.approx(np.quantile(score, 0.4), abs=1e-12)
        assert output.entry.last_date == fold.train_end and output.entry.first_date == recent[0]
        rows = merged[merged["fold"] == fold.index]
        assert len(rows) == output.n_test
        assert set(rows[LONG_COLUMN]) == {output.entry.long} and set(rows[SHORT_COLUMN]) == {output.entry.short}
        assert set(rows[QUANTILE_COLUMN]) == {0.6}


def test_the_sample_is_capped_at_random_inside_the_recent_dates(ws: WindowSet) -> None:
    tail = recent_training_sample(ws, seed=1)
    capped, again, other = (recent_training_sample(ws, seed=s, max_samples=40) for s in (1, 1, 2))
    assert len(capped) == 40 and set(capped) <= set(tail) and np.all(np.diff(capped) > 0)
    np.testing.assert_array_equal(capped, again)
    assert not np.array_equal(capped, other)


def test_nothing_after_the_training_cut_moves_the_thresholds(bars: pd.DataFrame, ws: WindowSet) -> None:
    fold = make_folds(ws, CONFIG)[0]
    task = plan(ws, ["logreg"], CONFIG)[0]
    later = pd.to_datetime(bars["date"]) >= fold.test_start
    moved = bars.copy()
    factor = np.where(later, np.random.default_rng(9).uniform(0.7, 1.3, len(bars)), 1.0)
    for column in ("open", "high", "low", "close", "adj_close"):
        moved[column] = moved[column] * factor
    original, shifted = fit_fold(ws, task, CONFIG, create_model), fit_fold(windows(moved), task, CONFIG, create_model)
    assert not np.allclose(original.predictions["p_up"], shifted.predictions["p_up"])  # the test period did move
    assert original.entry == shifted.entry


def test_thresholds_from_samples_after_the_training_cut_are_refused(ws: WindowSet) -> None:
    fold = make_folds(ws, CONFIG)[0]
    model = create_model("logreg", CONFIG).fit(ws.take(fold.train_mask(ws.dates)))
    with pytest.raises(LeakageError, match="training cut"):
        fit_entry_thresholds(model, ws.take(ws.dates <= fold.test_start.to_datetime64()), fold.train_end, CONFIG)


def test_the_fitted_rule_trades_where_the_fixed_rule_on_a_majority_model_does_not(
    bars: pd.DataFrame, ws: WindowSet
) -> None:
    config = CONFIG.model_copy(update={"backtest": BacktestConfig(entry_quantile=0.5)})
    result = run_walk_forward(ws, ["logreg", "majority"], config, progress=False)
    fitted = run_backtest(result.predictions["logreg"], bars, config.backtest)
    fixed = run_backtest(
        result.predictions["majority"], bars, config.backtest.model_copy(update={"entry_rule": "fixed"})
    )
    assert fitted.entry.rule == "train_quantile" and fixed.entry.rule == "fixed"
    in_market = (fitted.positions != 0).to_numpy().mean()
    assert 0.35 < in_market < 0.65  # about 1 - entry_quantile of the test days
    assert (fixed.positions != 0).to_numpy().mean() < 0.05
