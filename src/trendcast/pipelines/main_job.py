"""The backtest stage of training and of `trendcast run`.

`log_backtest` turns the primary model's walk-forward out-of-sample predictions (never in-sample ones) into a
backtest after costs, logs its metrics, PNG figures and the self-contained HTML report into the active MLflow run,
and writes the report under the data directory. `after_training` lists the stages `trendcast run` prints after
training.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from trendcast.config import ExperimentConfig, Settings

Stage = Callable[[Settings, Any, Console], None]
REPORT_NAME = "report.html"


def report_path(settings: Settings) -> Path:
    return settings.data_dir / "reports" / REPORT_NAME


def log_backtest(
    settings: Settings, config: ExperimentConfig, predictions: dict[str, pd.DataFrame], primary: str
) -> dict[str, Any]:
    import mlflow

    from trendcast import tracking
    from trendcast.backtest import compare_models, run_backtest
    from trendcast.backtest.commands import load_prices
    from trendcast.reporting import save_figures, write_report

    frame = predictions[primary]
    prices = load_prices(settings, frame)
    result = run_backtest(frame, prices, config.backtest)
    tracking.log_metrics(result.flat_metrics(prefix="backtest."))
    mlflow.log_params({f"backtest.{key}": value for key, value in result.entry.as_params().items()})
    comparison = compare_models(predictions, prices, config.backtest)
    out = write_report(
        result,
        frame,
        report_path(settings),
        title=f"trendcast: {primary} walk-forward backtest",
        extra_tables={"Model comparison (same folds, same costs)": comparison},
    )
    tracking.log_artifact(out)
    with tempfile.TemporaryDirectory() as tmp:
        for figure in save_figures(result, frame, Path(tmp)):
            tracking.log_artifact(figure, artifact_path="figures")
    strategy, benchmark = result.metrics["strategy"], result.metrics["benchmark"]
    return {
        "report": str(out),
        "entry_rule": result.entry.rule,
        "entry_rule_description": result.entry.describe(),
        "strategy": _finite(strategy),
        "benchmark": _finite(benchmark),
        "comparison": comparison.reset_index().to_dict(orient="records"),
    }


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    import math

    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in metrics.items()}


def print_backtest(settings: Settings, outcome: Any, console: Console) -> None:
    """Strategy vs buy-and-hold from the training run's backtest, and where the HTML report is."""
    from rich.table import Table

    backtest = outcome.report.get("backtest")
    if not backtest:
        return
    console.rule("4. backtest of the out-of-sample predictions (after costs) vs buy-and-hold")
    table = Table("metric", "strategy", "buy & hold")
    for key in (
        "total_return",
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "win_rate_days",
        "profit_factor",
        "n_trades",
        "exposure",
    ):
        if key in backtest["strategy"]:
            table.add_row(key, _fmt(backtest["strategy"][key]), _fmt(backtest["benchmark"].get(key)))
    console.print(table)
    if "entry_rule_description" in backtest:
        console.print(f"entry rule: {backtest['entry_rule_description']}", soft_wrap=True)
    console.print(f"HTML report: [bold]{backtest['report']}[/]")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.4f}"


def after_training() -> list[Stage]:
    return [print_backtest]
