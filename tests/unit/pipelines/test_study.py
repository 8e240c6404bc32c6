"""`trendcast study` on synthetic universes: a planted cross-sectional signal is found (positive IC whose CI is above
0, a top-k portfolio with a clearly positive Sharpe before costs), random walks are not (the IC's CI covers 0 and the
Sharpe stays within sampling error of 0), the portfolio equals an independent computation, and the report, the HTML
page, the MLflow run and the CLI are complete.

Sharpe bound: the annualised Sharpe of n daily returns with true Sharpe 0 has a standard error of about
sqrt(252 / n) (Lo 2002). "Clearly positive" is above 4 standard errors; "near zero" is within 4.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from trendcast.cli import app
from trendcast.config import ExperimentConfig, Settings, load_settings
from trendcast.data.store import BarStore
from trendcast.data.synthetic import cross_sectional_signal_bars, random_walk_bars
from trendcast.evaluation.metrics import classification_metrics
from trendcast.evaluation.walk_forward import WalkForwardResult, fold_arrays
from trendcast.pipelines.study import (
    REPORT_FIELDS,
    StudyOutcome,
    compare_models,
    comparison_verdict,
    ranking_share,
    run_study,
)

FEATURES = ["ret_1", "ret_5", "rsi_14", "volatility_20", "gap", "hl_range"]
DOCS = Path(__file__).resolve().parents[3] / "docs" / "study.md"
K = 5


def _config(models: list[str], **study: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "test-study",
            "window": 10,
            "features": FEATURES,
            "labels": {"mode": "cross_sectional", "horizon": 1},
            "walk_forward": {"folds": 2, "min_train_fraction": 0.5},
            "lightgbm": {"n_estimators": 40, "num_leaves": 7},
            "bilstm": {"hidden1": 4, "hidden2": 4, "attention_dim": 4, "dense": 4, "epochs": 1, "train_subsample": 300},
            "study": {"k": K, "cost_bps": 5.0, "models": models, "n_boot": 200, **study},
            "seed": 3,
        }
    )


def _settings(folder: Path, bars: pd.DataFrame | None, mlflow_uri: str | None = None) -> Settings:
    settings = load_settings(
        data_dir=folder,
        database_url=f"sqlite:///{folder / 'bars.db'}",
        mlflow_tracking_uri=mlflow_uri or f"sqlite:///{folder / 'mlflow.db'}",
    )
    if bars is not None:
        _store(settings, bars)
    return settings


def _store(settings: Settings, bars: pd.DataFrame) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = BarStore(settings.resolved_database_url)
    store.upsert(bars)
    store.close()


def _run(folder: Path, bars: pd.DataFrame, models: list[str], mlflow_uri: str) -> tuple[Settings, StudyOutcome]:
    settings = _settings(folder, bars, mlflow_uri)
    outcome = run_study(
        settings,
        _config(models),
        report_path=folder / "study.json",
        html_path=folder / "study.html",
        progress=False,
    )
    return settings, outcome


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the module: a fresh SQLite store costs seconds of schema migrations."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> tuple[Settings, StudyOutcome, pd.DataFrame]:
    bars = cross_sectional_signal_bars(n_tickers=24, n_days=400, seed=11)
    folder = tmp_path_factory.mktemp("planted")
    settings, outcome = _run(folder, bars, ["logreg", "lightgbm", "majority"], mlflow_uri)
    return settings, outcome, bars


@pytest.fixture(scope="module")
def random_walk(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> StudyOutcome:
    bars = random_walk_bars(n_tickers=24, n_days=400, seed=12)
    return _run(tmp_path_factory.mktemp("random"), bars, ["logreg", "majority"], mlflow_uri)[1]


def _sharpe_bound(outcome: StudyOutcome, model: str) -> float:
    return 4.0 * math.sqrt(252.0 / len(outcome.portfolios[model].daily))


def test_a_planted_signal_gives_a_positive_ic_and_a_profitable_top_k_book(planted: Any) -> None:
    _, outcome, _ = planted
    logreg = outcome.report["models"]["logreg"]
    assert logreg["ic"]["ic_mean_ci"][0] > 0.0 and logreg["ic"]["rank_ic_mean_ci"][0] > 0.0
    assert logreg["portfolio"]["can_rank"]
    assert logreg["portfolio"]["summary"]["gross_sharpe"] > _sharpe_bound(outcome, "logreg")
    assert set(logreg["portfolio"]["by_year"]) == {str(y) for y in outcome.portfolios["logreg"].by_year()}


def test_random_walks_give_no_ic_and_no_sharpe(random_walk: StudyOutcome) -> None:
    ic = random_walk.report["models"]["logreg"]["ic"]
    assert ic["ic_mean_ci"][0] <= 0.0 <= ic["ic_mean_ci"][1]
    assert ic["rank_ic_mean_ci"][0] <= 0.0 <= ic["rank_ic_mean_ci"][1]
    sharpe = random_walk.report["models"]["logreg"]["portfolio"]["summary"]["gross_sharpe"]
    assert abs(sharpe) < _sharpe_bound(random_walk, "logreg")


def test_the_portfolio_equals_an_independent_computation(planted: Any) -> None:
    _, outcome, bars = planted
    frame = outcome.walk_forward.predictions["logreg"]
    scores = frame.assign(score=frame["p_up"] - frame["p_down"]).pivot(index="date", columns="ticker", values="score")
    opens = bars.pivot(index="date", columns="ticker", values="open").sort_index()
    daily = outcome.portfolios["logreg"].daily
    dates = list(opens.index)
    for day, row in daily.iterrows():
        t = dates.index(day)
        day_scores = scores.loc[day].dropna().sort_values()
        longs, shorts = list(day_scores.index[-K:]), list(day_scores.index[:K])
        r = opens.iloc[t + 2] / opens.iloc[t + 1] - 1.0
        assert row["gross"] == pytest.approx(r[longs].mean() - r[shorts].mean(), abs=1e-12)
    assert len(daily) == len([d for d in scores.index if dates.index(d) + 2 < len(dates)])


def test_constant_scores_cannot_rank_and_say_so(planted: Any) -> None:
    _, outcome, _ = planted
    majority = outcome.report["models"]["majority"]["portfolio"]
    assert not majority["can_rank"] and "cannot rank" in majority["note"]
    assert "majority" not in outcome.portfolios


def test_the_bilstm_is_compared_with_lightgbm_on_the_same_samples(planted: Any) -> None:
    _, outcome, _ = planted
    assert outcome.report["comparison"] is None  # no Bi-LSTM in this study
    wf = outcome.walk_forward
    frames = {
        "bilstm": wf.predictions["logreg"],
        "lightgbm": wf.predictions["lightgbm"].sample(frac=1.0, random_state=0),
    }
    comparison = compare_models(WalkForwardResult(wf.folds, frames), _config(["bilstm", "lightgbm"]))
    assert comparison is not None and comparison["n_samples"] == len(frames["bilstm"])
    y, proba, _ = fold_arrays(wf.predictions["logreg"])
    _, other, _ = fold_arrays(wf.predictions["lightgbm"])
    for metric in ("auc_macro_ovr", "accuracy"):  # the shuffled frame was matched back by (ticker, date)
        assert comparison[metric]["metric_a"] == pytest.approx(classification_metrics(y, proba)[metric], abs=1e-12)
        assert comparison[metric]["metric_b"] == pytest.approx(classification_metrics(y, other)[metric], abs=1e-12)
        assert 0.0 < comparison[metric]["p_value"] <= 1.0
    assert comparison["verdict"] == comparison["verdicts"]["auc_macro_ovr"]
    assert comparison["verdict"] == comparison_verdict("auc_macro_ovr", comparison["auc_macro_ovr"])


def test_the_verdict_never_calls_an_insignificant_or_worse_model_better() -> None:
    base = {"metric_a": 0.52, "metric_b": 0.53}
    assert comparison_verdict("accuracy", {**base, "diff": -0.01, "p_value": 0.9}).startswith(
        "the Bi-LSTM is not better than LightGBM (p = 0.900): it is worse"
    )
    assert "not better than LightGBM (p = 0.200)" in comparison_verdict(
        "accuracy", {**base, "diff": 0.01, "p_value": 0.2}
    )
    assert "is better" in comparison_verdict("auc_macro_ovr", {**base, "diff": 0.01, "p_value": 0.01})


def test_ranking_share_counts_days_whose_legs_the_scores_decide() -> None:
    dates = pd.bdate_range("2020-01-01", periods=2)
    tickers = [f"T{i}" for i in range(6)]

    def frame(values: list[list[float]]) -> pd.DataFrame:
        rows = [(t, d, v) for d, row in zip(dates, values, strict=True) for t, v in zip(tickers, row, strict=True)]
        return pd.DataFrame(rows, columns=["ticker", "date", "score"])

    assert ranking_share(frame([[0.1] * 6, [0.1] * 6]), 2) == 0.0  # constant
    assert ranking_share(frame([[1, 1, 1, -1, -1, -1]] * 2), 2) == 0.0  # two values: ties at both cuts
    assert ranking_share(frame([[1, 2, 3, 4, 5, 6], [1, 1, 1, -1, -1, -1]]), 2) == 0.5


def test_every_report_field_is_documented(planted: Any) -> None:
    _, outcome, _ = planted
    stored = json.loads(outcome.report_path.read_text())
    assert set(stored) == set(REPORT_FIELDS)
    docs = DOCS.read_text()
    assert all(f"`{key}`" in docs for key in REPORT_FIELDS)
    assert stored["run_id"] == outcome.run_id and stored["timing"]["wall_seconds"] > 0


def test_the_html_page_is_offline_with_one_equity_curve_per_ranking_model(planted: Any) -> None:
    _, outcome, _ = planted
    page = outcome.html_path.read_text()
    assert "http://" not in page and "https://" not in page
    ranking = [n for n, e in outcome.report["models"].items() if e["portfolio"]["can_rank"]]
    assert page.count('class="equity"') == len(ranking) == len(outcome.portfolios)
    assert all(f'id="equity-{name}"' in page for name in ranking)


def test_the_mlflow_run_has_the_metrics_files_and_predictions(planted: Any) -> None:
    settings, outcome, _ = planted
    client = MlflowClient(settings.resolved_mlflow_uri)
    metrics = client.get_run(outcome.run_id).data.metrics
    row = outcome.report["models"]["logreg"]
    assert metrics["logreg.ic_mean"] == pytest.approx(row["ic"]["ic_mean"], rel=1e-12)
    assert metrics["logreg.gross_sharpe"] == pytest.approx(row["portfolio"]["summary"]["gross_sharpe"], rel=1e-12)
    assert metrics["timing.wall_seconds"] > 0.0
    artifacts = {a.path for a in client.list_artifacts(outcome.run_id)}
    assert {"study.json", "study.html", "predictions_logreg.parquet", "portfolio_logreg.parquet"} <= artifacts


def test_the_cli_runs_the_study_and_refuses_an_empty_store(
    tmp_settings_env: Path, tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENDCAST_MLFLOW_TRACKING_URI", mlflow_uri)
    runner = CliRunner()
    config = tmp_path / "study.yaml"
    config.write_text(json.dumps(_config(["logreg", "momentum"]).model_dump(mode="json")))  # JSON is YAML
    empty = runner.invoke(app, ["study", "--config", str(config), "--report", str(tmp_path / "s.json")])
    assert empty.exit_code == 1 and "trendcast data ingest --source csv" in empty.output
    _store(load_settings(), cross_sectional_signal_bars(n_tickers=12, n_days=260, seed=4))
    done = runner.invoke(app, ["study", "--config", str(config), "--report", str(tmp_path / "s.json")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "s.json").is_file() and (tmp_path / "s.html").is_file()
    assert "logreg" in done.output and "momentum" in done.output and "cannot rank" in done.output


def test_too_few_tickers_for_k_is_a_clear_error(tmp_path: Path) -> None:
    from trendcast.errors import ConfigError

    settings = _settings(tmp_path, random_walk_bars(n_tickers=4, n_days=200, seed=1), "sqlite:///unused.db")
    with pytest.raises(ConfigError, match=r"lower study\.k"):
        run_study(settings, _config(["logreg"]), progress=False)


def test_the_sp500_study_config_asks_for_the_documented_study() -> None:
    config = ExperimentConfig.from_yaml(Path(__file__).resolve().parents[3] / "configs/experiments/sp500_study.yaml")
    assert config.labels.mode == "cross_sectional" and config.labels.horizon == 1
    assert config.walk_forward.folds == 5 and config.study.k == 10
    assert set(config.study.models) == {"bilstm", "lightgbm", "logreg", "momentum", "majority"}
    assert config.bilstm.train_subsample is not None
