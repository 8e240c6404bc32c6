"""`trendcast tune`: a tiny Ray Tune search (3 trials, 1 epoch, tiny sizes) on a small synthetic store finishes, its
trials are child runs in MLflow with params and per-epoch metrics, no trial loads a day of the walk-forward's test
folds, and the best config's YAML is accepted by `ExperimentConfig.from_yaml` and `trendcast train --config`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import require_service
from trendcast.cli import app as cli
from trendcast.config import BiLSTMConfig, ExperimentConfig, LabelConfig, Settings, WalkForwardConfig
from trendcast.data.sources import InMemorySource
from trendcast.data.store import BarStore
from trendcast.data.synthetic import planted_signal_bars
from trendcast.evaluation.walk_forward import make_folds
from trendcast.pipelines.ingest import ingest
from trendcast.pipelines.train import load_universe
from trendcast.pipelines.tune import PARAMS, SearchSpace, run_tune

pytestmark = pytest.mark.integration

FEATURES = ["ret_1", "ret_5", "gap", "hl_range", "close_position"]
TINY_SPACE = SearchSpace(
    hidden1=(4, 8),
    hidden2=(4,),
    dropout=(0.1, 0.5),
    learning_rate=(1e-3, 3e-3),
    window=(8, 12),
    threshold=(0.004, 0.008),
)


def experiment() -> ExperimentConfig:
    return ExperimentConfig(
        name="tiny",
        window=10,
        features=FEATURES,
        labels=LabelConfig(threshold=0.005),
        walk_forward=WalkForwardConfig(folds=2, min_train_fraction=0.6),
        bilstm=BiLSTMConfig(hidden1=8, hidden2=4, attention_dim=4, dense=4, epochs=1, batch_size=128),
        candidates=["bilstm"],
    )


def test_a_tiny_tune_logs_its_trials_and_writes_a_trainable_config(
    tmp_settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_service("Ray", lambda: importlib.util.find_spec("ray") is not None, "pip install 'trendcast[distributed]'")
    from mlflow.tracking import MlflowClient

    settings = Settings(data_dir=tmp_settings_env, torch_threads=1)
    ingest(
        InMemorySource(planted_signal_bars(n_tickers=3, n_days=300, seed=4)), BarStore(settings.resolved_database_url)
    )
    config = experiment()
    out = tmp_settings_env / "tuned.yaml"
    outcome = run_tune(
        settings, config, trials=3, epochs=1, max_concurrent=2, out_yaml=out, progress=False, space=TINY_SPACE
    )

    # every trial finished and was scored on the balanced accuracy of its validation tail
    assert len(outcome.trials) == 3 and set(outcome.trials["status"]) == {"ok"}
    assert outcome.best_metric == pytest.approx(outcome.trials["score"].max())
    assert 0.0 <= outcome.best_metric <= 1.0
    for row in outcome.trials.itertuples():
        assert row.hidden1 in TINY_SPACE.hidden1 and row.window in TINY_SPACE.window
        assert TINY_SPACE.learning_rate[0] <= row.learning_rate <= TINY_SPACE.learning_rate[1]

    # honesty: the cut lies before the first test fold of every window searched (independently recomputed)
    for window in (*TINY_SPACE.window, config.window):
        shaped = config.model_copy(update={"window": window})
        first_test = make_folds(load_universe(settings, shaped, progress=False), shaped)[0].test_start
        assert outcome.data_end < first_test

    # MLflow: the parent run and >= 3 child runs with their params and per-epoch metrics
    client = MlflowClient(settings.resolved_mlflow_uri)
    parent = client.get_run(outcome.parent_run_id)
    assert parent.info.run_name == "tune-tiny" and parent.data.metrics["best_score"] == pytest.approx(
        outcome.best_metric
    )
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'"
    )
    assert len(children) >= 3
    for child in children:
        assert set(PARAMS) <= set(child.data.params)
        assert child.data.params["data_end"] == str(outcome.data_end.date())
        assert "valid_balanced_accuracy" in child.data.metrics and "score" in child.data.metrics
        assert child.info.status == "FINISHED"
    logged = {float(c.data.metrics["score"]) for c in children}
    assert np.allclose(sorted(logged), sorted(outcome.trials["score"]))

    # the YAML round-trips and is the best trial's config
    loaded = ExperimentConfig.from_yaml(out)
    assert loaded == outcome.best_config
    best = outcome.trials.iloc[0]
    assert (loaded.window, loaded.labels.threshold, loaded.bilstm.hidden1) == (
        best["window"],
        best["threshold"],
        best["hidden1"],
    )
    assert loaded.end is None and loaded.bilstm.epochs == config.bilstm.epochs  # no tuning cut, no trial epochs

    # and `trendcast train --config` accepts it
    monkeypatch.setenv("TRENDCAST_TORCH_THREADS", "1")
    result = CliRunner().invoke(cli, ["train", "--config", str(out), "--no-register", "--no-baselines"])
    assert result.exit_code == 0, result.output
    assert "bilstm" in result.output
