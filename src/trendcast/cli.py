"""`trendcast` command line: data, features, train, evaluate, backtest, report, explain, serve, run, study.

Every command reads the one `Settings` object; errors from the trendcast tree print as one red line on stderr and
exit 1. Bad option values (`--start 2012-02-30`, `--window abc`) are usage errors: Typer says so on stderr, exit 2.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trendcast.cli_options import date_option
from trendcast.config import ExperimentConfig, LabelConfig, Settings, load_settings
from trendcast.errors import TrendcastError

console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)  # errors stay out of --json output
app = typer.Typer(help="Honest, explained stock direction forecasts.", no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Ingest, list and show daily bars.", no_args_is_help=True)
features_app = typer.Typer(help="The feature catalog.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn trendcast errors into one clear line and exit code 1 (no traceback for expected problems)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TrendcastError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from exc

    return wrapper  # type: ignore[return-value]


def _split(value: str | None) -> list[str] | None:
    return [v.strip().upper() for v in value.split(",") if v.strip()] if value else None


def _store(settings: Settings) -> Any:
    from trendcast.data.store import BarStore

    return BarStore(settings.resolved_database_url)


@data_app.command("ingest")
@friendly
def data_ingest(
    source: Annotated[str, typer.Option(help="bundled | csv | yahoo")] = "bundled",
    path: Annotated[str | None, typer.Option(help="CSV/Parquet file or folder (csv source)")] = None,
    tickers: Annotated[str | None, typer.Option(help="comma-separated tickers (default: all)")] = None,
    start: Annotated[str | None, date_option("first date")] = None,
    end: Annotated[str | None, date_option("last date")] = None,
    strict: Annotated[bool, typer.Option(help="treat any row-level problem as an error")] = False,
    date_format: Annotated[
        str | None,
        typer.Option(help="date format of the CSV files, strftime syntax, e.g. %d/%m/%Y (default: inferred per file)"),
    ] = None,
) -> None:
    """Load bars from a source into the store (idempotent upsert, validated first)."""
    from trendcast.data.sources import make_source
    from trendcast.pipelines.ingest import ingest

    settings = load_settings()
    src = make_source(
        source, path=path, start=start, end=end, timeout_s=settings.yahoo_timeout_s, date_format=date_format
    )
    store = _store(settings)
    with console.status(f"ingesting from {source}…"):
        result = ingest(src, store, tickers=_split(tickers), start=start, end=end, strict=strict)
    console.print(
        f"[green]stored[/] {result.rows:,} rows for {len(result.written)} tickers "
        f"in {store.engine.url.render_as_string(hide_password=True)}"
    )
    console.print(f"validation: {result.report.summary()}", soft_wrap=True)


@data_app.command("list")
@friendly
def data_list() -> None:
    """Stored tickers with their first and last dates and row counts."""
    summaries = _store(load_settings()).tickers()
    table = Table("ticker", "first", "last", "rows", title=f"{len(summaries)} tickers")
    for s in summaries:
        table.add_row(s.ticker, str(s.first.date()), str(s.last.date()), f"{s.rows:,}")
    console.print(table)


@data_app.command("show")
@friendly
def data_show(ticker: str, rows: Annotated[int, typer.Option(help="rows from the end")] = 10) -> None:
    """The last bars stored for TICKER."""
    frame = _store(load_settings()).load([ticker.upper()])
    table = Table(*frame.columns[1:], title=f"{ticker.upper()}: {len(frame):,} bars")
    for row in frame.tail(rows).itertuples(index=False):
        table.add_row(str(row.date.date()), *[f"{v:,.4f}" for v in row[2:]])
    console.print(table)


@features_app.command("list")
def features_list(group: Annotated[str | None, typer.Option(help="only this group")] = None) -> None:
    """The indicator catalog: name, group, meaning, lookback."""
    from trendcast.features.indicators import catalog

    items = [i for i in catalog() if group is None or i.group == group]
    table = Table("name", "group", "meaning", "lookback", title=f"{len(items)} features (TA-Lib)")
    for ind in items:
        table.add_row(ind.name, ind.group, ind.meaning, str(ind.lookback))
    console.print(table)


@app.command("summary")
@friendly
def summary(
    window: Annotated[int, typer.Option(help="window length in days")] = 60,
    horizon: Annotated[int, typer.Option(help="label horizon in days")] = 1,
    threshold: Annotated[float, typer.Option(help="neutral band (return)")] = 0.005,
) -> None:
    """Per ticker: date range, bars, usable samples and label balance (features and labels built from the store)."""
    print_universe_summary(
        load_settings(), ExperimentConfig(window=window, labels=LabelConfig(horizon=horizon, threshold=threshold))
    )


def print_universe_summary(settings: Settings, config: ExperimentConfig) -> None:
    import numpy as np

    from trendcast.features.windows import build_window_set

    bars = _store(settings).load(config.tickers)
    if bars.empty:
        raise TrendcastError("the store is empty; run `trendcast data ingest` first")
    ws = build_window_set(bars, window=config.window, labels=config.labels, features=config.features, progress=True)
    table = Table(
        "ticker",
        "first",
        "last",
        "bars",
        "samples",
        "Down",
        "Neutral",
        "Up",
        title=f"{ws.n_features} features, window {ws.window}, horizon {ws.horizon}, "
        f"neutral band ±{config.labels.threshold:.2%}",
    )
    for ticker, group in bars.groupby("ticker"):
        mask = ws.tickers == ticker
        counts = np.bincount(ws.labels[mask], minlength=3)
        table.add_row(
            str(ticker),
            str(group["date"].min().date()),
            str(group["date"].max().date()),
            f"{len(group):,}",
            f"{int(mask.sum()):,}",
            *[f"{c:,}" for c in counts],
        )
    console.print(table)


def _experiment(config: Path | None, **overrides: Any) -> ExperimentConfig:
    base = ExperimentConfig.from_yaml(config) if config else ExperimentConfig()
    data = base.model_dump()
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, field = key.partition("__")
        if field:
            data[section][field] = value
        else:
            data[key] = value
    return ExperimentConfig.model_validate(data)


def _cli_experiment(
    config: Path | None,
    tickers: str | None,
    folds: int | None,
    epochs: int | None,
    horizon: int | None,
    threshold: float | None,
    window: int | None,
    candidates: str | None = None,
) -> ExperimentConfig:
    """The experiment YAML (or defaults) with the command-line overrides applied."""
    return _experiment(
        config,
        candidates=[c.strip().lower() for c in candidates.split(",") if c.strip()] if candidates else None,
        tickers=_split(tickers),
        walk_forward__folds=folds,
        bilstm__epochs=epochs,
        labels__horizon=horizon,
        labels__threshold=threshold,
        window=window,
    )


def _print_registered(outcome: Any) -> None:
    print_decision(outcome.report["decision"])
    if outcome.registered is not None:
        r = outcome.registered
        console.print(f"registered [bold]{r.name}[/] version {r.version} as [bold]{r.alias}[/] (run {outcome.run_id})")


def print_decision(decision: dict[str, Any]) -> None:
    """The promotion gates as a table, then the decision in one sentence."""
    table = Table("gate", "passed", "why", title="promotion gates")
    for gate in decision["gates"]:
        table.add_row(gate["name"], "[green]yes[/]" if gate["passed"] else "[red]no[/]", gate["reason"])
    console.print(table)
    colour = "green" if decision["promoted"] else "yellow"
    console.print(f"[bold {colour}]{'promoted' if decision['promoted'] else 'not promoted'}:[/] {decision['reason']}")


ConfigOpt = Annotated[Path | None, typer.Option("--config", help="experiment YAML (configs/experiments/*.yaml)")]
TickersOpt = Annotated[str | None, typer.Option(help="comma-separated tickers (default: all stored)")]
FoldsOpt = Annotated[int | None, typer.Option(help="walk-forward folds (default 5)")]
EpochsOpt = Annotated[int | None, typer.Option(help="Bi-LSTM epochs")]
HorizonOpt = Annotated[int | None, typer.Option(help="label horizon, days (default 1)")]
ThresholdOpt = Annotated[float | None, typer.Option(help="neutral band as a return (default 0.005)")]
WindowOpt = Annotated[int | None, typer.Option(help="window length, days (default 60)")]
RayOpt = Annotated[
    bool,
    typer.Option(
        "--ray", help="run the walk-forward folds as Ray tasks (TRENDCAST_RAY_ADDRESS or a private local instance)"
    ),
]


@app.command("train")
@friendly
def train(
    model: Annotated[str, typer.Option(help="bilstm | lightgbm | logreg | momentum | majority")] = "bilstm",
    tickers: TickersOpt = None,
    folds: FoldsOpt = None,
    epochs: EpochsOpt = None,
    horizon: HorizonOpt = None,
    threshold: ThresholdOpt = None,
    window: WindowOpt = None,
    config: ConfigOpt = None,
    report: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    baselines: Annotated[bool, typer.Option(help="also evaluate the baselines on the same folds")] = True,
    register: Annotated[bool, typer.Option(help="register the challenger and move aliases as the gates decide")] = True,
    candidates: Annotated[
        str | None, typer.Option(help="comma-separated models that may become champion (default: the experiment's)")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="train the Bi-LSTM data-parallel on N Ray Train workers (CPU)")
    ] = None,
    ray: RayOpt = False,
) -> None:
    """Walk-forward evaluate the candidates (and the champion's configuration) on the same folds; the promotion
    gates decide which, if any, becomes champion. MODEL is the one the report's verdict and backtest are about."""
    from trendcast.evaluation.executor import executor_for
    from trendcast.pipelines.train import run_training

    settings = load_settings()
    if workers is not None:
        settings = settings.model_copy(update={"train_workers": workers})
    experiment = _cli_experiment(config, tickers, folds, epochs, horizon, threshold, window, candidates)
    outcome = run_training(
        settings,
        experiment,
        model,
        baselines=baselines,
        register=register,
        report_path=report,
        executor=executor_for(settings, ray),
    )
    print_report(outcome.report)
    _print_registered(outcome)
    if report:
        console.print(f"report: {report}")


@app.command("tune")
@friendly
def tune_cmd(
    config: ConfigOpt = None,
    trials: Annotated[int, typer.Option(min=1, help="trials (random samples of the search space)")] = 10,
    epochs: Annotated[int | None, typer.Option(min=1, help="most epochs per trial (default: the config's)")] = None,
    concurrent: Annotated[int, typer.Option(min=1, help="trials running at once, one CPU each")] = 2,
    out: Annotated[Path | None, typer.Option(help="write the best config here (default <data_dir>/tuned.yaml)")] = None,
) -> None:
    """Ray Tune (ASHA) over the Bi-LSTM's sizes, dropout, learning rate, window and label threshold, on data
    before the first walk-forward test fold only; every trial is logged to MLflow, the best config written as YAML."""
    from trendcast.pipelines.tune import run_tune

    settings = load_settings()
    outcome = run_tune(
        settings, _experiment(config), trials=trials, epochs=epochs, max_concurrent=concurrent, out_yaml=out
    )
    table = Table(*[str(c) for c in outcome.trials.columns], title=f"{len(outcome.trials)} trials, best first")
    for row in outcome.trials.itertuples(index=False):
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)
    console.print(
        f"best validation balanced accuracy {outcome.best_metric:.4f} (data up to {outcome.data_end.date()}, "
        f"MLflow parent run {outcome.parent_run_id})"
    )
    console.print(f"tuned config: {outcome.yaml_path}\ntrain it: trendcast train --config {outcome.yaml_path}")


