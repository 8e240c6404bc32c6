"""The model bundle carries the walk-forward evaluation of its own model kind: written by training, read back as
validated predictions and the report; folders without it still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.unit.serving.support import FEATURES, WINDOW, tiny_bars, tiny_config
from trendcast.backtest.predictions import validate_predictions
from trendcast.config import GateConfig, WalkForwardConfig
from trendcast.errors import ModelError
from trendcast.evaluation.walk_forward import WalkForwardResult, run_walk_forward
from trendcast.features.windows import WindowSet, build_window_set
from trendcast.models.bundle import PREDICTIONS_FILE, REPORT_FILE, read_bundle, write_bundle
from trendcast.models.registry import create_model

CONFIG = tiny_config().model_copy(
    update={"walk_forward": WalkForwardConfig(folds=3, min_train_fraction=0.5), "gates": GateConfig(n_boot=100)}
)


@pytest.fixture(scope="module")
def evaluated() -> tuple[WindowSet, WalkForwardResult]:
    ws = build_window_set(tiny_bars(), window=WINDOW, labels=CONFIG.labels, features=FEATURES)
    return ws, run_walk_forward(ws, ["logreg", "majority"], CONFIG, progress=False)


def test_bundle_round_trip_with_evaluation(tmp_path: Path, evaluated: tuple[WindowSet, WalkForwardResult]) -> None:
    ws, result = evaluated
    model = create_model("logreg", CONFIG).fit(ws)
    report = {"version": 2, "primary_model": "logreg", "decision": {"promoted": True, "reason": "ok", "gates": []}}
    folder = write_bundle(
        model, ws, tmp_path / "m", background_size=8, predictions=result.predictions["logreg"], report=report
    )
    bundle = read_bundle(folder, name="n", version="1", alias="champion")
    predictions = bundle.evaluation_predictions()
    assert predictions is not None
    pd.testing.assert_frame_equal(predictions, validate_predictions(result.predictions["logreg"]))
    assert bundle.evaluation_report() == report
    assert bundle.background() is not None and bundle.model.name == "logreg"


def test_bundles_without_evaluation_still_load(tmp_path: Path, evaluated: tuple[WindowSet, WalkForwardResult]) -> None:
    ws, _ = evaluated
    model = create_model("logreg", CONFIG).fit(ws)
    written = read_bundle(write_bundle(model, ws, tmp_path / "w", background_size=8), name="n", version="1", alias="")
    saved = read_bundle(model.save(tmp_path / "s"), name="n", version="1", alias="")  # a hand-made folder
    for bundle in (written, saved):
        assert bundle.evaluation_predictions() is None and bundle.evaluation_report() is None
        assert not (bundle.folder / "evaluation").exists()


def test_another_kinds_predictions_are_refused(tmp_path: Path, evaluated: tuple[WindowSet, WalkForwardResult]) -> None:
    ws, result = evaluated
    model = create_model("logreg", CONFIG).fit(ws)
    with pytest.raises(ModelError, match="majority"):
        write_bundle(model, ws, tmp_path / "m", background_size=8, predictions=result.predictions["majority"])
    assert not (tmp_path / "m").exists()


def test_training_saves_the_challengers_own_predictions_and_the_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evaluated: tuple[WindowSet, WalkForwardResult]
) -> None:
    """run_training's registration step: the bundle that goes to the registry holds the challenger kind's
    out-of-sample predictions and the report with the decision (MLflow replaced by a copy of the folder)."""
    from trendcast import tracking
    from trendcast.config import Settings
    from trendcast.pipelines import train
    from trendcast.pipelines.retrain import decide

    ws, result = evaluated
    decision = decide(result.predictions, {}, ["logreg"], CONFIG.gates)
    report: dict[str, Any] = {"primary_model": "logreg", "models": {}, "odd": np.float64("nan")}
    report["decision"] = train.sanitise(decision.to_json())
    logged: list[Path] = []

    def log_model(settings: Settings, model: Any, folder: Path, tags: Any = None) -> tracking.RegisteredVersion:
        logged.append(Path(shutil.copytree(folder, tmp_path / "registry")))
        return tracking.RegisteredVersion("trendcast-direction", "7", "run")

    monkeypatch.setattr(tracking, "log_model", log_model)
    monkeypatch.setattr(train, "record_promotion", lambda *args: None)
    monkeypatch.setattr(train, "tmp_model_dir", lambda: tmp_path / "final")
    settings = Settings(data_dir=tmp_path / "data", explain_background=8)
    final, registered = train._register_challenger(settings, CONFIG, ws, decision, result, report)
    assert final.name == "logreg" and registered.version == "7"
    saved = pd.read_parquet(logged[0] / PREDICTIONS_FILE)
    assert set(saved["model"]) == {"logreg"} and len(saved) == len(result.predictions["logreg"])
    assert np.allclose(saved["p_up"], result.predictions["logreg"]["p_up"])
    written = json.loads((logged[0] / REPORT_FILE).read_text())
    assert written["decision"]["promoted"] == decision.promoted and written["odd"] is None  # strict JSON
