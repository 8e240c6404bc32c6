"""Attribution methods add up (within each method's stated tolerance) and the background cache is leak-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.explain.conftest import planted_window_set, split, tiny_config
from trendcast.errors import LeakageError, ModelError
from trendcast.explain.shap_values import (
    BACKGROUND_FILE,
    IGConfig,
    attribute,
    background_from_training,
    load_background,
    save_background,
)
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.registry import create_model

# Tree SHAP and the rules for momentum/majority are exact, in float64: only rounding separates the sides.
EXACT_TOLERANCE = 1e-9
# Linear SHAP is exact too, but the logistic regression is fit on float32 rows and computes its logits in float32.
LINEAR_TOLERANCE = 1e-5
# Integrated Gradients is exact up to its quadrature error, which is small where the network is smooth along the
# straight path from baseline to input. A barely trained network is smooth; float32 gradients bound the floor.
IG_SMOOTH_TOLERANCE = 1e-4


def _scaled(model: DirectionModel, data: WindowSet, count: int) -> np.ndarray:
    return model.scaler.transform(data.take(np.arange(count))).windows()  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def smooth_bilstm(planted: tuple[WindowSet, WindowSet]) -> DirectionModel:
    config = tiny_config()
    config.bilstm.epochs, config.bilstm.learning_rate = 1, 1e-4
    return create_model("bilstm", config, threads=1, progress=False).fit(planted[0])


def test_integrated_gradients_is_complete_on_a_smooth_network(
    smooth_bilstm: DirectionModel, planted: tuple[WindowSet, WindowSet]
) -> None:
    train, test = planted
    background = background_from_training(smooth_bilstm, train, size=8, seed=1)
    x = _scaled(smooth_bilstm, test, 6)
    batch = attribute(smooth_bilstm, x, background=background, config=IGConfig(n_baselines=4, n_steps=32))
    proba = smooth_bilstm.predict_scaled(x)
    base = smooth_bilstm.predict_scaled(background[:4]).mean(axis=0)
    rows = np.arange(len(x))
    # the sides computed independently, through the model's own float64 softmax
    assert np.allclose(batch.output_values, proba[rows, batch.targets], atol=1e-5)
    assert np.allclose(batch.base_values, base[batch.targets], atol=1e-5)
    assert np.all(batch.targets == proba.argmax(axis=1))
    assert np.abs(batch.additivity_errors).max() < IG_SMOOTH_TOLERANCE
    assert np.abs(batch.output_values - batch.base_values).max() > 10 * IG_SMOOTH_TOLERANCE  # not trivially 0 = 0
    assert batch.steps is not None and batch.steps.shape == x.shape
    assert np.allclose(batch.steps.sum(axis=1), batch.features)


def test_integrated_gradients_error_is_quadrature_error(
    smooth_bilstm: DirectionModel, planted: tuple[WindowSet, WindowSet]
) -> None:
    """A crude 2-node trapezoid misses more than 32 Gauss-Legendre nodes: the error is the integral's, not a bug."""
    background = background_from_training(smooth_bilstm, planted[0], size=4, seed=2)
    x = _scaled(smooth_bilstm, planted[1], 4)
    crude = attribute(
        smooth_bilstm, x, background=background, config=IGConfig(n_baselines=4, n_steps=2, method="riemann_trapezoid")
    )
    fine = attribute(smooth_bilstm, x, background=background, config=IGConfig(n_baselines=4, n_steps=32))
    assert np.abs(fine.additivity_errors).max() < np.abs(crude.additivity_errors).max()


def test_integrated_gradients_reports_its_own_error_on_a_trained_network(
    bilstm: DirectionModel, background: np.ndarray, planted: tuple[WindowSet, WindowSet]
) -> None:
    x = _scaled(bilstm, planted[1], 5)
    batch = attribute(bilstm, x, background=background)
    base = bilstm.predict_scaled(background[: IGConfig().n_baselines]).mean(axis=0)[batch.targets]
    output = bilstm.predict_scaled(x)[np.arange(len(x)), batch.targets]
    assert np.allclose(batch.additivity_errors, batch.features.sum(axis=1) + base - output, atol=1e-5)
    assert batch.details["n_steps"] == IGConfig().n_steps and batch.details["baseline"] == "background"


def test_integrated_gradients_batches_like_single_samples(
    bilstm: DirectionModel, background: np.ndarray, planted: tuple[WindowSet, WindowSet]
) -> None:
    x = _scaled(bilstm, planted[1], 3)
    together = attribute(bilstm, x, background=background, config=IGConfig(max_batch=1))
    alone = attribute(bilstm, x[1:2], background=background)
    assert np.allclose(together.features[1], alone.features[0], atol=1e-5)


