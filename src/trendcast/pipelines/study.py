"""The cross-sectional study behind `trendcast study`: does the Bi-LSTM rank stocks better than LightGBM and the
simple baselines, at scale, out of sample? One command, whichever way the answer falls (docs/study.md).

    store -> features -> labels (configs: cross_sectional, "beats the day's median") -> purged walk-forward of every
    model on the same folds (pipelines/train.evaluate) -> per model: pooled and per-fold accuracy and AUC with day-block
    bootstrap CIs, IC / Rank IC with CIs and ICIR, the top-k / bottom-k portfolio on the out-of-sample scores
    (backtest/portfolio.py, score = P(Up) - P(Down), next-open execution, costs per side) before and after costs, per
    year -> the paired bootstrap of the Bi-LSTM against LightGBM -> JSON report, HTML page, MLflow run.

A model whose scores do not decide the top-k and bottom-k legs on most days (a constant score such as the majority
baseline, or a two-valued one such as momentum, whose legs would be picked by ticker order at the tie) cannot rank:
its portfolio is reported as "cannot rank" with the reason instead of a meaningless equity curve.

Top-level keys of the JSON report (REPORT_FIELDS holds the same descriptions; docs/study.md lists them too):
    version, kind, name, run_id, config, data, folds, models, comparison, vs_best_baseline, portfolio, timing, machine
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from trendcast.backtest.portfolio import PortfolioResult, long_short_portfolio
from trendcast.config import ExperimentConfig, Settings
from trendcast.data.store import BarStore
from trendcast.errors import ConfigError, DataError
from trendcast.evaluation.executor import FoldExecutor, LocalExecutor
from trendcast.evaluation.metrics import (
    PROBA_COLUMNS,
    MetricName,
    direction_score,
    information_coefficient_intervals,
    paired_bootstrap,
)
from trendcast.evaluation.walk_forward import WalkForwardResult
from trendcast.features.windows import WindowSet
from trendcast.pipelines.train import evaluate, load_universe, sanitise, write_report

STUDY_REPORT_VERSION = 1
SP500_CSV = "../shared/data/sp500_5yr_kaggle/all_stocks_5yr.csv.gz"  # the study's universe (docs/study.md)
MODEL, REFERENCE = "bilstm", "lightgbm"  # the paired comparison: is the Bi-LSTM better than LightGBM?
PAIRED_METRICS: tuple[MetricName, ...] = ("auc_macro_ovr", "accuracy")  # the first one carries the headline verdict
MIN_RANKING_SHARE = 0.5  # a model ranks when its scores decide both legs on at least this share of days
REPORT_FIELDS: dict[str, str] = {
    "version": "report format version (STUDY_REPORT_VERSION)",
    "kind": "always 'study'",
    "name": "the experiment's name",
    "run_id": "the MLflow run holding the metrics, this report, the HTML page and the predictions",
    "config": "the whole experiment config (labels, window, folds, model sizes, study: k, cost_bps, models, n_boot)",
    "data": "tickers, n_tickers, n_samples, first/last signal date, window, horizon, label_mode, features",
    "folds": "each purged walk-forward fold: train/test dates and sample counts",
    "models": "per model: pooled and per-fold accuracy/AUC with CIs (summarise_model), ic with CIs, portfolio",
    "comparison": "paired day-block bootstrap of the Bi-LSTM against LightGBM (AUC, accuracy) and the verdict",
    "vs_best_baseline": "the Bi-LSTM against the best baseline on accuracy (as `trendcast train` reports it)",
    "portfolio": "the portfolio's definition: k, cost_bps per side, score, execution, where it is defined",
    "timing": "wall_seconds of the whole study and of each stage",
    "machine": "host, platform, CPUs, load average, Python and torch versions, torch threads",
}


@dataclass
class StudyOutcome:
    report: dict[str, Any]
    walk_forward: WalkForwardResult
    portfolios: dict[str, PortfolioResult]  # ranking models only
    run_id: str
    report_path: Path
    html_path: Path


@dataclass
class _Clock:
    """Prints a line per stage with the elapsed time and keeps each stage's duration."""

    console: Console
    enabled: bool
    start: float = field(default_factory=time.perf_counter)
    stages: dict[str, float] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def say(self, message: str) -> None:
        if self.enabled:
            self.console.print(f"[dim]{self.elapsed():8.1f}s[/] {message}", soft_wrap=True)

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        self.say(message)
        began = time.perf_counter()
        yield
        self.stages[name] = time.perf_counter() - began


