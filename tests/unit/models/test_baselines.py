"""Baselines follow the same contract as the Bi-LSTM, and each does what its name says."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.models._data import WINDOW, majority_rate, tiny_config
from trendcast.config import LabelConfig
from trendcast.data.synthetic import planted_signal_bars
from trendcast.errors import ModelError
from trendcast.features.labels import DOWN, UP
from trendcast.features.windows import WindowSet, build_window_set
from trendcast.models.base import DirectionModel
from trendcast.models.baselines import LightGBMModel, LogisticModel, MajorityModel, MomentumModel, full_proba

Split = tuple[WindowSet, WindowSet]
BASELINES: list[type[DirectionModel]] = [MajorityModel, MomentumModel, LogisticModel, LightGBMModel]


@pytest.mark.parametrize("model_class", BASELINES, ids=lambda c: c.name)
def test_contract(model_class: type[DirectionModel], small_split: Split) -> None:
    train, test = small_split
    model = model_class(tiny_config())
    assert model.fit(train) is model
    proba = model.predict_proba(test)
    assert proba.shape == (len(test), 3)
    assert (proba >= 0).all() and np.allclose(proba.sum(axis=1), 1.0)
    frame = model.predict_frame(test)
    assert list(frame.columns[-3:]) == ["p_down", "p_neutral", "p_up"]
    assert np.array_equal(frame[["p_down", "p_neutral", "p_up"]].to_numpy(), proba)


@pytest.mark.parametrize("model_class", BASELINES, ids=lambda c: c.name)
def test_tabular_models_only_read_the_signal_date(model_class: type[DirectionModel], small_split: Split) -> None:
    train, test = small_split
    model = model_class(tiny_config()).fit(train)
    assert not model.uses_sequence
    x = model.scale_rows(test.windows().reshape(-1, test.n_features)).reshape(len(test), WINDOW, -1)
    shuffled = x.copy()
    shuffled[:, :-1, :] = np.random.default_rng(0).normal(size=shuffled[:, :-1, :].shape)
    assert np.array_equal(model.predict_scaled(x), model.predict_scaled(shuffled))


def test_majority_predicts_the_training_frequencies(small_split: Split) -> None:
    train, test = small_split
    proba = MajorityModel(tiny_config()).fit(train).predict_proba(test)
    expected = np.bincount(train.labels, minlength=3) / len(train)
    assert np.allclose(proba, expected)


def test_momentum_follows_the_sign_of_the_raw_one_day_return(small_split: Split) -> None:
    train, test = small_split
    model = MomentumModel(tiny_config()).fit(train)
    raw = test.last_step()[:, test.feature_names.index("ret_1")]  # unscaled ret_1 on the signal date
    assert (raw > 0).any() and (raw <= 0).any()
    predicted = model.predict_proba(test).argmax(axis=1)
    assert np.array_equal(predicted, np.where(raw > 0, UP, DOWN))


def test_momentum_needs_ret_1(small_split: Split) -> None:
    bars = planted_signal_bars(n_tickers=1, n_days=120, seed=1)
    data = build_window_set(bars, window=WINDOW, labels=LabelConfig(), features=["ret_5", "gap"])
    with pytest.raises(ModelError, match="ret_1"):
        MomentumModel(tiny_config()).fit(data)


@pytest.mark.parametrize("model_class", [LogisticModel, LightGBMModel], ids=lambda c: c.name)
def test_learners_refuse_a_single_class(model_class: type[DirectionModel], small_split: Split) -> None:
    train = small_split[0]
    with pytest.raises(ModelError, match="only one class"):
        model_class(tiny_config()).fit(train.take(train.labels == UP))


def test_full_proba_spreads_missing_classes() -> None:
    assert np.array_equal(full_proba(np.array([[0.25, 0.75]]), np.array([0, 2])), [[0.25, 0.0, 0.75]])
    assert np.array_equal(full_proba(np.array([0.75]), np.array([0, 2])), [[0.25, 0.0, 0.75]])


def test_lightgbm_stops_early_on_a_validation_set(small_split: Split) -> None:
    train, valid = small_split
    config = tiny_config()
    config.lightgbm.n_estimators, config.lightgbm.early_stopping_rounds = 400, 10
    with_valid = LightGBMModel(config).fit(train, valid)
    without = LightGBMModel(config).fit(train)
    assert with_valid.booster_ is not None and without.booster_ is not None
    assert without.booster_.current_iteration() == 400
    best = with_valid.booster_.best_iteration
    assert 1 <= best < 400 - 10
    again = LightGBMModel(config).fit(train, valid)
    assert np.array_equal(with_valid.predict_proba(valid), again.predict_proba(valid))  # deterministic


def test_lightgbm_finds_the_planted_signal(planted_split: Split) -> None:
    train, test = planted_split
    model = LightGBMModel(tiny_config()).fit(train)
    accuracy = float(np.mean(model.predict_proba(test).argmax(axis=1) == test.labels))
    assert accuracy > majority_rate(test.labels) + 0.1
