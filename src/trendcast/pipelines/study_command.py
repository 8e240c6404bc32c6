"""`trendcast study`: the cross-sectional study (pipelines/study.py) from the command line.

A plain function with Typer-annotated parameters, registered by the CLI like the other stage commands
(`app.command("study")(friendly(study))`), which turns TrendcastError into a one-line message and exit code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

DEFAULT_CONFIG = Path("configs/experiments/sp500_study.yaml")

console = Console(width=None if sys.stdout.isatty() else 200)  # the final table stays readable in logs


def study(
    config: Annotated[Path, typer.Option("--config", help="experiment YAML with a `study:` section")] = DEFAULT_CONFIG,
    report: Annotated[Path, typer.Option(help="write the JSON report here")] = Path("study.json"),
    html: Annotated[Path | None, typer.Option(help="write the HTML page here (default: the report's .html)")] = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="run the walk-forward folds as Ray tasks (TRENDCAST_RAY_ADDRESS or a private local instance)",
        ),
    ] = False,
) -> None:
    """Every model on the same purged folds of the stored universe: accuracy and AUC with CIs, IC / Rank IC / ICIR,
    the top-k / bottom-k portfolio before and after costs, and the Bi-LSTM against LightGBM (docs/study.md)."""
    from trendcast.config import ExperimentConfig, load_settings
    from trendcast.evaluation.executor import executor_for
    from trendcast.pipelines.study import print_study, run_study

    settings = load_settings()
    experiment = ExperimentConfig.from_yaml(config)
    outcome = run_study(
        settings,
        experiment,
        report_path=report,
        html_path=html or report.with_suffix(".html"),
        executor=executor_for(settings, ray),
        console=console,
    )
    print_study(outcome.report, console)
    console.print(f"report: {outcome.report_path}\npage: {outcome.html_path}\nMLflow run: {outcome.run_id}")