def run_study(
    settings: Settings,
    config: ExperimentConfig,
    *,
    report_path: Path | None = None,
    html_path: Path | None = None,
    progress: bool = True,
    executor: FoldExecutor | None = None,
    console: Console | None = None,
) -> StudyOutcome:
    """The whole study in one tracked MLflow run; writes the JSON report and the HTML page (to a temporary folder
    when no path is given) and returns both with the walk-forward result and the portfolios.

    Examples:
        outcome = run_study(load_settings(), ExperimentConfig.from_yaml("configs/experiments/sp500_study.yaml"),
                            report_path=Path("study.json"), html_path=Path("study.html"))
        print(outcome.report["comparison"]["verdict"])
    """
    from trendcast import tracking

    clock = _Clock(console or Console(), progress)
    study = config.study
    with clock.stage("load", "loading the universe (bars -> features -> labels -> windows)"):
        _check_store(settings)
        ws = load_universe(settings, config, progress=progress)
    _check_universe(ws, study.k)
    clock.say(f"{len(np.unique(ws.tickers))} tickers, {len(ws):,} samples, {ws.n_features} features")
    out_dir = Path(tempfile.mkdtemp(prefix="trendcast-study-"))
    report_path, html_path = report_path or out_dir / "study.json", html_path or out_dir / "study.html"
    clock.say(f"opening the MLflow run ({settings.resolved_mlflow_uri.split(':', 1)[0]})")
    with tracking.start_run(settings, f"study-{config.name}", config, {"trendcast.kind": "study"}) as run_id:
        with clock.stage("walk_forward", f"walk-forward: {', '.join(study.models)} on the same purged folds"):
            primary = MODEL if MODEL in study.models else study.models[0]
            result, base = evaluate(
                settings,
                ws,
                list(study.models),
                config,
                primary=primary,
                progress=progress,
                n_boot=study.n_boot,
                executor=executor or LocalExecutor(),
            )
        with clock.stage("metrics", "information coefficients with day-block bootstrap CIs"):
            ic = {name: model_ic(frame, config) for name, frame in result.predictions.items()}
        with clock.stage("portfolio", f"top-{study.k} / bottom-{study.k} portfolios at the next open"):
            prices = load_opens(settings, result)
            books = {name: model_portfolio(frame, prices, config) for name, frame in result.predictions.items()}
        comparison = None
        if MODEL in result.predictions and REFERENCE in result.predictions:
            with clock.stage("comparison", f"paired bootstrap: {MODEL} against {REFERENCE}"):
                comparison = compare_models(result, config)
        else:
            clock.say(f"no paired comparison: the study needs both {MODEL} and {REFERENCE} in study.models")
        report = build_study_report(ws, config, base, ic, books, comparison, run_id)
        portfolios = {name: book for name, (_, book) in books.items() if book is not None}
        report["timing"] = {"wall_seconds": clock.elapsed(), "stages": dict(clock.stages)}
        with clock.stage("write", "writing the report, the HTML page and the MLflow run"):
            _write_outputs(report, portfolios, report_path, html_path)
            _log_run(report, result, portfolios, report_path, html_path)
        report["timing"] = {"wall_seconds": clock.elapsed(), "stages": dict(clock.stages)}
        write_report(report, report_path)  # the final timing; the logged copy lacks only the write stage
        tracking.log_metrics({"wall_seconds": clock.elapsed()}, prefix="timing.")
    clock.say(f"done: {report_path}, {html_path} (MLflow run {run_id})")
    return StudyOutcome(report, result, portfolios, run_id, report_path, html_path)


def _check_store(settings: Settings) -> None:
    bars = BarStore(settings.resolved_database_url)
    try:
        empty = bars.count() == 0
    finally:
        bars.close()
    if empty:
        raise DataError(
            f"the bar store ({settings.data_dir}) is empty: ingest the universe first, e.g. `trendcast data ingest "
            f"--source csv --path {SP500_CSV}` (TRENDCAST_DATA_DIR names the store)"
        )


def _check_universe(ws: WindowSet, k: int) -> None:
    n = len(np.unique(ws.tickers))
    if n < 2 * k:
        raise ConfigError(
            f"the study's portfolio needs at least 2k = {2 * k} tickers with samples, got {n}: ingest more tickers "
            f"or lower study.k in the experiment YAML (e.g. k: {max(1, n // 4)})"
        )


