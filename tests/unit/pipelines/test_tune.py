"""`trendcast tune`'s pure parts: parameters into a config, the trial's data cut, the kept score, the best trial and
the YAML (Ray itself runs in tests/integration/test_ray_tune.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from trendcast.config import ExperimentConfig
from trendcast.errors import ModelError
from trendcast.pipelines.tune import KeptScore, SearchSpace, apply_params, best_trial, trial_config, write_tuned_yaml

PARAMS = {"hidden1": 32, "hidden2": 16, "dropout": 0.25, "learning_rate": 5e-4, "window": 40, "threshold": 0.01}


def test_parameters_land_in_their_config_fields() -> None:
    tuned = apply_params(ExperimentConfig(), PARAMS)
    got = {
        "hidden1": tuned.bilstm.hidden1,
        "hidden2": tuned.bilstm.hidden2,
        "dropout": tuned.bilstm.dropout,
        "learning_rate": tuned.bilstm.learning_rate,
        "window": tuned.window,
        "threshold": tuned.labels.threshold,
    }
    assert got == PARAMS
    assert set(PARAMS) == set(SearchSpace.__dataclass_fields__)


def test_a_trial_loads_nothing_after_the_cut_and_runs_at_most_its_epochs() -> None:
    trial = trial_config(ExperimentConfig(end="2030-01-01"), PARAMS, pd.Timestamp("2015-06-30"), epochs=3)
    assert trial.end == "2015-06-30" and trial.bilstm.epochs == 3


def test_the_kept_score_follows_the_lowest_validation_loss() -> None:
    kept = KeptScore()
    rows = [(1.0, 0.40), (0.9, 0.45), (0.95, 0.60), (0.8, 0.50)]
    scores = [kept.update({"valid_loss": loss, "valid_balanced_accuracy": acc}) for loss, acc in rows]
    assert scores == [0.40, 0.45, 0.45, 0.50]  # epoch 3's better accuracy is not kept: its loss is higher


def test_the_best_trial_skips_errors_and_all_errors_raise() -> None:
    table = pd.DataFrame(
        {"trial_id": ["a", "b", "c"], "score": [math.nan, 0.5, 0.4], "status": ["error: boom", "ok", "ok"]}
    )
    assert best_trial(table)["trial_id"] == "b"
    with pytest.raises(ModelError, match="boom"):
        best_trial(table.assign(status="error: boom"))


def test_the_yaml_round_trips(tmp_path: Path) -> None:
    config = apply_params(ExperimentConfig(name="x-tuned"), PARAMS)
    path = write_tuned_yaml(config, tmp_path / "t.yaml", best_metric=0.41, cut=pd.Timestamp("2015-06-30"), run_id="r")
    assert ExperimentConfig.from_yaml(path) == config
    assert "2015-06-30" in path.read_text()
