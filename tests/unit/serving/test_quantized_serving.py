"""The int8 graph serves only when its record says it agreed with float32 and TRENDCAST_SERVE_QUANTIZED is on;
/api/v1/model/info shows the record and whether the int8 graph answers; workers keep to their thread settings."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.unit.serving.conftest import running
from tests.unit.serving.support import FEATURES, WINDOW, filled_store, tiny_model_dir
from trendcast.config import Settings
from trendcast.models.bundle import read_bundle, record_quantization
from trendcast.models.onnx_export import OnnxPredictor
from trendcast.models.quantize import INT8_FILE, QuantizationRecord, Thresholds, check_agreement, quantize_onnx
from trendcast.serving import create_app
from trendcast.serving.inference import OnnxBackend, make_backend

pytestmark = pytest.mark.slow

LENIENT = Thresholds(min_agreement=0.0, max_abs_diff=1.0)  # any int8 graph passes
STRICT = Thresholds(max_abs_diff=0.0)  # no int8 graph passes: int8 always moves the probabilities a little
WINDOWS = np.random.default_rng(7).normal(size=(40, WINDOW, len(FEATURES))).astype(np.float32)


@pytest.fixture(scope="module")
def bilstm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("bilstm") / "model", "bilstm")


def quantized_copy(source: Path, folder: Path, thresholds: Thresholds) -> tuple[Path, QuantizationRecord]:
    """`source` with an int8 graph beside model.onnx and its record in meta.json; the file stays even if rejected."""
    shutil.copytree(source, folder)
    int8 = quantize_onnx(folder / "model.onnx", folder / INT8_FILE)
    record = check_agreement(folder / "model.onnx", int8, WINDOWS, thresholds=thresholds, source="random windows")
    record_quantization(folder, record)
    return folder, record


def backend_of(folder: Path, **options: Any) -> OnnxBackend:
    backend = make_backend(read_bundle(folder, name="n", version="1", alias=""), **options)
    assert isinstance(backend, OnnxBackend)
    return backend


def serve(settings: Settings, windows: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """/api/v1/model/info and the probabilities /api/v1/predict gives for each window, one request at a time."""

    async def scenario() -> tuple[dict[str, Any], np.ndarray]:
        async with running(create_app(settings)) as client:
            info = (await client.get("/api/v1/model/info")).json()
            rows = []
            for window in windows:
                body = (await client.post("/api/v1/predict", json={"sequence": window.tolist()})).json()
                rows.append([body["probabilities"][c] for c in ("Down", "Neutral", "Up")])
            return info, np.asarray(rows)

    return asyncio.run(scenario())


def settings_for(folder: Path, tmp_path: Path, **update: Any) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", model_dir=folder, log_level="WARNING", **update)
    filled_store(settings.resolved_database_url).close()
    return settings


def test_an_accepted_int8_graph_serves_and_model_info_shows_its_record(bilstm_dir: Path, tmp_path: Path) -> None:
    folder, record = quantized_copy(bilstm_dir, tmp_path / "accepted", LENIENT)
    assert record.accepted
    info, served = serve(settings_for(folder, tmp_path), WINDOWS[:3])
    assert info["backend"] == "onnx-int8"
    assert info["quantization"] == {
        "file": INT8_FILE,
        "agreement": record.agreement,
        "max_abs_diff": record.max_abs_diff,
        "n": len(WINDOWS),
        "source": "random windows",
        "min_agreement": 0.0,
        "max_abs_diff_allowed": 1.0,
        "accepted": True,
        "served": True,
    }
    int8 = OnnxPredictor(folder / INT8_FILE)
    expected = np.concatenate([int8.predict(w[None])[0] for w in WINDOWS[:3]])
    np.testing.assert_allclose(served, expected, atol=1e-6)  # the int8 graph answered, not float32
    float32 = OnnxPredictor(folder / "model.onnx").predict(WINDOWS[:3])[0]
    assert np.abs(served - float32).max() > 1e-6


def test_the_setting_turns_an_accepted_int8_graph_off(bilstm_dir: Path, tmp_path: Path) -> None:
    folder, _ = quantized_copy(bilstm_dir, tmp_path / "accepted", LENIENT)
    info, served = serve(settings_for(folder, tmp_path, serve_quantized=False), WINDOWS[:3])
    assert info["backend"] == "onnx"
    assert info["quantization"]["accepted"] and not info["quantization"]["served"]
    np.testing.assert_allclose(served, OnnxPredictor(folder / "model.onnx").predict(WINDOWS[:3])[0], atol=1e-6)


def test_a_rejected_int8_graph_never_serves_even_when_its_file_is_there(bilstm_dir: Path, tmp_path: Path) -> None:
    folder, record = quantized_copy(bilstm_dir, tmp_path / "rejected", STRICT)
    assert not record.accepted and (folder / INT8_FILE).is_file()
    info, served = serve(settings_for(folder, tmp_path), WINDOWS[:3])
    assert info["backend"] == "onnx"
    assert info["quantization"]["accepted"] is False and info["quantization"]["served"] is False
    assert info["quantization"]["max_abs_diff"] == record.max_abs_diff > 0.0
    np.testing.assert_allclose(served, OnnxPredictor(folder / "model.onnx").predict(WINDOWS[:3])[0], atol=1e-6)


def test_without_a_record_the_float32_graph_serves(bilstm_dir: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(bilstm_dir, tmp_path / "unchecked")
    quantize_onnx(folder / "model.onnx", folder / INT8_FILE)  # a file nobody checked
    backend = backend_of(folder)
    assert backend.name == "onnx" and read_bundle(folder, name="n", version="1", alias="").quantization is None


def test_backend_sessions_take_the_thread_setting_and_do_not_spin(bilstm_dir: Path, tmp_path: Path) -> None:
    folder, _ = quantized_copy(bilstm_dir, tmp_path / "accepted", LENIENT)
    for quantized, name in ((True, "onnx-int8"), (False, "onnx")):
        backend = backend_of(folder, quantized=quantized, onnx_threads=2)
        options = backend.predictor.session.get_session_options()
        assert backend.name == name and options.intra_op_num_threads == 2
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_each_worker_sets_its_torch_threads_at_startup(saved_model: Path, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    try:
        serve(settings_for(saved_model, tmp_path, torch_threads=wanted), WINDOWS[:0])
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)
