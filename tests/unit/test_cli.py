"""The CLI end to end on a temporary SQLite store: ingest, list, show, features, evaluate, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

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


def _clean_exit(result: Result, code: int) -> str:
    """The command ended through SystemExit with `code` (no stray exception) and printed no traceback."""
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stderr


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["data", "ingest", "--start", "2012-02-30"], "--start"),
        (["data", "ingest", "--end", "notadate"], "--end"),
        (["explain", "AAPL", "--date", "2012-02-30"], "--date"),
    ],
)
def test_bad_dates_are_usage_errors_like_any_bad_option_value(
    tmp_settings_env: Path, args: list[str], option: str
) -> None:
    stderr = _clean_exit(runner.invoke(app, args), 2)
    assert f"Invalid value for '{option}'" in stderr and "YYYY-MM-DD" in stderr
    assert "Invalid value for '--window'" in _clean_exit(runner.invoke(app, ["summary", "--window", "abc"]), 2)


def test_dates_are_passed_on_as_iso_dates(csv_file: Path) -> None:
    args = [
        "data",
        "ingest",
        "--source",
        "csv",
        "--path",
        str(csv_file),
        "--start",
        "2010-03-01",
        "--end",
        "2010-03-05",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "stored 10 rows for 2 tickers" in result.output


@pytest.mark.parametrize("url", ["mysql://user:secret@db/trendcast", "mssql+pyodbc://db/x"])
def test_an_unsupported_database_url_is_one_line_and_exit_1(
    tmp_settings_env: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("TRENDCAST_DATABASE_URL", url)
    stderr = _clean_exit(runner.invoke(app, ["data", "list"]), 1)
    assert stderr.startswith("error:") and len(stderr.strip().splitlines()) == 1
    assert "sqlite:///" in stderr and "postgresql+psycopg://" in stderr and "secret" not in stderr


def test_errors_go_to_stderr_so_json_output_stays_clean(tmp_settings_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "ingest", "--source", "csv", "--path", str(tmp_path / "missing.csv")])
    assert "no such file" in _clean_exit(result, 1) and result.stdout == ""


def test_date_format_is_passed_to_the_csv_source(tmp_settings_env: Path, tmp_path: Path) -> None:
    path = tmp_path / "DAYFIRST.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n02/03/2015,1,2,1,1.5,5\n03/03/2015,1,2,1,1.5,5\n")
    refused = runner.invoke(app, ["data", "ingest", "--source", "csv", "--path", str(path)])
    assert "--date-format" in _clean_exit(refused, 1)
    result = runner.invoke(app, ["data", "ingest", "--source", "csv", "--path", str(path), "--date-format", "%d/%m/%Y"])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["data", "show", "DAYFIRST"])
    assert "2015-03-02" in shown.output and "2015-03-03" in shown.output
    bundled = runner.invoke(app, ["data", "ingest", "--date-format", "%d/%m/%Y"])
    assert "--date-format" in _clean_exit(bundled, 1)


def test_tickers_the_api_refuses_are_refused_at_ingest(tmp_settings_env: Path) -> None:
    result = runner.invoke(app, ["data", "ingest", "--tickers", "AAPL,AAPL';DROP TABLE bars;--"])
    assert "not a valid ticker" in _clean_exit(result, 1)
