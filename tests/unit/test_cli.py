"""The CLI end to end on a temporary SQLite store: ingest, list, show, features, evaluate, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trendcast.cli import app
from trendcast.data.synthetic import planted_signal_bars

runner = CliRunner()


@pytest.fixture
def csv_file(tmp_path: Path, tmp_settings_env: Path) -> Path:
    path = tmp_path / "prices.csv"
    planted_signal_bars(n_tickers=2, n_days=300, seed=5).rename(columns={"ticker": "Name"}).to_csv(path, index=False)
    return path


def test_ingest_list_show_and_evaluate(csv_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "ingest", "--source", "csv", "--path", str(csv_file)])
    assert result.exit_code == 0, result.output
    assert "stored 600 rows for 2 tickers" in result.output
    listed = runner.invoke(app, ["data", "list"])
    assert "SIG000" in listed.output and "300" in listed.output
    shown = runner.invoke(app, ["data", "show", "SIG001", "--rows", "2"])
    assert "SIG001: 300 bars" in shown.output
    report = tmp_path / "eval.json"
    evaluated = runner.invoke(
        app, ["evaluate", "--models", "logreg,majority", "--folds", "2", "--window", "10", "--report", str(report)]
    )
    assert evaluated.exit_code == 0, evaluated.output
    data = json.loads(report.read_text())
    assert set(data["models"]) == {"logreg", "majority"}
    assert len(data["folds"]) == 2


def test_features_list_shows_the_catalog() -> None:
    result = runner.invoke(app, ["features", "list", "--group", "momentum"])
    assert result.exit_code == 0
    assert "rsi_14" in result.output and "sma_ratio_20" not in result.output


def test_errors_are_one_clear_line_and_exit_1(tmp_settings_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "ingest", "--source", "csv", "--path", str(tmp_path / "missing.csv")])
    assert result.exit_code == 1
    assert "error:" in result.output and "no such file" in result.output
    assert "Traceback" not in result.output
