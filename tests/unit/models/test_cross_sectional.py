"""Binary (cross_sectional) labels: every model gives Neutral probability exactly 0, also after save/load, and the
Bi-LSTM's mask holds in PyTorch, in the exported ONNX graph and in the int8 graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.unit.models._data import FEATURES, WINDOW, split_by_date, tiny_config
from trendcast.config import ExperimentConfig, LabelConfig
from trendcast.data.synthetic import planted_signal_bars
from trendcast.features.labels import DOWN, UP
from trendcast.features.windows import WindowSet, build_window_set
from trendcast.models.base import DirectionModel
from trendcast.models.baselines import LightGBMModel, LogisticModel, MajorityModel, MomentumModel
from trendcast.models.bilstm_attention import MASKED_LOGIT, BiLSTMAttention, BiLSTMModel
from trendcast.models.onnx_export import OnnxPredictor, export_onnx
from trendcast.models.quantize import INT8_FILE, quantize_onnx

RELATIVE = LabelConfig(mode="cross_sectional")


def binary_config() -> ExperimentConfig:
    return tiny_config(epochs=1).model_copy(update={"labels": RELATIVE})


@pytest.fixture(scope="module")
def binary_split() -> tuple[WindowSet, WindowSet]:
    bars = planted_signal_bars(n_tickers=4, n_days=260, seed=5)
    data = build_window_set(bars, window=WINDOW, labels=RELATIVE, features=FEATURES)
    assert set(np.unique(data.labels)) == {DOWN, UP}
    return split_by_date(data, 0.75, gap=data.horizon)


def _models() -> list[DirectionModel]:
    config = binary_config()
    return [
        MajorityModel(config),
        MomentumModel(config),
        LogisticModel(config),
        LightGBMModel(config),
        BiLSTMModel(config, threads=1),
    ]


@pytest.mark.parametrize("index", range(5), ids=["majority", "momentum", "logreg", "lightgbm", "bilstm"])
def test_every_model_gives_neutral_exactly_zero_and_keeps_it_after_load(
    binary_split: tuple[WindowSet, WindowSet], tmp_path: Path, index: int
) -> None:
    train, test = binary_split
    model = _models()[index].fit(train)
    proba = model.predict_proba(test)
    assert proba.shape == (len(test), 3)
    assert (proba[:, 1] == 0.0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (proba[:, [0, 2]] > 0).any(axis=0).all()  # both real classes are predicted with some probability
    loaded = DirectionModel.load(model.save(tmp_path / model.name))
    again = loaded.predict_proba(test)
    assert (again[:, 1] == 0.0).all()
    np.testing.assert_allclose(again, proba, rtol=0, atol=1e-12)


def test_the_mask_is_rebuilt_from_the_label_mode_not_stored() -> None:
    binary = BiLSTMAttention(3, tiny_config().bilstm, "cross_sectional")
    absolute = BiLSTMAttention(3, tiny_config().bilstm)
    assert binary.class_mask.tolist() == [0.0, MASKED_LOGIT, 0.0]
    assert absolute.class_mask.tolist() == [0.0, 0.0, 0.0]
    assert "class_mask" not in binary.state_dict()  # one weights file layout for both modes
    absolute.load_state_dict(binary.state_dict())
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(4, 6, 3)).astype(np.float32))
    with torch.no_grad():
        masked, _ = binary.eval()(x)
        plain, _ = absolute.eval()(x)
    assert (torch.softmax(masked, dim=1)[:, 1] == 0).all()
    assert (torch.softmax(plain, dim=1)[:, 1] > 0).all()
    torch.testing.assert_close(masked[:, [0, 2]], plain[:, [0, 2]], rtol=0, atol=0)


def test_onnx_and_int8_graphs_give_neutral_exactly_zero(
    binary_split: tuple[WindowSet, WindowSet], tmp_path: Path
) -> None:
    train, test = binary_split
    model = BiLSTMModel(binary_config(), threads=1).fit(train)
    assert model.scaler is not None
    x = model.scaler.transform(test).windows()
    float_path = export_onnx(model, tmp_path / "model.onnx")
    int8_path = quantize_onnx(float_path, tmp_path / INT8_FILE)
    expected = model.predict_scaled_with_attention(x)[0]
    for path in (float_path, int8_path):
        proba, _ = OnnxPredictor(path).predict(x)
        assert (proba[:, 1] == 0.0).all(), path.name
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(OnnxPredictor(float_path).predict(x)[0], expected, atol=1e-5)