def test_tree_shap_is_exact(lightgbm_model: DirectionModel, planted: tuple[WindowSet, WindowSet]) -> None:
    x = _scaled(lightgbm_model, planted[1], 50)
    batch = attribute(lightgbm_model, x)
    assert batch.method == "tree_shap" and batch.output_space == "log_odds" and batch.steps is None
    assert np.abs(batch.additivity_errors).max() < EXACT_TOLERANCE
    raw = lightgbm_model.booster_.predict(x[:, -1, :], raw_score=True)  # type: ignore[attr-defined]
    assert np.allclose(batch.output_values, raw[np.arange(len(x)), batch.targets])


def test_tree_shap_on_a_binary_booster_explains_both_classes(planted: tuple[WindowSet, WindowSet]) -> None:
    train = planted[0]
    two = train.take(train.labels != 1)  # only Down and Up: LightGBM fits a binary booster
    model = create_model("lightgbm", tiny_config(), threads=1).fit(two)
    x = _scaled(model, planted[1], 20)
    for target in (0, 2):
        batch = attribute(model, x, targets=np.full(len(x), target))
        assert np.abs(batch.additivity_errors).max() < EXACT_TOLERANCE
    with pytest.raises(ModelError, match="never occurred in training"):
        attribute(model, x, targets=np.ones(len(x), dtype=np.int64))


def test_linear_shap_is_exact_and_uses_the_background_mean(
    planted: tuple[WindowSet, WindowSet], background: np.ndarray
) -> None:
    model = create_model("logreg", tiny_config()).fit(planted[0])
    x = _scaled(model, planted[1], 30)
    batch = attribute(model, x, background=background)
    assert batch.method == "linear_shap"
    assert np.abs(batch.additivity_errors).max() < LINEAR_TOLERANCE
    at_mean = attribute(
        model,
        np.repeat(background[:, -1:, :].mean(axis=0, keepdims=True), model.window, axis=1),
        targets=batch.targets[:1],
        background=background,
    )
    assert np.allclose(at_mean.features, 0.0, atol=1e-6)  # the mean input moves nothing


def test_momentum_puts_everything_on_ret_1_and_majority_on_nothing(
    planted: tuple[WindowSet, WindowSet], background: np.ndarray
) -> None:
    train, test = planted
    for name in ("momentum", "majority"):
        model = create_model(name, tiny_config()).fit(train)
        x = _scaled(model, test, 10)
        batch = attribute(model, x, background=background)
        assert np.abs(batch.additivity_errors).max() < EXACT_TOLERANCE
        others = np.delete(batch.features, train.feature_names.index("ret_1"), axis=1)
        assert np.all(others == 0.0)
        if name == "momentum":
            assert np.abs(batch.features).max() > 0.1
        else:
            assert np.all(batch.features == 0.0)


def test_unknown_model_types_raise_a_clear_error(planted: tuple[WindowSet, WindowSet]) -> None:
    class Stub(DirectionModel):
        name = "stub"

        def _fit(self, train: WindowSet, valid: WindowSet | None) -> None:
            pass

        def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
            return np.full((len(x), 3), 1 / 3)

    model = Stub(tiny_config()).fit(planted[0])
    with pytest.raises(ModelError, match="no explainer"):
        attribute(model, _scaled(model, planted[1], 2))


def test_background_comes_from_training_dates_and_round_trips(
    bilstm: DirectionModel, tmp_path: Path, planted: tuple[WindowSet, WindowSet]
) -> None:
    train, test = planted
    both = planted_window_set()  # train and test samples together: only the train dates may be drawn
    background = background_from_training(bilstm, both, size=500, seed=3)
    assert background.shape == (500, bilstm.window, len(bilstm.feature_names)) and background.dtype == np.float32
    scaled_train = bilstm.scaler.transform(train).windows()  # type: ignore[union-attr]
    flat_train = {row.tobytes() for row in scaled_train}
    assert all(window.tobytes() in flat_train for window in background)  # every window is a training window
    again = background_from_training(bilstm, both, size=500, seed=3)
    assert np.array_equal(background, again)
    path = save_background(tmp_path / "model", background)
    assert path.name == BACKGROUND_FILE
    loaded = load_background(tmp_path / "model")
    assert loaded is not None and np.array_equal(loaded, background)
    assert load_background(tmp_path / "elsewhere") is None
    with pytest.raises(LeakageError):
        background_from_training(bilstm, test, size=4)  # every test sample is after trained_through


def test_background_shape_is_checked(
    bilstm: DirectionModel, planted: tuple[WindowSet, WindowSet], tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match="background"):
        save_background(tmp_path, np.zeros((4, 3)))
    wrong = np.zeros((4, bilstm.window + 1, len(bilstm.feature_names)), dtype=np.float32)
    with pytest.raises(ModelError, match="background"):
        attribute(bilstm, _scaled(bilstm, planted[1], 1), background=wrong)
    other = split(planted_window_set(window=5))[0]
    with pytest.raises(ModelError, match="window"):
        background_from_training(bilstm, other)
