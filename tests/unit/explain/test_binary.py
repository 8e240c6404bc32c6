"""Explanations of binary (cross_sectional) models: attribution and attention work with Neutral masked, and the
sentence names the class relative to the day's cross-sectional median, not as an absolute move."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.unit.explain.conftest import planted_window_set, split, tiny_config
from trendcast.config import LabelConfig
from trendcast.explain.explanation import build_sentence, explain_sample
from trendcast.explain.shap_values import background_from_training
from trendcast.features.labels import DOWN, UP
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.registry import create_model

HEADLINES = {"Up": "Above the cross-sectional median", "Down": "Below the cross-sectional median"}


@pytest.fixture(scope="module")
def binary() -> tuple[WindowSet, WindowSet]:
    """The planted set with its label cut at the median instead of terciles: Up above it, Down at or below."""
    ws = planted_window_set(n_samples=800)
    labels = np.where(ws.forward_returns > np.median(ws.forward_returns), UP, DOWN).astype(np.int64)
    return split(replace(ws, labels=labels))


def _binary_model(name: str, train: WindowSet) -> DirectionModel:
    config = tiny_config().model_copy(update={"labels": LabelConfig(mode="cross_sectional")})
    options = {"threads": 1, "progress": False} if name == "bilstm" else {"threads": 1}
    return create_model(name, config, **options).fit(train)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["bilstm", "lightgbm"])
def test_binary_model_explanations_add_up_and_speak_of_the_median(
    name: str, binary: tuple[WindowSet, WindowSet]
) -> None:
    train, test = binary
    model = _binary_model(name, train)
    background = background_from_training(model, train, size=16, seed=0) if name == "bilstm" else None
    for i in (0, 11, 57):
        explanation = explain_sample(model, test, i, background=background)
        proba = model.predict_proba(test.take(np.array([i])))[0]
        assert explanation.probabilities["Neutral"] == 0.0
        assert explanation.predicted_class in (DOWN, UP) and explanation.predicted_class == int(proba.argmax())
        assert explanation.label_mode == "cross_sectional" and explanation.to_dict()["label_mode"] == "cross_sectional"
        headline = HEADLINES[explanation.predicted_label]
        assert explanation.sentence.startswith(f"{headline} ({proba.max():.2f}): "), explanation.sentence
        assert " Up" not in explanation.sentence and " Down" not in explanation.sentence
        total = sum(explanation.contributions.values()) + explanation.base_value - explanation.output_value
        assert explanation.additivity_error == pytest.approx(total, abs=1e-9)
        if name == "bilstm":
            assert explanation.attention is not None
            weights = np.array([a.weight for a in explanation.attention])
            assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0, abs=1e-5)
            assert abs(explanation.output_value - proba[explanation.predicted_class]) < 1e-5
        else:
            assert explanation.method == "tree_shap" and abs(explanation.additivity_error) < 1e-9


def test_relative_sentence_wording() -> None:
    from tests.unit.explain.test_sentence import feature

    features = [feature(0, 0.21), feature(1, -0.05), feature(2, 0.01), feature(3, 0.02)]
    absolute = build_sentence("Up", 0.62, features, None, None)
    relative = build_sentence("Up", 0.62, features, None, None, label_mode="cross_sectional")
    assert relative == absolute.replace("Up (", "Above the cross-sectional median (").replace(
        "towards Up", "towards above the median"
    )
    down = build_sentence("Down", 0.55, features, 5, 0.5, label_mode="cross_sectional")
    assert down.startswith("Below the cross-sectional median (0.55): ") and "towards below the median" in down