@app.command("evaluate")
@friendly
def evaluate_cmd(
    models: Annotated[str, typer.Option(help="comma-separated models")] = "bilstm,lightgbm,logreg,momentum,majority",
    tickers: TickersOpt = None,
    folds: FoldsOpt = None,
    epochs: EpochsOpt = None,
    horizon: HorizonOpt = None,
    threshold: ThresholdOpt = None,
    window: WindowOpt = None,
    config: ConfigOpt = None,
    report: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    ray: RayOpt = False,
) -> None:
    """Train and compare several models on the same purged walk-forward folds (nothing is registered)."""
    from trendcast.evaluation.executor import executor_for
    from trendcast.pipelines.train import evaluate, load_universe, sanitise, write_report

    settings = load_settings()
    experiment = _cli_experiment(config, tickers, folds, epochs, horizon, threshold, window)
    names = [m.strip().lower() for m in models.split(",") if m.strip()]
    ws = load_universe(settings, experiment)
    _, result = evaluate(settings, ws, names, experiment, primary=names[0], executor=executor_for(settings, ray))
    result = sanitise(result)
    print_report(result)
    if report:
        write_report(result, report)
        console.print(f"report: {report}")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _pct(value: Any) -> str:
    return "n/a" if _missing(value) else f"{value:.2%}"


