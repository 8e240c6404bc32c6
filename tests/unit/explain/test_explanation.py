"""The Explanation object: its numbers, its attention, its JSON form, and a sentence whose every number is true."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from tests.unit.explain.conftest import SIGNAL
from trendcast.errors import DataError, ModelError
from trendcast.explain.explanation import (
    Explanation,
    FeatureContribution,
    build_sentence,
    display_value,
    explain_sample,
    explain_window,
    window_of,
)
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel

NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?%?")

# What the sentence should show for each test feature's raw value, written out independently of the code.
EXPECTED_SHOWN = {
    "rsi_14": lambda v: (v, 0),  # level, no decimals
    "ret_1": lambda v: (100 * math.expm1(v), 2 if abs(100 * math.expm1(v)) < 1 else 1),  # log return as simple %
    "volatility_20": lambda v: (100 * v, 2 if abs(100 * v) < 1 else 1),  # fraction as %
    "sma_ratio_20": lambda v: (100 * v, 2 if abs(100 * v) < 1 else 1),
    "volume_z_20": lambda v: (v, 2),
    "cmf_20": lambda v: (v, 2),
}


FACTOR = re.compile(r"(?:^|, | and )(?P<label>.+?) at (?P<value>\S+) \((?P<contribution>[+-]\d+\.\d+)\)")
REST = re.compile(r"(?P<count>\d+) smaller factors? net (?P<net>[+-]\d+\.\d+) (?P<side>towards \w+|against it)")
ATTENTION = re.compile(r"the last (?P<days>\d+) days carried (?P<share>\d+)% of the attention")


def check_factor(explanation: Explanation, label: str, value: str, contribution: str, sign: int) -> float:
    """One named factor: a top feature, its value shown as EXPECTED_SHOWN says, its contribution rounded."""
    f = next(f for f in explanation.top_features if f.label == label)
    decimals = len(contribution.split(".")[1])
    assert sign * float(contribution) > 0
    assert abs(float(contribution) - f.contribution) <= 0.5 * 10**-decimals + 1e-12
    number = NUMBER.fullmatch(value)
    assert number is not None, value
    shown = float(number.group(0).rstrip("%"))
    expected, value_decimals = EXPECTED_SHOWN[f.feature](f.value)
    assert abs(shown - expected) <= 0.5 * 10**-value_decimals + 1e-9, (f.feature, shown, expected)
    assert value.endswith("%") == (f.feature in ("ret_1", "volatility_20", "sma_ratio_20"))
    return float(contribution)


def check_sentence(explanation: Explanation) -> None:
    """Every number in the sentence is a rounded field of the explanation, and the contributions it shows (named
    factors and the rest's net) add up to the total contribution."""
    label = explanation.predicted_label
    head = re.fullmatch(r"(\w+) \((\d\.\d\d)\): (.*)\.", explanation.sentence)
    assert head is not None and head.group(1) == label
    assert abs(float(head.group(2)) - explanation.probabilities[label]) <= 0.005 + 1e-9
    shown, decimals, terms = 0.0, 0, 2
    for clause in head.group(3).split("; "):
        if (attention := ATTENTION.fullmatch(clause)) is not None:
            assert explanation.attention is not None and int(attention["days"]) == explanation.attention_recent_days
            weights = np.array([a.weight for a in explanation.attention])
            assert abs(int(attention["share"]) - 100 * weights[-int(attention["days"]) :].sum()) <= 0.5 + 1e-9
        elif (rest := REST.fullmatch(clause)) is not None:
            assert (float(rest["net"]) > 0) == rest["side"].startswith("towards")
            shown += float(rest["net"])
            decimals = max(decimals, len(rest["net"].split(".")[1]))
        elif clause.endswith((f" pushed towards {label}", " pushed against it")):
            sign = 1 if clause.endswith(label) else -1
            factors = list(FACTOR.finditer(clause.rsplit(" pushed ", 1)[0]))
            assert 1 <= len(factors) <= 2
            for m in factors:
                shown += check_factor(explanation, m["label"], m["value"], m["contribution"], sign)
                decimals, terms = max(decimals, len(m["contribution"].split(".")[1])), terms + 1
        else:
            assert clause == "no feature moved it away from the base rate", clause
    assert (explanation.attention is not None) == ("attention" in explanation.sentence)
    total = sum(explanation.contributions.values())
    assert abs(shown - total) <= terms * 0.5 * 10 ** -max(decimals, 2) + 1e-12, (shown, total, explanation.sentence)


def test_bilstm_explanation_fields_and_sentence(
    bilstm: DirectionModel, background: np.ndarray, planted: tuple[WindowSet, WindowSet]
) -> None:
    test = planted[1]
    for i in (0, 7, 42, 99):
        explanation = explain_sample(bilstm, test, i, background=background)
        proba = bilstm.predict_proba(test.take(np.array([i])))[0]
        assert np.allclose(list(explanation.probabilities.values()), proba)
        assert explanation.predicted_class == int(proba.argmax())
        assert explanation.ticker == "SIG" and explanation.as_of == pd.Timestamp(test.dates[i])
        assert explanation.method == "integrated_gradients" and explanation.output_space == "probability"
        assert abs(explanation.output_value - proba[explanation.predicted_class]) < 1e-5
        total = sum(explanation.contributions.values()) + explanation.base_value - explanation.output_value
        assert explanation.additivity_error == pytest.approx(total, abs=1e-9)
        raw_last = test.windows(np.array([i]))[0, -1]
        for f in explanation.top_features:  # raw, unscaled indicator values on the signal date
            assert f.value == pytest.approx(float(raw_last[test.feature_names.index(f.feature)]), rel=1e-6)
        check_sentence(explanation)


def test_attention_is_a_distribution_over_the_window_dates(
    bilstm: DirectionModel, background: np.ndarray, planted: tuple[WindowSet, WindowSet]
) -> None:
    test = planted[1]
    for i in range(0, len(test), 25):
        explanation = explain_sample(bilstm, test, i, background=background)
        assert explanation.attention is not None
        weights = np.array([a.weight for a in explanation.attention])
        assert weights.shape == (bilstm.window,) and (weights >= 0).all()
        assert weights.sum() == pytest.approx(1.0, abs=1e-5)
        _, dates = window_of(test, i)
        assert [a.date for a in explanation.attention] == dates
        assert [a.step for a in explanation.attention] == list(range(-bilstm.window + 1, 1))
        assert explanation.attention_recent_share == pytest.approx(weights[-5:].sum())


def test_lightgbm_explanation_has_no_attention_and_exact_sum(
    lightgbm_model: DirectionModel, planted: tuple[WindowSet, WindowSet]
) -> None:
    explanation = explain_sample(lightgbm_model, planted[1], 3, top_k=6)
    assert explanation.attention is None and "attention" not in explanation.sentence
    assert explanation.method == "tree_shap" and abs(explanation.additivity_error) < 1e-9
    assert len(explanation.top_features) == 6
    assert [abs(f.contribution) for f in explanation.top_features] == sorted(
        (abs(c) for c in explanation.contributions.values()), reverse=True
    )
    check_sentence(explanation)


def test_to_dict_is_json(bilstm: DirectionModel, background: np.ndarray, planted: tuple[WindowSet, WindowSet]) -> None:
    explanation = explain_sample(bilstm, planted[1], 5, background=background)
    data = json.loads(json.dumps(explanation.to_dict(include_steps=True)))
    assert data["predicted_label"] == explanation.predicted_label and data["as_of"] == str(explanation.as_of.date())
    assert len(data["attention"]) == bilstm.window and data["attention"][-1]["step"] == 0
    assert np.array(data["step_contributions"]).shape == (bilstm.window, len(bilstm.feature_names))
    assert data["top_features"][0]["feature"] == explanation.top_features[0].feature
    assert "step_contributions" not in explanation.to_dict()


def test_window_without_dates_or_ticker(bilstm: DirectionModel, planted: tuple[WindowSet, WindowSet]) -> None:
    window, _ = window_of(planted[1], 0)
    explanation = explain_window(bilstm, window, top_k=2)  # no background: the median window is the baseline
    assert explanation.ticker is None and explanation.as_of is None and len(explanation.top_features) == 2
    assert explanation.method_details["baseline"] == "median"
    assert explanation.attention is not None and all(a.date is None for a in explanation.attention)
    assert json.dumps(explanation.to_dict())


def test_bad_windows_are_refused_with_a_fix(bilstm: DirectionModel, planted: tuple[WindowSet, WindowSet]) -> None:
    window, dates = window_of(planted[1], 0)
    with pytest.raises(DataError, match="shape"):
        explain_window(bilstm, window[1:])
    broken = window.astype(np.float64).copy()
    broken[-1, 1] = np.nan
    with pytest.raises(DataError, match=SIGNAL):
        explain_window(bilstm, broken)
    with pytest.raises(DataError, match="dates"):
        explain_window(bilstm, window, dates[1:])
    with pytest.raises(ModelError, match="top_k"):
        explain_window(bilstm, window, top_k=0)


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("rsi_14", 71.4, "71"),
        ("ret_20", math.log(1.06), "+6.0%"),
        ("ret_1", math.log(0.995), "-0.50%"),
        ("sma_ratio_20", 0.0234, "+2.3%"),
        ("volatility_20", 0.0161, "1.6%"),
        ("roc_10", -3.25, "-3.2%"),
        ("cmf_20", 0.123, "0.12"),
        ("ret_1", 0.0, "0.00%"),
    ],
)
def test_display_value(feature: str, value: float, text: str) -> None:
    assert display_value(feature, value)[1] == text


def test_sentence_names_both_directions_and_the_attention() -> None:
    def item(label: str, contribution: float, text: str) -> FeatureContribution:
        return FeatureContribution(label.lower(), label, "returns", contribution, 0.0, text)

    sentence = build_sentence(
        "Up", 0.6241, [item("A", 0.2, "+6.0%"), item("B", -0.1, "71"), item("C", 0.05, "1")], 5, 0.4849
    )
    assert sentence == (
        "Up (0.62): A at +6.0% (+0.20) and C at 1 (+0.05) pushed towards Up; B at 71 (-0.10) pushed against it; "
        "the last 5 days carried 48% of the attention."
    )
    assert build_sentence("Neutral", 0.5, [item("A", 0.0, "1")], None, None) == (
        "Neutral (0.50): no feature moved it away from the base rate."
    )
