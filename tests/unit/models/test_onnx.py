"""ONNX export: the exported graph matches PyTorch for any batch size, and the predictor checks its inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.models._data import WINDOW, tiny_config
from trendcast.errors import ModelError, ModelNotReadyError
from trendcast.features.windows import WindowSet
from trendcast.models.bilstm_attention import BiLSTMModel
from trendcast.models.onnx_export import OnnxPredictor, export_onnx, max_abs_difference


@pytest.fixture(scope="module")
def exported(
    small_split: tuple[WindowSet, WindowSet], tmp_path_factory: pytest.TempPathFactory
) -> tuple[BiLSTMModel, Path, np.ndarray]:
    model = BiLSTMModel(tiny_config(epochs=1), threads=1).fit(small_split[0])
    probe = np.random.default_rng(1).normal(size=(5, WINDOW, 5)).astype(np.float32)
    before = model.predict_scaled_with_attention(probe)[0]
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "nested" / "bilstm.onnx")
    return model, path, before


@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_matches_pytorch(exported: tuple[BiLSTMModel, Path, np.ndarray], batch: int) -> None:
    model, path, _ = exported
    predictor = OnnxPredictor(path, threads=1)
    x = np.random.default_rng(batch).normal(size=(batch, WINDOW, 5)).astype(np.float32) * 2
    proba, attention = predictor.predict(x)
    torch_proba, torch_attention = model.predict_scaled_with_attention(x)
    assert proba.shape == (batch, 3) and attention.shape == (batch, WINDOW)
    assert np.abs(proba - torch_proba).max() < 1e-5
    assert np.abs(attention - torch_attention).max() < 1e-5
    assert max_abs_difference(model, predictor, x) < 1e-5
    assert np.allclose(attention.sum(axis=1), 1.0, atol=1e-5)


def test_export_keeps_the_batch_dimension_dynamic_and_the_model_intact(
    exported: tuple[BiLSTMModel, Path, np.ndarray],
) -> None:
    model, path, before = exported
    predictor = OnnxPredictor(path)
    assert isinstance(predictor.session.get_inputs()[0].shape[0], str)  # symbolic, not fixed to the example's 2
    assert (predictor.window, predictor.n_features) == (WINDOW, 5)
    probe = np.random.default_rng(1).normal(size=(5, WINDOW, 5)).astype(np.float32)
    assert np.array_equal(model.predict_scaled_with_attention(probe)[0], before)
    empty_proba, empty_attention = predictor.predict(np.zeros((0, WINDOW, 5), dtype=np.float32))
    assert empty_proba.shape == (0, 3) and empty_attention.shape == (0, WINDOW)


def test_predictor_refuses_wrong_shapes_and_missing_files(
    exported: tuple[BiLSTMModel, Path, np.ndarray], tmp_path: Path
) -> None:
    predictor = OnnxPredictor(exported[1])
    with pytest.raises(ModelError, match=r"\(n, 10, 5\)"):
        predictor.predict(np.zeros((2, WINDOW, 4), dtype=np.float32))
    with pytest.raises(ModelNotReadyError, match="export_onnx"):
        OnnxPredictor(tmp_path / "absent.onnx")