def _num(value: Any, digits: int = 4) -> str:
    return "n/a" if _missing(value) else f"{value:.{digits}f}"


def print_report(report: dict[str, Any]) -> None:
    """Models x metrics, pooled out-of-sample over all folds, with 95% block-bootstrap CIs."""
    from trendcast.evaluation.report import TrainingReport

    typed = TrainingReport.from_json(report)
    table = Table(
        "model",
        "accuracy [95% CI]",
        "bal. acc.",
        "macro F1",
        "AUC [95% CI]",
        "log loss",
        "Brier",
        "IC",
        "Rank IC",
        "ICIR",
        title=f"Out-of-sample, {typed.n_folds} purged walk-forward folds, "
        f"{len(typed.tickers)} tickers, {typed.first_date}..{typed.last_date}",
    )
    for name, m in typed.models.items():
        acc, auc, ic = m.accuracy_ci, m.auc_ci, m.ic
        table.add_row(
            f"[bold]{name}[/]" if name == typed.primary_model else name,
            f"{_pct(m.accuracy)} [{_pct(acc[0])}, {_pct(acc[1])}]",
            _pct(m.balanced_accuracy),
            _num(m.f1_macro, 3),
            f"{_num(m.auc, 3)} [{_num(auc[0], 3)}, {_num(auc[1], 3)}]",
            _num(m.log_loss),
            _num(m.brier),
            _num(ic.get("ic_mean", math.nan)),
            _num(ic.get("rank_ic_mean", math.nan)),
            _num(ic.get("rank_icir", math.nan), 3),
        )
    console.print(table)
    if typed.comparison is not None:
        console.print(typed.comparison.verdict, soft_wrap=True)