# -- per model ------------------------------------------------------------------------------------------------------
def scores_of(frame: pd.DataFrame) -> pd.DataFrame:
    """(ticker, date, score) with score = P(Up) - P(Down), the score the IC and the portfolio rank."""
    score = direction_score(frame[list(PROBA_COLUMNS)].to_numpy(dtype=np.float64))
    return pd.DataFrame({"ticker": frame["ticker"].to_numpy(), "date": frame["date"].to_numpy(), "score": score})


def model_ic(frame: pd.DataFrame, config: ExperimentConfig) -> dict[str, Any]:
    """Pooled IC / Rank IC (with block-bootstrap CIs of their means), ICIR and Rank ICIR of one model."""
    return information_coefficient_intervals(
        frame["date"].to_numpy(),
        direction_score(frame[list(PROBA_COLUMNS)].to_numpy(dtype=np.float64)),
        frame["forward_return"].to_numpy(dtype=np.float64),
        n_boot=config.study.n_boot,
        seed=config.seed,
    )


def load_opens(settings: Settings, result: WalkForwardResult) -> pd.DataFrame:
    """Stored (ticker, date, open) of every predicted ticker from the first out-of-sample signal date on."""
    frames = [f for f in result.predictions.values() if len(f)]
    if not frames:
        return pd.DataFrame(columns=["ticker", "date", "open"])
    tickers = sorted(set().union(*(set(map(str, f["ticker"].unique())) for f in frames)))
    start = min(pd.Timestamp(f["date"].min()) for f in frames).strftime("%Y-%m-%d")
    bars = BarStore(settings.resolved_database_url)
    try:
        return bars.load(tickers, start=start)[["ticker", "date", "open"]]
    finally:
        bars.close()


def ranking_share(scores: pd.DataFrame, k: int) -> float:
    """Share of scored days on which the scores themselves decide both legs: at least 2k stocks have a score, the
    k-th highest score is above the (k+1)-th, and the k-th lowest below the (k+1)-th (no tie at either cut, which
    the portfolio would break by ticker order). 0.0 when no day has 2k scored stocks."""
    grid = scores.pivot_table(index="date", columns="ticker", values="score", aggfunc="last").to_numpy()
    decided, counted = 0, 0
    for row in grid:
        values = np.sort(row[np.isfinite(row)])  # ascending
        if len(values) < 2 * k:
            continue
        counted += 1
        top = len(values) == k or values[-k] > values[-k - 1]
        bottom = len(values) == k or values[k - 1] < values[k]
        decided += int(top and bottom)
    return decided / counted if counted else 0.0


def model_portfolio(
    frame: pd.DataFrame, prices: pd.DataFrame, config: ExperimentConfig
) -> tuple[dict[str, Any], PortfolioResult | None]:
    """(report entry, portfolio) of one model: the top-k / bottom-k book on its out-of-sample scores, or a
    "cannot rank" entry (and None) when its scores do not decide the legs on most days."""
    study = config.study
    scores = scores_of(frame)
    share = ranking_share(scores, study.k)
    entry: dict[str, Any] = {"can_rank": share >= MIN_RANKING_SHARE, "ranking_share": share}
    if share < MIN_RANKING_SHARE:
        entry["note"] = (
            f"cannot rank: its scores decide the top-{study.k} and bottom-{study.k} legs on only {share:.0%} of days "
            "(constant or tied scores); a portfolio would pick stocks by ticker order, so none is reported"
        )
        return entry, None
    book = long_short_portfolio(scores, prices, k=study.k, cost_bps=study.cost_bps)
    entry["summary"] = book.summary()
    entry["by_year"] = {str(year): values for year, values in book.by_year().items()}
    entry["note"] = None
    return entry, book


# -- the paired comparison ------------------------------------------------------------------------------------------
def _aligned(result: WalkForwardResult) -> pd.DataFrame:
    """Both models' predictions on the same (ticker, date) samples."""
    columns = ["ticker", "date", "label", *PROBA_COLUMNS]
    a, b = result.predictions[MODEL][columns], result.predictions[REFERENCE][columns]
    return a.merge(b, on=["ticker", "date", "label"], suffixes=("_a", "_b")).sort_values(["date", "ticker"])


