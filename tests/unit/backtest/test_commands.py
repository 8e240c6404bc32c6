"""The backtest/report commands: predictions from a file or an MLflow run, prices from the store, a Rich table."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from tests.unit.backtest._helpers import random_predictions
from trendcast.backtest import commands
from trendcast.config import load_settings
from trendcast.data.store import open_store
from trendcast.data.synthetic import random_walk_bars
from trendcast.errors import ConfigError


@pytest.fixture
def stored(tmp_settings_env: Path, tmp_path: Path) -> Path:
    """Bars in the store of the temp settings and their predictions in a Parquet file."""
    bars = random_walk_bars(n_tickers=2, n_days=90, seed=51)
    with open_store(load_settings().resolved_database_url) as store:
        store.upsert(bars)
    path = tmp_path / "predictions.parquet"
    random_predictions(bars, seed=52).assign(label=1, model="bilstm").to_parquet(path)
    return path


def test_backtest_from_a_file_prints_both_sides(
    stored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out.html"
    commands.backtest(run_id=None, predictions=stored, long_short=True, cost_bps=0.0, report=report)
    out = capsys.readouterr().out
    assert "strategy" in out and "buy & hold" in out and "Sharpe" in out
    assert "long/short" in out and "0 bps per unit turnover" in out
    assert report.read_text(encoding="utf-8").count('<img class="chart"') == 7


def test_backtest_needs_exactly_one_source(stored: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        commands.backtest(run_id=None, predictions=None, long_short=False, cost_bps=None, report=None)
    with pytest.raises(ConfigError, match="exactly one"):
        commands.backtest(run_id="abc", predictions=stored, long_short=False, cost_bps=None, report=None)


def test_cost_bps_replaces_commission_and_slippage() -> None:
    config = commands.backtest_config(long_short=True, cost_bps=3.0)
    assert (config.commission_bps, config.slippage_bps, config.long_short) == (3.0, 0.0, True)
    assert commands.backtest_config().commission_bps + commands.backtest_config().slippage_bps == 10.0


def test_report_from_a_run_compares_its_models(
    stored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow.artifacts

    baseline = pd.read_parquet(stored).assign(model="momentum")
    baseline_path = tmp_path / "predictions_momentum.parquet"
    baseline.to_parquet(baseline_path)
    artifacts = {"predictions.parquet": stored, "predictions_momentum.parquet": baseline_path}
    calls: list[dict[str, Any]] = []

    def download(**kwargs: Any) -> str:
        calls.append(kwargs)
        target = Path(kwargs["dst_path"]) / kwargs["artifact_path"]
        shutil.copy(artifacts[kwargs["artifact_path"]], target)
        return str(target)

    def listing(**kwargs: Any) -> list[SimpleNamespace]:
        return [SimpleNamespace(path=name) for name in [*artifacts, "model"]]

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", download)
    monkeypatch.setattr(mlflow.artifacts, "list_artifacts", listing)
    output = commands.report(run_id="run123", output=tmp_path / "report.html")
    assert output is None
    assert calls[0]["run_id"] == "run123" and calls[0]["artifact_path"] == "predictions.parquet"
    assert calls[0]["tracking_uri"] == load_settings().resolved_mlflow_uri
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Model comparison" in html and "momentum" in html and "bilstm" in html and "buy &amp; hold" in html
    assert "Backtest of run run123" in capsys.readouterr().out