@app.command("run")
@friendly
def run(
    config: ConfigOpt = Path("configs/experiments/quick.yaml"),
    serve: Annotated[bool, typer.Option(help="end by serving the API and dashboard")] = True,
) -> None:
    """The main job: ingest the bundled data, summarise it, train and compare, backtest, report, then serve."""
    from trendcast.data.sources import BundledSource
    from trendcast.pipelines.ingest import ingest
    from trendcast.pipelines.train import run_training

    settings = load_settings()
    experiment = ExperimentConfig.from_yaml(config) if config and config.is_file() else ExperimentConfig()
    console.rule("1. data: bundled history -> store")
    with console.status("ingesting the bundled data…"):
        result = ingest(BundledSource(), _store(settings))
    console.print(
        f"stored {result.rows:,} rows for {len(result.written)} tickers; validation: {result.report.summary()}",
        soft_wrap=True,
    )
    console.rule("2. features and labels")
    print_universe_summary(settings, experiment)
    console.rule("3. train: purged walk-forward, Bi-LSTM vs baselines, tracked in MLflow; the gates pick the champion")
    outcome = run_training(settings, experiment, "bilstm", report_path=settings.data_dir / "reports" / "train.json")
    print_report(outcome.report)
    _print_registered(outcome)
    _print_serving(settings)
    console.print(f"MLflow UI: mlflow ui --backend-store-uri {settings.resolved_mlflow_uri}")
    for step in _after_training_steps():
        step(settings, outcome, console)
    if serve:
        from trendcast.serving.commands import serve as serve_api

        console.rule("serving")
        serve_api(host=settings.host, port=settings.port, workers=settings.workers)


