"""`--workers N`: a two-worker Ray Train (TorchTrainer, DDP over gloo on CPU) fit of the Bi-LSTM on a private Ray
instance; the model predicts, saves and loads exactly like a local one."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_service
from trendcast.config import BiLSTMConfig, ExperimentConfig, LabelConfig
from trendcast.data.synthetic import planted_signal_bars
from trendcast.features.windows import build_window_set
from trendcast.models.base import DirectionModel
from trendcast.models.bilstm_attention import BiLSTMModel
from trendcast.ray_runtime import ray_session

pytestmark = pytest.mark.integration

FEATURES = ["ret_1", "ret_5", "gap", "hl_range", "close_position"]


def test_a_two_worker_fit_predicts_saves_and_loads(tmp_path: Path) -> None:
    require_service("Ray", lambda: importlib.util.find_spec("ray") is not None, "pip install 'trendcast[distributed]'")
    bars = planted_signal_bars(n_tickers=3, n_days=260, seed=5)
    data = build_window_set(bars, window=10, labels=LabelConfig(), features=FEATURES)
    sizes = BiLSTMConfig(hidden1=8, hidden2=4, attention_dim=4, dense=4, epochs=2, batch_size=64)
    config = ExperimentConfig(window=10, features=FEATURES, bilstm=sizes)
    sigint = signal.getsignal(signal.SIGINT)
    with ray_session(None, num_cpus=2):
        model = BiLSTMModel(config, threads=1, progress=False, workers=2).fit(data)
    assert signal.getsignal(signal.SIGINT) is sigint  # Ray Train's own Ctrl-C handler does not outlive the fit
    assert model.best_epoch is not None and 1 <= model.best_epoch <= len(model.history) <= sizes.epochs
    assert all("valid_balanced_accuracy" in row for row in model.history)  # rank 0 evaluated the validation tail
    proba = model.predict_proba(data)
    assert proba.shape == (len(data), 3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    loaded = DirectionModel.load(model.save(tmp_path / "model"))
    assert isinstance(loaded, BiLSTMModel) and loaded.workers == 1  # a runtime option, not saved
    assert np.array_equal(loaded.predict_proba(data), proba)
