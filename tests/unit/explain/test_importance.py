"""Global importance finds the planted signal, for the Bi-LSTM and for LightGBM, and sums groups correctly."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.explain.conftest import SIGNAL
from trendcast.explain.explanation import explain_sample
from trendcast.explain.importance import (
    compute_attributions,
    global_importance,
    group_importance,
    importance_metrics,
    importance_table,
)
from trendcast.features.indicators import BY_NAME
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel


def test_models_learned_the_planted_signal(
    bilstm: DirectionModel, lightgbm_model: DirectionModel, planted: tuple[WindowSet, WindowSet]
) -> None:
    test = planted[1]
    for model in (bilstm, lightgbm_model):
        accuracy = (model.predict_proba(test).argmax(axis=1) == test.labels).mean()
        assert accuracy > 0.5, model.name  # chance is 1/3: the fixtures below explain a model that learned


@pytest.mark.parametrize("model_fixture", ["bilstm", "lightgbm_model"])
def test_planted_feature_ranks_first(
    model_fixture: str, request: pytest.FixtureRequest, background: np.ndarray, planted: tuple[WindowSet, WindowSet]
) -> None:
    model: DirectionModel = request.getfixturevalue(model_fixture)
    test = planted[1]
    table = global_importance(model, test, max_samples=120, background=background)
    assert table["feature"].iloc[0] == SIGNAL
    assert table["share"].iloc[0] > 0.5  # it dominates, not merely edges ahead
    tops = [
        explain_sample(model, test, i, top_k=1, background=background).top_features[0].feature
        for i in range(0, len(test), 12)
    ]
    assert tops.count(SIGNAL) / len(tops) > 0.7


def test_table_columns_and_group_sums(lightgbm_model: DirectionModel, planted: tuple[WindowSet, WindowSet]) -> None:
    attributions = compute_attributions(lightgbm_model, planted[1], max_samples=80, seed=1)
    table = importance_table(attributions)
    assert len(attributions.batch) == 80 and attributions.values.shape == (80, len(lightgbm_model.feature_names))
    expected = np.abs(attributions.batch.features).mean(axis=0)
    by_name = dict(zip(table["feature"], table["mean_abs"], strict=True))
    assert all(by_name[n] == pytest.approx(expected[j]) for j, n in enumerate(attributions.feature_names))
    assert list(table["mean_abs"]) == sorted(table["mean_abs"], reverse=True)
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert table["share"].sum() == pytest.approx(1.0)
    assert all(table["group"] == [BY_NAME[n].group for n in table["feature"]])
    groups = group_importance(table)
    for row in groups.itertuples():
        assert row.mean_abs == pytest.approx(table.loc[table["group"] == row.group, "mean_abs"].sum())
    assert groups["group"].iloc[0] == BY_NAME[SIGNAL].group
    metrics = importance_metrics(table)
    assert metrics[f"importance.{SIGNAL}"] == pytest.approx(table["share"].iloc[0])
    assert sum(v for k, v in metrics.items() if k.startswith("importance_group.")) == pytest.approx(1.0)


def test_sampling_is_seeded_and_capped(lightgbm_model: DirectionModel, planted: tuple[WindowSet, WindowSet]) -> None:
    a = compute_attributions(lightgbm_model, planted[1], max_samples=30, seed=4)
    b = compute_attributions(lightgbm_model, planted[1], max_samples=30, seed=4)
    assert np.array_equal(a.dates, b.dates) and len(a.dates) == 30
    everything = compute_attributions(lightgbm_model, planted[1], max_samples=10_000)
    assert len(everything.dates) == len(planted[1])


def test_fixed_target_gives_signs_that_follow_the_signal(
    lightgbm_model: DirectionModel, planted: tuple[WindowSet, WindowSet]
) -> None:
    """Towards Up for every sample: a higher planted feature must push towards Up (positive correlation)."""
    attributions = compute_attributions(lightgbm_model, planted[1], max_samples=100, target=2)
    assert set(attributions.batch.targets) == {2}
    j = attributions.feature_names.index(SIGNAL)
    assert np.corrcoef(attributions.values[:, j], attributions.batch.features[:, j])[0, 1] > 0.8