def _print_serving(settings: Settings) -> None:
    from trendcast import tracking

    version = tracking.alias_version(settings, tracking.CHAMPION)
    if version is None:
        console.print("[bold yellow]no champion:[/] the service answers 503 model_not_ready until one passes the gates")
        return
    record = tracking.get_version(settings, version)
    why = record.tags.get("trendcast.reason", "")
    console.print(
        f"[bold]serving[/] {record.tags.get('trendcast.model', '?')} (version {version}, champion): {why}",
        soft_wrap=True,
    )


def _after_training_steps() -> list[Callable[[Settings, Any, Console], None]]:
    """Stages that follow training in the main job (backtest + report)."""
    from trendcast.pipelines.main_job import after_training

    return after_training()


# -- the loop: retrain behind gates, the registry, rollback, schedule, drift -----------------------------------------
def _json_log_lines() -> None:
    """Decisions go to stderr as one JSON line each (logger trendcast.retrain), whatever else prints."""
    import logging

    logger = logging.getLogger("trendcast.retrain")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _dump(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False, default=str) + "\n")


@app.command("retrain")
@friendly
def retrain(
    source: Annotated[str | None, typer.Option(help="ingest new bars first: bundled | csv | yahoo")] = None,
    path: Annotated[str | None, typer.Option(help="CSV/Parquet file or folder (csv source)")] = None,
    config: ConfigOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="decide, but register nothing and move no alias")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the decision as JSON")] = False,
    report: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
) -> None:
    """Ingest (optional), evaluate every candidate and the champion's configuration on the same purged folds, and
    promote the best candidate only if every gate passes. Exit 1 with one line if any step fails."""
    from trendcast.pipelines.loop import retrain_job

    _json_log_lines()
    settings = load_settings()
    experiment = _experiment(config)
    result = retrain_job(
        settings, experiment, source=source, path=path, dry_run=dry_run, progress=not as_json, report_path=report
    )
    if as_json:
        _dump({**result.decision, "registered": result.registered, "run_id": result.run_id, "dry_run": dry_run})
        return
    if source:
        console.print(f"ingested {result.ingested_rows:,} rows from {source}")
    print_decision(result.decision)
    if result.registered:
        r = result.registered
        console.print(f"registered version {r['version']} as [bold]{r['alias']}[/] (run {result.run_id})")


def _version_rows(settings: Settings) -> list[dict[str, Any]]:
    from trendcast import tracking

    rows = []
    for record in tracking.list_versions(settings):
        metrics = record.metrics
        rows.append(
            {
                "version": record.version,
                "model": record.tags.get("trendcast.model"),
                "aliases": list(record.aliases),
                "trained_through": record.tags.get("trendcast.trained_through"),
                "metrics": {k: metrics.get(k) for k in ("auc", "accuracy", "sharpe")},
                "decision": record.tags.get("trendcast.decision"),
                "reason": record.tags.get("trendcast.reason"),
                "previous_champion": record.tags.get("trendcast.previous_champion"),
                "run_id": record.run_id,
            }
        )
    return rows


@app.command("models")
@friendly
def models_cmd(as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False) -> None:
    """Every registered version: model kind, aliases, trained-through, pooled AUC and accuracy, Sharpe, decision."""
    rows = _version_rows(load_settings())
    if as_json:
        _dump(rows)
        return
    table = Table("version", "model", "aliases", "trained through", "AUC", "accuracy", "Sharpe", "decision")
    for r in rows:
        m = r["metrics"]
        table.add_row(
            r["version"],
            r["model"] or "?",
            ", ".join(r["aliases"]),
            r["trained_through"] or "",
            _num(m["auc"]),
            _pct(m["accuracy"]),
            _num(m["sharpe"], 2),
            r["decision"] or "",
        )
    console.print(table)


@app.command("rollback")
@friendly
def rollback_cmd(
    to: Annotated[str | None, typer.Option("--to", help="version to serve (default: the previous champion)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the record as JSON")] = False,
) -> None:
    """Move `champion` back to the previous champion (or --to VERSION). A service with TRENDCAST_MODEL_POLL_SECONDS
    follows by itself; otherwise POST /api/v1/admin/reload."""
    from trendcast.pipelines.retrain import rollback

    _json_log_lines()
    record = rollback(load_settings(), to)
    if as_json:
        _dump(record)
    else:
        console.print(f"[bold]{record['reason']}[/]")


