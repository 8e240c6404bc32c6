"""LIME explanations: the same Explanation object, deterministic given the seed, within the sample budget, and
pointing at the planted signal with the right sign."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from tests.unit.explain.conftest import SIGNAL
from trendcast.errors import ModelError
from trendcast.explain.explanation import explain_sample, explain_window, window_of
from trendcast.explain.lime_values import LimeConfig, lime_attribute
from trendcast.explain.shap_values import background_from_training
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel


@pytest.fixture(scope="module")
def lgbm_background(lightgbm_model: DirectionModel, planted: tuple[WindowSet, WindowSet]) -> np.ndarray:
    return background_from_training(lightgbm_model, planted[0], size=32, seed=0)


def confident(model: DirectionModel, test: WindowSet, label: int, count: int = 3) -> list[int]:
    """Samples the model predicts as `label` most confidently (the planted signal decides them)."""
    proba = model.predict_proba(test)
    mine = np.flatnonzero(proba.argmax(axis=1) == label)
    return [int(i) for i in mine[np.argsort(-proba[mine, label])][:count]]


@pytest.mark.parametrize("kind", ["bilstm", "lightgbm"])
def test_lime_explanation_is_the_explanation_object_and_adds_up_to_its_local_model(
    kind: str,
    bilstm: DirectionModel,
    lightgbm_model: DirectionModel,
    background: np.ndarray,
    lgbm_background: np.ndarray,
    planted: tuple[WindowSet, WindowSet],
) -> None:
    model, bg = (bilstm, background) if kind == "bilstm" else (lightgbm_model, lgbm_background)
    explanation = explain_sample(model, planted[1], 3, background=bg, method="lime")
    proba = model.predict_proba(planted[1].take(np.array([3])))[0]
    assert explanation.method == "lime" and explanation.output_space == "probability"
    assert explanation.output_value == pytest.approx(proba[explanation.predicted_class])
    details = explanation.method_details
    local = details["local_prediction"]  # the local model at the window: intercept + every weight (all indicators 1)
    assert explanation.base_value + sum(explanation.contributions.values()) == pytest.approx(local, abs=1e-9)
    assert explanation.additivity_error == pytest.approx(local - explanation.output_value, abs=1e-9)
    assert 0.0 <= details["score"] <= 1.0
    assert (explanation.attention is not None) == (kind == "bilstm")  # attention still comes from the forward pass
    if kind == "bilstm":
        assert explanation.step_contributions is not None
        assert explanation.step_contributions.shape == (model.window, len(model.feature_names))
        steps = explanation.step_contributions.sum(axis=0)
        assert np.allclose(steps, [explanation.contributions[n] for n in model.feature_names])


@pytest.mark.parametrize("kind", ["bilstm", "lightgbm"])
def test_lime_is_deterministic_given_the_seed(
    kind: str,
    bilstm: DirectionModel,
    lightgbm_model: DirectionModel,
    background: np.ndarray,
    lgbm_background: np.ndarray,
    planted: tuple[WindowSet, WindowSet],
) -> None:
    model, bg = (bilstm, background) if kind == "bilstm" else (lightgbm_model, lgbm_background)
    runs = [
        explain_sample(model, planted[1], 11, background=bg, method="lime", lime=LimeConfig(seed=seed)).contributions
        for seed in (7, 8, 7)
    ]
    assert runs[0] == runs[2]
    assert runs[0] != runs[1]  # the seed is really used


def test_lime_draws_exactly_its_budget_of_samples(
    bilstm: DirectionModel, background: np.ndarray, planted: tuple[WindowSet, WindowSet]
) -> None:
    seen: list[int] = []

    class Counting:
        """The Bi-LSTM, counting the windows LIME asks about."""

        def __getattr__(self, name: str) -> object:
            return getattr(bilstm, name)

        def predict_scaled(self, x: np.ndarray) -> np.ndarray:
            seen.append(len(x))
            return bilstm.predict_scaled(x)

    window = bilstm.scale_rows(window_of(planted[1], 0)[0])[None]
    target = int(bilstm.predict_scaled(window)[0].argmax())
    batch = lime_attribute(Counting(), window, target, background, LimeConfig(num_samples=123))  # type: ignore[arg-type]
    assert seen[0] == 123 and sum(seen) == 123 + 1  # the neighbourhood, then the explained window itself
    assert batch.details["num_samples"] == 123


def test_lime_budget_keeps_an_explanation_fast(
    bilstm: DirectionModel, background: np.ndarray, planted: tuple[WindowSet, WindowSet]
) -> None:
    """The default budget on the test Bi-LSTM (the default-size model is timed in docs/api.md: ~1 s)."""
    seconds = []
    for i in range(4):
        started = time.perf_counter()
        explain_sample(bilstm, planted[1], i, background=background, method="lime")
        seconds.append(time.perf_counter() - started)
    assert statistics.median(seconds[1:]) < 2.0


@pytest.mark.parametrize("kind", ["bilstm", "lightgbm"])
@pytest.mark.parametrize("label", [0, 2])
def test_lime_finds_the_planted_signal_with_the_right_sign(
    kind: str,
    label: int,
    bilstm: DirectionModel,
    lightgbm_model: DirectionModel,
    background: np.ndarray,
    lgbm_background: np.ndarray,
    planted: tuple[WindowSet, WindowSet],
) -> None:
    """Down and Up are the low and high terciles of ret_1 (plus noise): ret_1 is the top feature and pushes towards
    the confidently predicted class; for Up its value is positive, for Down negative."""
    model, bg = (bilstm, background) if kind == "bilstm" else (lightgbm_model, lgbm_background)
    for i in confident(model, planted[1], label):
        explanation = explain_sample(model, planted[1], i, background=bg, method="lime")
        top = explanation.top_features[0]
        assert explanation.predicted_class == label
        assert top.feature == SIGNAL and top.contribution > 0, explanation.sentence
        assert np.sign(top.value) == (1 if label == 2 else -1)


def test_lime_needs_the_background_and_a_known_method(
    lightgbm_model: DirectionModel, planted: tuple[WindowSet, WindowSet]
) -> None:
    window, _ = window_of(planted[1], 0)
    with pytest.raises(ModelError, match="background"):
        explain_window(lightgbm_model, window, method="lime")
    with pytest.raises(ModelError, match="method"):
        explain_window(lightgbm_model, window, method="kernel")  # type: ignore[arg-type]


def test_a_sequence_model_keeps_only_its_strongest_cells(
    bilstm: DirectionModel, background: np.ndarray, planted: tuple[WindowSet, WindowSet]
) -> None:
    """More cells than samples would let the ridge fit interpolate; with num_features the local model keeps that
    many (day, feature) cells, and still adds up to its own prediction at the window."""
    explanation = explain_sample(
        bilstm, planted[1], 5, background=background, method="lime", lime=LimeConfig(num_features=8)
    )
    assert explanation.step_contributions is not None
    assert np.count_nonzero(explanation.step_contributions) <= 8 and explanation.method_details["num_features"] == 8
    local = explanation.method_details["local_prediction"]
    assert explanation.base_value + sum(explanation.contributions.values()) == pytest.approx(local, abs=1e-9)
    assert explanation.top_features[0].feature == SIGNAL