def compare_models(result: WalkForwardResult, config: ExperimentConfig) -> dict[str, Any] | None:
    """Paired day-block bootstrap of the Bi-LSTM against LightGBM on each PAIRED_METRICS, with one-sided p-values
    for "the Bi-LSTM is better", and the verdict sentence. None unless both models are in the study."""
    if MODEL not in result.predictions or REFERENCE not in result.predictions:
        return None
    both = _aligned(result)
    y, dates = both["label"].to_numpy(), both["date"].to_numpy()
    proba = {s: both[[f"{c}_{s}" for c in PROBA_COLUMNS]].to_numpy(dtype=np.float64) for s in ("a", "b")}
    tests: dict[str, dict[str, Any]] = {
        metric: paired_bootstrap(y, proba["a"], proba["b"], dates, metric, config.study.n_boot, seed=config.seed)
        for metric in PAIRED_METRICS
    }
    out: dict[str, Any] = {"model": MODEL, "reference": REFERENCE, "n_samples": len(both), **tests}
    out["verdict"] = comparison_verdict(PAIRED_METRICS[0], tests[PAIRED_METRICS[0]])
    out["verdicts"] = {metric: comparison_verdict(metric, test) for metric, test in tests.items()}
    return out


def comparison_verdict(metric: str, test: dict[str, Any]) -> str:
    """One honest sentence: better only when the one-sided p-value is below 0.05; "worse" when it scores lower."""
    diff, p = float(test["diff"]), float(test["p_value"])
    name = "AUC" if metric == "auc_macro_ovr" else metric
    if p < 0.05 and diff > 0:
        return f"the Bi-LSTM is better than LightGBM on {name} by {diff:.4f} (one-sided p = {p:.3f})"
    sentence = f"the Bi-LSTM is not better than LightGBM (p = {p:.3f})"
    if diff < 0:
        return (
            f"{sentence}: it is worse on {name} by {abs(diff):.4f} ({test['metric_a']:.4f} vs {test['metric_b']:.4f})"
        )
    return f"{sentence}: {name} {test['metric_a']:.4f} vs {test['metric_b']:.4f}"


# -- the report -----------------------------------------------------------------------------------------------------
def build_study_report(
    ws: WindowSet,
    config: ExperimentConfig,
    base: dict[str, Any],
    ic: dict[str, dict[str, Any]],
    books: dict[str, tuple[dict[str, Any], PortfolioResult | None]],
    comparison: dict[str, Any] | None,
    run_id: str,
) -> dict[str, Any]:
    """The JSON report (REPORT_FIELDS), NaN turned into None."""
    models = {
        name: {**summary, "ic": ic[name], "portfolio": books[name][0]} for name, summary in base["models"].items()
    }
    report: dict[str, Any] = {
        "version": STUDY_REPORT_VERSION,
        "kind": "study",
        "name": config.name,
        "run_id": run_id,
        "config": base["config"],
        "data": {
            **base["data"],
            "n_tickers": len(base["data"]["tickers"]),
            "label_mode": config.labels.mode,
        },
        "folds": base["folds"],
        "models": models,
        "comparison": comparison,
        "vs_best_baseline": base["comparison"],
        "portfolio": {
            "k": config.study.k,
            "cost_bps": config.study.cost_bps,
            "score": "P(Up) - P(Down)",
            "execution": "weights from the close of t, traded at the open of t+1, held to the open of t+2",
            "definition": "trendcast.backtest.portfolio (module docstring)",
        },
        "timing": {},
        "machine": machine(),
    }
    return dict(sanitise(report))


def machine() -> dict[str, Any]:
    """Where the study ran (the wall time depends on it)."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": [float(v) for v in load],
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torch_threads": torch.get_num_threads(),
    }


def _write_outputs(
    report: dict[str, Any], portfolios: dict[str, PortfolioResult], report_path: Path, html_path: Path
) -> None:
    from trendcast.reporting.study import write_study_html

    write_report(report, report_path)
    write_study_html(report, portfolios, html_path)


def _log_run(
    report: dict[str, Any],
    result: WalkForwardResult,
    portfolios: dict[str, PortfolioResult],
    report_path: Path,
    html_path: Path,
) -> None:
    """Metrics of every model and the comparison, both files, the predictions and the portfolios' daily returns."""
    from trendcast import tracking

    for row in summary_rows(report):
        tracking.log_metrics({k: v for k, v in row.items() if k != "model"}, prefix=f"{row['model']}.")
    if report["comparison"]:
        tracking.log_metrics({str(m): report["comparison"][m] for m in PAIRED_METRICS}, prefix="comparison.")
    tracking.set_run_tags({"trendcast.study.verdict": str((report["comparison"] or {}).get("verdict", ""))[:500]})
    tracking.log_artifact(report_path)
    tracking.log_artifact(html_path)
    with tempfile.TemporaryDirectory() as tmp:
        for name, frame in result.predictions.items():
            path = Path(tmp) / f"predictions_{name}.parquet"
            frame.to_parquet(path, index=False)
            tracking.log_artifact(path)
        for name, book in portfolios.items():
            path = Path(tmp) / f"portfolio_{name}.parquet"
            book.daily.reset_index().to_parquet(path, index=False)
            tracking.log_artifact(path)


