"""The loop against a real MLflow store: gates decide the champion, a worse challenger is refused with its reason, a
crashed retrain changes nothing, rollback restores the previous champion and a running service follows it; on
random-walk prices nothing is promoted. The same promotion and refusal against a real `mlflow server` whose backend
is the real PostgreSQL.

Candidates are the fast models (logistic regression, LightGBM): the gates are what is under test, not the Bi-LSTM.
The "weak" configuration is LightGBM with one one-split tree: it has skill on the planted signal (so it can be a
champion) but ranks far worse than a full model, so a full model beats it significantly on the same days.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration.mlflow_support import postgres_mlflow_server
from tests.unit.serving.conftest import running
from trendcast import tracking
from trendcast.cli import app as cli
from trendcast.config import ExperimentConfig, GateConfig, LabelConfig, LightGBMConfig, Settings, WalkForwardConfig
from trendcast.data.sources import InMemorySource
from trendcast.data.store import BarStore
from trendcast.data.synthetic import planted_signal_bars, random_walk_bars
from trendcast.pipelines import train as train_module
from trendcast.pipelines.loop import RetrainError, retrain_job
from trendcast.pipelines.retrain import rollback
from trendcast.pipelines.train import run_training
from trendcast.serving import create_app

pytestmark = pytest.mark.integration

FEATURES = ["ret_1", "ret_5", "rsi_14", "volatility_20", "sma_ratio_20"]


def config(candidates: list[str], weak: bool = False) -> ExperimentConfig:
    lightgbm = LightGBMConfig(n_estimators=1, num_leaves=2, learning_rate=0.5) if weak else LightGBMConfig()
    return ExperimentConfig(
        window=10,
        features=FEATURES,
        labels=LabelConfig(horizon=1, threshold=0.007),  # about a third of the days in each class
        walk_forward=WalkForwardConfig(folds=3, min_train_fraction=0.5),
        lightgbm=lightgbm,
        candidates=candidates,  # type: ignore[arg-type]
        gates=GateConfig(n_boot=300),
    )


WEAK = config(["lightgbm"], weak=True)
STRONG = config(["logreg", "lightgbm"])


def signal_settings(tmp_path: Path, tracking_uri: str | None = None) -> Settings:
    from trendcast.pipelines.ingest import ingest

    settings = Settings(data_dir=tmp_path / "data", mlflow_tracking_uri=tracking_uri, torch_threads=1)
    bars = planted_signal_bars(n_tickers=6, n_days=500, seed=11, phi=0.3)
    ingest(InMemorySource(bars), BarStore(settings.resolved_database_url))
    return settings


def train(settings: Settings, experiment: ExperimentConfig) -> Any:
    return run_training(settings, experiment, experiment.candidates[0], progress=False, n_boot=100)


def check_promotion_and_refusal(settings: Settings) -> tuple[str, str]:
    """weak -> first champion; strong -> promoted over it; weak again -> refused with its reason. Returns the
    versions (weak, strong)."""
    first = train(settings, WEAK)
    assert first.decision.promoted, first.decision.reason
    assert first.registered is not None and first.registered.alias == "champion"
    weak_version = first.registered.version

    second = train(settings, STRONG)
    decision = second.report["decision"]
    assert decision["promoted"], decision["reason"]
    assert [g["name"] for g in decision["gates"]] == ["finite", "skill", "champion", "calibration"]
    champion_gate = decision["gates"][2]
    assert champion_gate["auc"] > champion_gate["auc_champion"] and champion_gate["p_value"] < 0.05
    strong_version = second.registered.version
    assert tracking.alias_version(settings) == strong_version
    tags = tracking.get_version(settings, strong_version).tags
    assert tags["trendcast.decision"] == "promoted" and tags["trendcast.previous_champion"] == weak_version

    third = train(settings, WEAK)
    refused = third.report["decision"]
    assert not refused["promoted"] and "champion" in refused["reason"]
    assert tracking.alias_version(settings) == strong_version  # unchanged
    assert third.registered is not None and third.registered.alias == "challenger"
    refused_tags = tracking.get_version(settings, third.registered.version).tags
    assert refused_tags["trendcast.decision"] == "not promoted"
    assert refused_tags["trendcast.reason"] == refused["reason"]
    assert json.loads(refused_tags["trendcast.gates"])[2]["name"] == "champion"
    return weak_version, strong_version


def test_gates_promote_the_better_and_refuse_the_worse(tmp_path: Path) -> None:
    settings = signal_settings(tmp_path)
    weak, strong = check_promotion_and_refusal(settings)
    # `trendcast models --json` lists them with kind, aliases, metrics and decision
    runner = CliRunner()
    env = {"TRENDCAST_DATA_DIR": str(settings.data_dir)}
    result = runner.invoke(cli, ["models", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = {r["version"]: r for r in json.loads(result.stdout)}
    assert rows[strong]["aliases"] == ["champion"] and rows[strong]["decision"] == "promoted"
    assert rows[weak]["model"] == "lightgbm" and set(rows[weak]["metrics"]) == {"auc", "accuracy", "sharpe"}
    assert rows[strong]["metrics"]["auc"] > rows[weak]["metrics"]["auc"]


def test_rollback_restores_the_previous_champion_and_the_service_follows(tmp_path: Path) -> None:
    settings = signal_settings(tmp_path)
    weak = train(settings, WEAK).registered.version
    strong = train(settings, STRONG).registered.version
    polling = settings.model_copy(update={"model_poll_seconds": 0.2})

    async def scenario() -> tuple[str, str, str]:
        async with running(create_app(polling)) as client:
            before = (await client.get("/api/v1/model/info")).json()["version"]
            record = await asyncio.to_thread(rollback, settings)
            assert record["from"] == strong and record["to"] == weak
            deadline = time.monotonic() + 30
            while (now := (await client.get("/api/v1/model/info")).json()["version"]) == before:
                assert time.monotonic() < deadline, "the service did not follow the rollback"
                await asyncio.sleep(0.1)
            body = {"ticker": "SIG000"}
            served = (await client.post("/api/v1/predict", json=body)).json()["model"]["version"]
            return before, now, served

    before, after, served = asyncio.run(scenario())
    assert (before, after, served) == (strong, weak, weak)
    assert tracking.get_version(settings, weak).tags["trendcast.decision"] == "rolled back to"


def test_a_crashed_retrain_leaves_champion_and_service_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = signal_settings(tmp_path)
    champion = train(settings, WEAK).registered.version
    n_versions = len(tracking.list_versions(settings))

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected fault while fitting the final model")

    async def scenario() -> tuple[str, str]:
        async with running(create_app(settings)) as client:
            before = (await client.get("/api/v1/model/info")).json()["version"]
            monkeypatch.setattr(train_module, "fit_final", crash)
            with pytest.raises(RetrainError, match="retrain failed at training: RuntimeError: injected fault"):
                await asyncio.to_thread(retrain_job, settings, STRONG, progress=False)
            reloaded = await client.post("/api/v1/admin/reload")  # no admin key configured: the admin API is off
            assert reloaded.status_code in (401, 403)
            after = (await client.get("/api/v1/model/info")).json()["version"]
            return before, after

    before, after = asyncio.run(scenario())
    assert before == after == champion
    assert tracking.alias_version(settings) == champion
    assert len(tracking.list_versions(settings)) == n_versions  # nothing half-registered


def test_random_walk_promotes_nothing_and_the_service_stays_not_ready(tmp_path: Path) -> None:
    from trendcast.pipelines.ingest import ingest

    settings = Settings(data_dir=tmp_path / "data", torch_threads=1)
    ingest(InMemorySource(random_walk_bars(n_tickers=6, n_days=500, seed=5)), BarStore(settings.resolved_database_url))
    path = tmp_path / "noise.yaml"
    path.write_text(json.dumps(config(["logreg", "lightgbm", "momentum"]).model_dump(mode="json")))
    runner = CliRunner()
    result = runner.invoke(
        cli, ["retrain", "--config", str(path), "--json"], env={"TRENDCAST_DATA_DIR": str(settings.data_dir)}
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["promoted"] is False and decision["champion"] is None
    assert "nothing is served" in decision["reason"]
    assert {g["name"] for g in decision["gates"]} >= {"finite", "skill"}
    assert tracking.alias_version(settings) is None

    async def ready() -> int:
        async with running(create_app(settings)) as client:
            return (await client.get("/ready")).status_code

    assert asyncio.run(ready()) == 503


def test_real_mlflow_server_on_postgres_promotes_and_refuses(tmp_path: Path) -> None:
    with postgres_mlflow_server(tmp_path) as url:
        settings = signal_settings(tmp_path, url)
        check_promotion_and_refusal(settings)