@app.command("drift")
@friendly
def drift_cmd(
    days: Annotated[
        int | None, typer.Option(min=5, help="recent stored trading days (default TRENDCAST_DRIFT_DAYS)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """PSI on the reference's bins and KS (Holm-corrected) per feature, and the predicted-class mix, between the
    champion's training inputs and the last N stored days."""
    from trendcast.pipelines.loop import store_drift
    from trendcast.tracking import load_champion

    settings = load_settings()
    report = store_drift(settings, load_champion(settings), days or settings.drift_days)
    if as_json:
        _dump(report)
        return
    table = Table(
        "feature",
        "PSI",
        "KS p (Holm)",
        "level",
        title=f"drift, {report['window']['first']}..{report['window']['last']}",
    )
    for f in sorted(report["features"], key=lambda f: -(f["psi"] or 0.0)):
        colour = {"alert": "red", "warn": "yellow"}.get(f["level"], "")
        table.add_row(
            f["name"], _num(f["psi"]), _num(f["ks_p"]), f"[{colour}]{f['level']}[/]" if colour else f["level"]
        )
    console.print(table)
    mix = report["class_mix"]
    if mix:
        console.print(
            f"predicted-class mix PSI {_num(mix['psi'])} ({mix['level']}): reference {mix['reference']}, now {mix['current']}"
        )
    console.print(f"drifted: {', '.join(report['drifted']) or 'none'}")


@app.command("schedule")
@friendly
def schedule_cmd(
    cron: Annotated[str, typer.Option(help="when to retrain, crontab syntax in UTC")] = "0 2 * * SUN",
    config: ConfigOpt = None,
    source: Annotated[str | None, typer.Option(help="ingest from this source before each retrain")] = None,
    path: Annotated[str | None, typer.Option(help="CSV/Parquet file or folder (csv source)")] = None,
    retrain_on_drift: Annotated[
        bool, typer.Option("--retrain-on-drift", help="also retrain at once when drift crosses the alert threshold")
    ] = False,
    drift_every: Annotated[float, typer.Option(min=1.0, help="seconds between drift checks")] = 3600.0,
    metrics_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, envvar="TRENDCAST_SCHEDULER_METRICS_PORT", help="serve Prometheus metrics here; 0: off"
        ),
    ] = 9102,
    metrics_addr: Annotated[
        str, typer.Option(envvar="TRENDCAST_SCHEDULER_METRICS_ADDR", help="address the metrics endpoint listens on")
    ] = "0.0.0.0",
) -> None:
    """Run `retrain` on a cron schedule (APScheduler), under a lock so two schedulers never retrain at once."""
    from trendcast.pipelines.loop import drift_alert, retrain_job, store_drift
    from trendcast.pipelines.schedule import run_schedule
    from trendcast.tracking import load_champion

    _json_log_lines()
    settings = load_settings()
    experiment = _experiment(config)

    def job() -> Any:
        return retrain_job(settings, experiment, source=source, path=path, progress=False)

    def drift_check() -> bool:
        return drift_alert(store_drift(settings, load_champion(settings), settings.drift_days))

    console.print(f"retraining on [bold]{cron}[/] (UTC){'; and on drift' if retrain_on_drift else ''}; Ctrl+C stops")
    run_schedule(
        settings,
        cron,
        job,
        drift_check=drift_check if retrain_on_drift else None,
        drift_interval_s=drift_every,
        metrics_port=metrics_port or None,
        metrics_addr=metrics_addr,
    )


def _register_stage_commands() -> None:
    """Commands whose code lives with its stage (backtest, report, explain, serve)."""
    from trendcast.backtest.commands import backtest, report
    from trendcast.explain.commands import explain
    from trendcast.pipelines.study_command import study
    from trendcast.serving.commands import serve

    app.command("backtest")(friendly(backtest))
    app.command("report")(friendly(report))
    app.command("explain")(friendly(explain))
    app.command("serve")(friendly(serve))
    app.command("study")(friendly(study))


_register_stage_commands()


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
