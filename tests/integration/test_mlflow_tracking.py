"""MLflow: a tiny model trained into a temporary store comes back by alias with the same predictions; the same
against a real `mlflow server` process on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest

from tests.integration.mlflow_support import mlflow_server as mlflow_server_process
from trendcast.config import BiLSTMConfig, ExperimentConfig, LabelConfig, Settings, WalkForwardConfig
from trendcast.data.sources import InMemorySource
from trendcast.data.store import BarStore
from trendcast.data.synthetic import planted_signal_bars
from trendcast.pipelines.ingest import ingest
from trendcast.pipelines.train import load_universe, run_training
from trendcast.tracking import load_version

pytestmark = pytest.mark.integration

TINY = ExperimentConfig(
    window=12,
    labels=LabelConfig(horizon=1, threshold=0.002),
    walk_forward=WalkForwardConfig(folds=2, min_train_fraction=0.6),
    bilstm=BiLSTMConfig(hidden1=8, hidden2=4, attention_dim=8, dense=8, epochs=2, batch_size=64, patience=1),
)


def _settings(tmp_path: Path, tracking_uri: str | None = None) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", mlflow_tracking_uri=tracking_uri, torch_threads=1)
    ingest(
        InMemorySource(planted_signal_bars(n_tickers=2, n_days=260, seed=3)), BarStore(settings.resolved_database_url)
    )
    return settings


def _check_round_trip(settings: Settings, model: str) -> None:
    outcome = run_training(
        settings, TINY, model, baselines=True, progress=False, n_boot=50, report_path=settings.data_dir / "report.json"
    )
    assert outcome.registered is not None  # the challenger is registered whatever the gates decide
    assert outcome.registered.alias == ("champion" if outcome.decision.promoted else "challenger")
    loaded = load_version(settings, outcome.registered.version)
    assert loaded.folder.is_dir() and loaded.background() is not None and loaded.drift_reference() is not None
    assert loaded.model.name == outcome.decision.challenger.name  # type: ignore[union-attr]
    ws = load_universe(settings, TINY, progress=False)
    assert outcome.final_model is not None
    np.testing.assert_allclose(loaded.model.predict_proba(ws), outcome.final_model.predict_proba(ws), atol=1e-6)
    report = json.loads((settings.data_dir / "report.json").read_text())
    assert set(report["models"]) == {"bilstm", "majority", "momentum", "logreg", "lightgbm"}  # every candidate
    assert report["comparison"]["model"] == model and report["version"] == 2
    assert report["decision"]["gates"][0]["name"] == "finite"
    # the pyfunc flavour works for any MLflow user
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.registered_model_name}/{outcome.registered.version}")
    x = loaded.model.scaler.transform(ws).windows(np.arange(5))  # type: ignore[union-attr]
    np.testing.assert_allclose(pyfunc.predict(x), outcome.final_model.predict_scaled(x), atol=1e-6)


def test_sqlite_store_round_trip_by_alias(tmp_path: Path) -> None:
    _check_round_trip(_settings(tmp_path), "bilstm")


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    store = tmp_path / "server"
    with mlflow_server_process(f"sqlite:///{store / 'mlflow.db'}", store / "artifacts") as url:
        yield url


def test_real_mlflow_server_round_trip(tmp_path: Path, mlflow_server: str) -> None:
    _check_round_trip(_settings(tmp_path, mlflow_server), "logreg")
