"""`trendcast backtest` and `trendcast report`: backtest out-of-sample predictions and print or publish the result.

Predictions come from a file (`--predictions`, CSV or Parquet) or from an MLflow run (`--run RUN_ID`, its
`predictions.parquet` artifact); prices come from the bar store named by the settings. The metrics print as a
Rich table, strategy beside buy-and-hold. Both are plain functions with Typer-annotated parameters: the CLI
registers them (`app.command("backtest")(backtest)`) and wraps TrendcastError into a one-line message.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from trendcast.backtest.engine import BacktestResult, compare_models, run_backtest
from trendcast.backtest.predictions import load_predictions, unique_tickers
from trendcast.config import BacktestConfig, Settings, load_settings
from trendcast.errors import ConfigError

PREDICTIONS_ARTIFACT = "predictions.parquet"
OTHER_MODEL_ARTIFACT = re.compile(r"^predictions_(?P<model>[\w.-]+)\.parquet$")

console = Console()


# -- inputs ----------------------------------------------------------------------------------------------------------
def download_run_predictions(settings: Settings, run_id: str, artifact: str = PREDICTIONS_ARTIFACT) -> pd.DataFrame:
    """The predictions frame logged as `artifact` in MLflow run `run_id`."""
    from trendcast.tracking import download_run_artifact

    with tempfile.TemporaryDirectory() as folder:
        return load_predictions(download_run_artifact(settings, run_id, artifact, Path(folder)))


def other_model_artifacts(settings: Settings, run_id: str) -> dict[str, str]:
    """{model: artifact} for the run's `predictions_<model>.parquet` files (the baselines beside the primary)."""
    from trendcast.tracking import list_run_artifacts

    found = {}
    for path in list_run_artifacts(settings, run_id):
        match = OTHER_MODEL_ARTIFACT.match(Path(path).name)
        if match:
            found[match["model"]] = path
    return found


def load_prices(settings: Settings, predictions: pd.DataFrame) -> pd.DataFrame:
    """Stored bars of the predictions' tickers from their first signal date on."""
    from trendcast.data.store import open_store

    start = pd.Timestamp(predictions["date"].min()).strftime("%Y-%m-%d")
    with open_store(settings.resolved_database_url) as store:
        return store.load(unique_tickers(predictions), start=start)


EntryRuleName = Literal["train_quantile", "fixed"]


def backtest_config(
    long_short: bool = False,
    cost_bps: float | None = None,
    base: BacktestConfig | None = None,
    entry_rule: EntryRuleName | None = None,
) -> BacktestConfig:
    """`base` (default BacktestConfig()) with the CLI overrides; `cost_bps` replaces commission + slippage."""
    update: dict[str, object] = {"long_short": long_short}
    if entry_rule is not None:
        update["entry_rule"] = entry_rule
    if cost_bps is not None:
        if cost_bps < 0:
            raise ConfigError(f"--cost-bps must be >= 0, got {cost_bps}.")
        update |= {"commission_bps": cost_bps, "slippage_bps": 0.0}
    return (base or BacktestConfig()).model_copy(update=update)


def _predictions_from(settings: Settings, run_id: str | None, path: Path | None) -> tuple[pd.DataFrame, str]:
    if run_id is not None and path is None:
        return download_run_predictions(settings, run_id), f"run {run_id}"
    if path is not None and run_id is None:
        return load_predictions(path), str(path)
    raise ConfigError("pass exactly one of --run RUN_ID (an MLflow run) or --predictions FILE (CSV/Parquet).")


# -- output ----------------------------------------------------------------------------------------------------------
def metrics_table(result: BacktestResult, title: str = "Backtest") -> Table:
    """The metrics as a Rich table, strategy beside buy-and-hold."""
    from trendcast.reporting.formatting import metric_rows

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("strategy", justify="right", style="bold cyan")
    table.add_column("buy & hold", justify="right")
    for row in metric_rows(result):
        table.add_row(row["label"], row["strategy"], row["benchmark"])
    return table


def _describe(result: BacktestResult) -> str:
    config, returns = result.config, result.returns
    side = "long/short" if config.long_short else "long/flat"
    return (
        f"{result.ticker_returns.shape[1]} tickers, {returns.index[0]:%Y-%m-%d} → {returns.index[-1]:%Y-%m-%d}, "
        f"{side}, {config.execution}, {config.commission_bps + config.slippage_bps:g} bps per unit turnover; "
        f"entry: {result.entry.describe()}"
    )


# -- commands --------------------------------------------------------------------------------------------------------
def backtest(
    run_id: Annotated[
        str | None, typer.Option("--run", help="MLflow run id whose predictions.parquet to backtest")
    ] = None,
    predictions: Annotated[
        Path | None, typer.Option("--predictions", help="predictions file (.csv or .parquet)")
    ] = None,
    long_short: Annotated[bool, typer.Option("--long-short/--long-only", help="also short when P(Down) wins")] = False,
    cost_bps: Annotated[
        float | None, typer.Option("--cost-bps", min=0.0, help="total cost per unit turnover in bps (default 5 + 5)")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="also write the HTML report to this file")] = None,
    entry_rule: Annotated[
        EntryRuleName | None,
        typer.Option(
            "--entry-rule",
            help="train_quantile (default): P(Up)-P(Down) above its training-fold quantile; fixed: P(Up) > 0.4",
        ),
    ] = None,
) -> None:
    """Backtest out-of-sample predictions against stored prices; print strategy vs buy-and-hold."""
    settings = load_settings()
    frame, source = _predictions_from(settings, run_id, predictions)
    config = backtest_config(long_short, cost_bps, entry_rule=entry_rule)
    result = run_backtest(frame, load_prices(settings, frame), config)
    console.print(metrics_table(result, title=f"Backtest of {source}"))
    console.print(_describe(result), soft_wrap=True)
    if report is not None:
        from trendcast.reporting import write_report

        path = write_report(result, frame, report, title=f"Backtest of {source}")
        console.print(f"[green]report[/] {path}")


def report(
    run_id: Annotated[str, typer.Option("--run", help="MLflow run id (its predictions.parquet)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write")] = Path("report.html"),
) -> None:
    """Write the self-contained HTML report of a run: backtest, charts, and the run's other models side by side."""
    from trendcast.reporting import write_report

    settings = load_settings()
    frame = download_run_predictions(settings, run_id)
    models = {_model_name(frame, "primary"): frame}
    for name, artifact in other_model_artifacts(settings, run_id).items():
        models[name] = download_run_predictions(settings, run_id, artifact)
    prices = load_prices(settings, pd.concat([f[["ticker", "date"]] for f in models.values()]))
    config = backtest_config()
    result = run_backtest(frame, prices, config)
    extra = {"Model comparison": compare_models(models, prices, config)} if len(models) > 1 else None
    path = write_report(result, frame, output, title=f"Backtest of run {run_id}", extra_tables=extra)
    console.print(metrics_table(result, title=f"Backtest of run {run_id}"))
    console.print(f"[green]report[/] {path}")


def _model_name(frame: pd.DataFrame, default: str) -> str:
    if "model" in frame and frame["model"].notna().any():
        return str(frame["model"].dropna().iloc[0])
    return default
