"""The ONNX Runtime backend: a (tiny) Bi-LSTM saved with model.onnx beside it is served through ONNX Runtime and
answers like the PyTorch model; without the file the same folder is served by PyTorch eager."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.unit.serving.conftest import running
from tests.unit.serving.support import FEATURES, WINDOW, filled_store, tiny_model_dir
from trendcast.config import Settings
from trendcast.models.base import DirectionModel
from trendcast.serving import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bilstm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("bilstm") / "model", "bilstm")


def predict(settings: Settings, windows: np.ndarray) -> tuple[str, np.ndarray]:
    async def scenario() -> tuple[str, np.ndarray]:
        async with running(create_app(settings)) as client:
            backend = (await client.get("/api/v1/model/info")).json()["backend"]
            rows = []
            for window in windows:
                body = (await client.post("/api/v1/predict", json={"sequence": window.tolist()})).json()
                rows.append([body["probabilities"][c] for c in ("Down", "Neutral", "Up")])
            return backend, np.asarray(rows)

    return asyncio.run(scenario())


def test_onnx_and_eager_backends_agree(bilstm_dir: Path, tmp_path: Path) -> None:
    windows = np.random.default_rng(1).normal(size=(3, WINDOW, len(FEATURES))).astype(np.float32)
    expected = DirectionModel.load(bilstm_dir).predict_scaled(windows)
    settings = Settings(data_dir=tmp_path / "data", model_dir=bilstm_dir, log_level="WARNING")
    filled_store(settings.resolved_database_url).close()
    backend, onnx = predict(settings, windows)
    assert backend == "onnx"
    np.testing.assert_allclose(onnx, expected, atol=1e-5)
    eager_dir = tmp_path / "eager"
    shutil.copytree(bilstm_dir, eager_dir, ignore=shutil.ignore_patterns("model.onnx"))
    backend, eager = predict(settings.model_copy(update={"model_dir": eager_dir}), windows)
    assert backend == "eager"
    np.testing.assert_allclose(eager, expected, atol=1e-6)
