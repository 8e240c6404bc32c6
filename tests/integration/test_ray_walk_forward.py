"""Walk-forward folds as Ray tasks on a real two-node cluster (two `ray start` processes on this machine) give the
same predictions and fold metrics as the local path, with tasks on both nodes; `trendcast evaluate --ray` (a
private instance) and `TRENDCAST_RAY_ADDRESS` (the cluster) give the local command's report."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.integration.ray_cluster import RayCluster, ray_cluster, require_ray
from trendcast.cli import app
from trendcast.config import BiLSTMConfig, ExperimentConfig, LabelConfig, LightGBMConfig, Settings, WalkForwardConfig
from trendcast.data.synthetic import planted_signal_bars
from trendcast.evaluation.executor import FoldOutput, LocalExecutor, RayExecutor, merge, plan
from trendcast.evaluation.metrics import summarise_predictions
from trendcast.evaluation.walk_forward import make_folds, run_walk_forward
from trendcast.features.windows import WindowSet, build_window_set
from trendcast.pipelines.train import model_factory

pytestmark = pytest.mark.integration

MODELS = ["logreg", "majority", "lightgbm", "bilstm"]
CONFIG = ExperimentConfig(
    window=10,
    features=["ret_1", "ret_5", "rsi_14", "volatility_20", "sma_ratio_20"],
    labels=LabelConfig(horizon=1, threshold=0.005),
    walk_forward=WalkForwardConfig(folds=3, min_train_fraction=0.5),
    lightgbm=LightGBMConfig(n_estimators=40),
    bilstm=BiLSTMConfig(hidden1=8, hidden2=4, attention_dim=4, dense=4, epochs=2, batch_size=64, max_train_samples=200),
)
runner = CliRunner()


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    require_ray()
    with ray_cluster(nodes=2, cpus_per_node=1) as running:
        yield running


@pytest.fixture(scope="module")
def ws() -> WindowSet:
    bars = planted_signal_bars(n_tickers=3, n_days=260, seed=3)
    return build_window_set(bars, window=CONFIG.window, labels=CONFIG.labels, features=CONFIG.features)


def alive_node_ids(cluster: RayCluster) -> set[str]:
    import ray

    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        return {str(n["NodeID"]) for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()


def fold_metrics(frame: Any) -> str:
    """Per-fold metrics as canonical JSON (NaN-safe equality)."""
    return json.dumps(summarise_predictions(frame, n_boot=50, n_boot_auc=20, seed=0)["folds"], sort_keys=True)


def test_folds_on_two_nodes_equal_the_local_walk_forward(cluster: RayCluster, ws: WindowSet) -> None:
    factory = model_factory(Settings(torch_threads=1), progress=False)
    started = time.perf_counter()
    local = run_walk_forward(ws, MODELS, CONFIG, progress=False, factory=factory, executor=LocalExecutor(threads=1))
    local_s = time.perf_counter() - started

    done: list[FoldOutput] = []
    tasks = plan(ws, MODELS, CONFIG)
    started = time.perf_counter()
    outputs = RayExecutor(cluster.address, threads=1).map(ws, tasks, CONFIG, factory, done.append)
    cluster_s = time.perf_counter() - started
    remote = merge(outputs, make_folds(ws, CONFIG), MODELS)
    print(f"\nwalk-forward of {len(tasks)} tasks: local {local_s:.1f} s, two-node cluster {cluster_s:.1f} s")

    assert sorted((o.fold.index, o.model) for o in done) == sorted((t.fold.index, t.model) for t in tasks)
    assert {o.node for o in outputs} == alive_node_ids(cluster)  # both nodes ran tasks
    assert list(remote.predictions) == list(local.predictions) == MODELS
    for name in MODELS:
        pd.testing.assert_frame_equal(remote.predictions[name], local.predictions[name], check_exact=True)
        assert fold_metrics(remote.predictions[name]) == fold_metrics(local.predictions[name])
    assert [r.as_dict() for r in remote.folds] == [r.as_dict() for r in local.folds]
    assert [len(h) for h in remote.histories["bilstm"]] == [len(h) for h in local.histories["bilstm"]]


@pytest.fixture
def stored_bars(tmp_settings_env: Path, tmp_path: Path) -> Path:
    path = tmp_path / "prices.csv"
    planted_signal_bars(n_tickers=2, n_days=260, seed=5).rename(columns={"ticker": "Name"}).to_csv(path, index=False)
    result = runner.invoke(app, ["data", "ingest", "--source", "csv", "--path", str(path)])
    assert result.exit_code == 0, result.output
    return tmp_path


def evaluate_report(folder: Path, name: str, *extra: str) -> dict[str, Any]:
    report = folder / f"{name}.json"
    args = ["evaluate", "--models", "logreg,majority", "--folds", "2", "--window", "10", "--report", str(report)]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    return dict(json.loads(report.read_text()))


def test_cli_evaluate_with_ray_gives_the_local_report(stored_bars: Path) -> None:
    require_ray()
    local = evaluate_report(stored_bars, "local")
    private = evaluate_report(stored_bars, "ray", "--ray")  # TRENDCAST_RAY_ADDRESS unset: a private instance
    assert private["models"] == local["models"] and private["folds"] == local["folds"]


def test_cli_follows_the_ray_address_setting(
    cluster: RayCluster, stored_bars: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = evaluate_report(stored_bars, "local")
    monkeypatch.setenv("TRENDCAST_RAY_ADDRESS", cluster.address)
    on_cluster = evaluate_report(stored_bars, "cluster")  # no --ray: the setting alone sends the folds to Ray
    assert on_cluster["models"] == local["models"]