# -- the final table ------------------------------------------------------------------------------------------------
def summary_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per model: the numbers of the final table (and the MLflow metrics)."""
    rows = []
    for name, entry in report["models"].items():
        pooled, ic, book = entry["pooled"], entry["ic"], entry["portfolio"]
        summary = book.get("summary") or {}
        rows.append(
            {
                "model": name,
                "accuracy": pooled["metrics"]["accuracy"],
                "accuracy_ci_low": pooled["accuracy_ci"][0],
                "accuracy_ci_high": pooled["accuracy_ci"][1],
                "auc": pooled["metrics"]["auc_macro_ovr"],
                "auc_ci_low": pooled["auc_ci"][0],
                "auc_ci_high": pooled["auc_ci"][1],
                "ic_mean": ic["ic_mean"],
                "ic_ci_low": ic["ic_mean_ci"][0],
                "ic_ci_high": ic["ic_mean_ci"][1],
                "rank_ic_mean": ic["rank_ic_mean"],
                "rank_ic_ci_low": ic["rank_ic_mean_ci"][0],
                "rank_ic_ci_high": ic["rank_ic_mean_ci"][1],
                "icir": ic["icir"],
                "rank_icir": ic["rank_icir"],
                "can_rank": float(book["can_rank"]),
                "gross_sharpe": summary.get("gross_sharpe"),
                "net_sharpe": summary.get("net_sharpe"),
                "gross_annual_return": summary.get("gross_annual_return"),
                "net_annual_return": summary.get("net_annual_return"),
                "net_max_drawdown": summary.get("net_max_drawdown"),
                "mean_turnover": summary.get("mean_turnover"),
            }
        )
    return rows


def _f(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return format(value, fmt)


def study_table(report: dict[str, Any]) -> Table:
    """The final table: model, accuracy [CI], AUC [CI], IC [CI], Rank IC, ICIR, Sharpe gross/net, annual return
    net, max drawdown net, turnover."""
    data, book = report["data"], report["portfolio"]
    table = Table(
        "model",
        "accuracy [95% CI]",
        "AUC [95% CI]",
        "IC [95% CI]",
        "Rank IC",
        "ICIR",
        "Sharpe gross / net",
        "ann. return net",
        "max DD net",
        "turnover",
        title=f"Study: {data['n_tickers']} tickers, {data['first_date']}..{data['last_date']}, "
        f"{len(report['folds'])} purged folds, top/bottom {book['k']} at {book['cost_bps']:g} bps per side",
    )
    for row in summary_rows(report):
        ranks = bool(row["can_rank"])
        table.add_row(
            row["model"],
            f"{_f(row['accuracy'], '.2%')} [{_f(row['accuracy_ci_low'], '.2%')}, {_f(row['accuracy_ci_high'], '.2%')}]",
            f"{_f(row['auc'], '.3f')} [{_f(row['auc_ci_low'], '.3f')}, {_f(row['auc_ci_high'], '.3f')}]",
            f"{_f(row['ic_mean'], '.4f')} [{_f(row['ic_ci_low'], '.4f')}, {_f(row['ic_ci_high'], '.4f')}]",
            _f(row["rank_ic_mean"], ".4f"),
            _f(row["icir"], ".3f"),
            f"{_f(row['gross_sharpe'], '.2f')} / {_f(row['net_sharpe'], '.2f')}" if ranks else "cannot rank",
            _f(row["net_annual_return"], ".2%") if ranks else "",
            _f(row["net_max_drawdown"], ".2%") if ranks else "",
            _f(row["mean_turnover"], ".2f") if ranks else "",
        )
    return table


def print_study(report: dict[str, Any], console: Console) -> None:
    """The final table, then the verdict of the paired comparison."""
    console.print(study_table(report))
    if report["comparison"]:
        for metric, sentence in report["comparison"]["verdicts"].items():
            console.print(f"{metric}: {sentence}", soft_wrap=True)
    timing = report.get("timing") or {}
    if timing.get("wall_seconds") is not None:
        console.print(f"wall time {timing['wall_seconds'] / 60:.1f} min on {report['machine']['cpus']} CPUs")
