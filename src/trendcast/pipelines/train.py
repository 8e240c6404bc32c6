"""Train: store -> features -> purged walk-forward (every candidate, the majority baseline and the current
champion's configuration, on the same folds) -> metrics with CIs -> backtest -> the promotion gates -> final fit of
the challenger -> MLflow run (params, metrics, report, plots, predictions) -> registered version, `champion` only if
the gates say so (trendcast.pipelines.retrain).

The primary model is compared with the *best* baseline on the same out-of-sample days (paired block bootstrap);
the report says plainly when the model is worse.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trendcast.config import ExperimentConfig, Settings
from trendcast.data.store import BarStore
from trendcast.errors import DataError, ModelNotReadyError
from trendcast.evaluation.executor import FoldExecutor, LocalExecutor
from trendcast.evaluation.metrics import compare_to_best_baseline, summarise_predictions
from trendcast.evaluation.report import REPORT_VERSION
from trendcast.evaluation.walk_forward import ModelFactory, WalkForwardResult, run_walk_forward
from trendcast.features.store import FeatureStore
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.bundle import ModelBundle, write_bundle
from trendcast.models.registry import create_model
from trendcast.pipelines.retrain import CHAMPION_KEY, NO_SKILL, Decision, decide, log_decision, record_promotion

BASELINES: tuple[str, ...] = ("majority", "momentum", "logreg", "lightgbm")


@dataclass
class Registered:
    name: str
    version: str
    alias: str  # champion (promoted) or challenger (kept beside the champion)


@dataclass
class TrainOutcome:
    report: dict[str, Any]
    walk_forward: WalkForwardResult
    final_model: DirectionModel | None
    run_id: str | None
    registered: Registered | None
    decision: Decision


def load_universe(settings: Settings, config: ExperimentConfig, *, progress: bool = True) -> WindowSet:
    """Bars from the store -> the feature store (features computed once per ticker, recomputed only when its bars
    or the feature catalog change) -> labels and windows for the configured tickers and dates, streamed ticker by
    ticker into one row matrix. Features before `config.start` are warmed up on the earlier bars (they are causal)."""
    bars = BarStore(settings.resolved_database_url)
    tickers = config.tickers if config.tickers is not None else bars.ticker_names()
    if not tickers:
        raise DataError("the store holds no bars for this selection; run `trendcast data ingest` first")
    store = FeatureStore(settings.data_dir / "features")
    store.sync(bars, tickers, progress=progress)
    ws = store.load_window_set(
        tickers,
        config.start,
        config.end,
        window=config.window,
        labels=config.labels,
        features=config.features,
        progress=progress,
    )
    if len(ws) == 0:
        raise DataError(
            f"no sample has {config.window} days of finite features and a known label; "
            "use a shorter --window or more history"
        )
    return ws


def model_factory(settings: Settings, progress: bool, champion: ModelBundle | None = None) -> ModelFactory:
    """Models by name; `champion` is the current champion's kind with its own hyperparameters and seed, on the
    experiment's data settings (window, labels, features), so that it is scored on the same samples.

    The champion is resolved to (kind, config) here: the factory then holds plain data and pickles, so Ray can ship
    it to workers (a loaded ModelBundle holds an ONNX session, which does not pickle). It captures only the fields
    it needs from `settings`, never the settings themselves: they hold API keys and store URLs, which must not
    travel to Ray workers."""
    own = (champion.model.name, champion.model.config) if champion is not None else None
    threads, workers, address = settings.torch_threads, settings.train_workers, settings.ray_address

    def factory(name: str, config: ExperimentConfig) -> DirectionModel:
        if name == CHAMPION_KEY and own is not None:
            name, config = own[0], with_champion_params(own[1], config)
        if name == "bilstm":
            return create_model(name, config, threads=threads, progress=progress, workers=workers, ray_address=address)
        return create_model(name, config)

    return factory


def champion_config(champion: ModelBundle, config: ExperimentConfig) -> ExperimentConfig:
    return with_champion_params(champion.model.config, config)


def with_champion_params(own: ExperimentConfig, config: ExperimentConfig) -> ExperimentConfig:
    """`config` (the experiment's data settings) with the champion's hyperparameters and seed."""
    return config.model_copy(update={"bilstm": own.bilstm, "lightgbm": own.lightgbm, "seed": own.seed})


def evaluate(
    settings: Settings,
    ws: WindowSet,
    models: list[str],
    config: ExperimentConfig,
    *,
    primary: str | None = None,
    progress: bool = True,
    n_boot: int = 1000,
    factory: ModelFactory | None = None,
    executor: FoldExecutor | None = None,
) -> tuple[WalkForwardResult, dict[str, Any]]:
    """Walk-forward every model on the same folds and build the JSON report. `executor` runs the folds (default:
    this process; trendcast.evaluation.executor.executor_for picks Ray when asked)."""
    executor = executor or LocalExecutor()
    factory = factory or model_factory(settings, progress and not executor.remote)  # no bars on Ray workers
    result = run_walk_forward(ws, models, config, progress=progress, factory=factory, executor=executor)
    return result, build_report(ws, result, config, primary=primary or models[0], n_boot=n_boot)


def build_report(
    ws: WindowSet, result: WalkForwardResult, config: ExperimentConfig, *, primary: str, n_boot: int = 1000
) -> dict[str, Any]:
    models = {
        name: summarise_predictions(frame, n_boot=n_boot, seed=config.seed)
        for name, frame in result.predictions.items()
    }
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "report_version": REPORT_VERSION,
        "primary_model": primary,
        "config": config.model_dump(mode="json"),
        "data": {
            "tickers": sorted(map(str, np.unique(ws.tickers))),
            "n_samples": len(ws),
            "first_date": str(pd.Timestamp(ws.dates.min()).date()),
            "last_date": str(pd.Timestamp(ws.dates.max()).date()),
            "n_features": ws.n_features,
            "feature_names": list(ws.feature_names),
            "window": ws.window,
            "horizon": ws.horizon,
        },
        "folds": [record.as_dict() for record in result.folds],
        "models": models,
        "comparison": _comparison(result, primary, n_boot, config.seed),
    }
    return report


def _comparison(result: WalkForwardResult, primary: str, n_boot: int, seed: int) -> dict[str, Any] | None:
    baselines = {n: f for n, f in result.predictions.items() if n != primary and n in BASELINES}
    if primary not in result.predictions or not baselines:
        return None
    frame = result.predictions[primary]
    proba = {n: f[["p_down", "p_neutral", "p_up"]].to_numpy() for n, f in baselines.items()}
    out: dict[str, Any] = {"model": primary, "metric": "accuracy"}
    out.update(
        compare_to_best_baseline(
            frame["label"].to_numpy(),
            frame[["p_down", "p_neutral", "p_up"]].to_numpy(),
            proba,
            frame["date"].to_numpy(),
            "accuracy",
            n_boot=n_boot,
            seed=seed,
        )
    )
    out["verdict"] = verdict(out)
    return out


def verdict(comparison: dict[str, Any]) -> str:
    """One honest sentence on the model against its best baseline."""
    diff, p = float(comparison["diff"]), float(comparison["p_value"])
    model, base = comparison["model"], comparison["baseline"]
    if diff <= 0:
        return (
            f"{model} is WORSE than the best baseline ({base}) by {abs(diff):.2%} accuracy out of sample; "
            "it is not worth serving on this evidence."
        )
    if p < 0.05:
        return f"{model} beats the best baseline ({base}) by {diff:.2%} accuracy (one-sided bootstrap p={p:.3f})."
    return (
        f"{model} is ahead of the best baseline ({base}) by {diff:.2%} accuracy, but not significantly "
        f"(one-sided bootstrap p={p:.3f}): treat it as no better."
    )


def _ray_for_data_parallel(settings: Settings) -> contextlib.AbstractContextManager[object]:
    """One Ray session for every data-parallel Bi-LSTM fit of a run (`--workers N`), so that the folds and the final
    fit share it instead of each starting and stopping its own."""
    if settings.train_workers < 2:
        return contextlib.nullcontext()
    from trendcast.ray_runtime import ray_session

    return ray_session(settings.ray_address)


def fit_final(
    settings: Settings, ws: WindowSet, name: str, config: ExperimentConfig, *, progress: bool = True
) -> DirectionModel:
    """The model to serve: fit on every labelled sample up to the last date."""
    return model_factory(settings, progress)(name, config).fit(ws)


def write_report(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sanitise(report), indent=2, default=_json_default, allow_nan=False))
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def sanitise(value: Any) -> Any:
    """NaN/inf -> None recursively, so the report is strict JSON."""
    if isinstance(value, dict):
        return {k: sanitise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitise(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    return value


def tmp_model_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="trendcast-final-"))


def current_champion(settings: Settings) -> ModelBundle | None:
    """The registry champion, or None when there is none yet."""
    from trendcast import tracking

    try:
        return tracking.load_champion(settings, tracking.CHAMPION)
    except ModelNotReadyError:
        return None


def model_names(primary: str, candidates: list[str], champion: ModelBundle | None) -> list[str]:
    """Everything the walk-forward fits: the primary, the candidates, the no-skill reference and the champion."""
    names = list(dict.fromkeys([primary, *candidates, NO_SKILL]))
    return [*names, CHAMPION_KEY] if champion is not None else names


def run_training(
    settings: Settings,
    config: ExperimentConfig,
    model: str = "bilstm",
    *,
    baselines: bool = True,
    register: bool = True,
    report_path: Path | None = None,
    progress: bool = True,
    n_boot: int = 1000,
    executor: FoldExecutor | None = None,
) -> TrainOutcome:
    """The tracked training job behind `trendcast train`, `trendcast retrain` and `make run`: evaluate, decide,
    and (unless `register` is False, a dry run) register the challenger and move the aliases as decided.
    `executor` runs the walk-forward folds (default: this process; Ray with `RayExecutor`)."""
    from trendcast import tracking

    ws = load_universe(settings, config, progress=progress)
    champion = current_champion(settings)
    candidates: list[str] = [str(c) for c in config.candidates] if baselines else [model]
    names = model_names(model, candidates, champion)
    executor = executor or LocalExecutor()
    factory = model_factory(settings, progress and not executor.remote, champion)  # no bars on Ray workers
    with (
        _ray_for_data_parallel(settings),
        tracking.start_run(settings, f"train-{model}", config, {"model": model}) as run_id,
    ):
        result, report = evaluate(
            settings,
            ws,
            names,
            config,
            primary=model,
            progress=progress,
            n_boot=n_boot,
            factory=factory,
            executor=executor,
        )
        report = sanitise(report)
        report["run_id"] = run_id
        _log_evaluation(report, result, model)
        report.update(sanitise(log_extras(settings, config, result, ws, model)))
        sharpe = {str(r["model"]): r.get("sharpe") for r in report["backtest"]["comparison"]}
        decision = decide(
            result.predictions,
            {k: float(v) if v is not None else float("nan") for k, v in sharpe.items()},
            candidates,
            config.gates,
            champion_version=champion.version if champion else None,
            seed=config.seed,
        )
        final, registered = None, None
        report["decision"] = sanitise(decision.to_json())  # saved in the bundle; completed below with the version
        if decision.challenger is not None and register:
            final, registered = _register_challenger(settings, config, ws, decision, result, report)
        tracking.set_run_tags(decision.tags())
        report["decision"] = sanitise(decision.to_json())
        if registered is not None:
            report["registered"] = {"name": registered.name, "version": registered.version, "alias": registered.alias}
        tracking.log_dict(report, "report.json")
    log_decision(decision)
    if report_path is not None:
        write_report(report, report_path)
    return TrainOutcome(report, result, final, run_id, registered, decision)


def _register_challenger(
    settings: Settings,
    config: ExperimentConfig,
    ws: WindowSet,
    decision: Decision,
    result: WalkForwardResult,
    report: dict[str, Any],
) -> tuple[DirectionModel, Registered]:
    """Fit the challenger on every labelled sample, save its bundle (with the walk-forward out-of-sample predictions
    of its own kind and the report), register it, then record the decision (the aliases move last: a failure before
    leaves the champion where it was).

    The int8 copy of an ONNX-served model is checked against float32 on the last walk-forward test fold's windows.
    The final model was fitted on those days too; the check measures quantisation's numerical fidelity on recent,
    realistic inputs, not generalisation (trendcast.models.quantize)."""
    from trendcast import tracking

    assert decision.challenger is not None
    final = fit_final(settings, ws, decision.challenger.name, config)
    last_test = ws.take(result.folds[-1].fold.test_mask(ws.dates)) if result.folds else None
    folder = write_bundle(
        final,
        ws,
        tmp_model_dir() / "model",
        background_size=settings.explain_background,
        seed=config.seed,
        predictions=result.predictions.get(final.name),
        report=sanitise(report),
        quantize_check=last_test,
    )
    version = tracking.log_model(settings, final, folder, tags=version_tags(final, decision))
    record_promotion(settings, decision, version.version)
    alias = tracking.CHAMPION if decision.promoted else tracking.CHALLENGER
    return final, Registered(version.name, version.version, alias)


def version_tags(model: DirectionModel, decision: Decision) -> dict[str, str]:
    """What `trendcast models` shows without downloading the model: kind, trained-through, the scores judged."""
    from trendcast.tracking import METRIC_TAG

    tags = {
        "trendcast.model": model.name,
        "trendcast.trained_through": str(model.trained_through.date()) if model.trained_through is not None else "",
    }
    if decision.challenger is not None:
        c = decision.challenger
        for key, value in (("auc", c.auc), ("accuracy", c.accuracy), ("sharpe", c.sharpe)):
            if math.isfinite(value):
                tags[METRIC_TAG + key] = repr(float(value))
    return tags


def _log_evaluation(report: dict[str, Any], result: WalkForwardResult, primary: str) -> None:
    from trendcast import tracking
    from trendcast.evaluation.plots import learning_curves

    for name, summary in report["models"].items():
        tracking.log_metrics(summary["pooled"], prefix=f"{name}.pooled.")
        for fold, fold_summary in summary["folds"].items():
            tracking.log_metrics(fold_summary["metrics"], prefix=f"{name}.fold{fold}.")
    if report["comparison"]:
        tracking.log_metrics(
            {k: v for k, v in report["comparison"].items() if k not in {"model", "baseline"}}, prefix="comparison."
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, frame in result.predictions.items():
            file = folder / ("predictions.parquet" if name == primary else f"predictions_{name}.parquet")
            frame.to_parquet(file, index=False)
            tracking.log_artifact(file)
        if any(result.histories.get(primary, [])):
            tracking.log_artifact(learning_curves(result.histories[primary], folder / "learning_curves.png"))
        for path in _confusion_pngs(report, folder):
            tracking.log_artifact(path)


def _confusion_pngs(report: dict[str, Any], folder: Path) -> list[Path]:
    from trendcast.evaluation.plots import confusion_matrices

    matrices = {name: s["pooled"]["metrics"]["confusion_matrix"] for name, s in report["models"].items()}
    return [confusion_matrices(matrices, folder / "confusion_matrices.png")]


def log_extras(
    settings: Settings, config: ExperimentConfig, result: WalkForwardResult, ws: WindowSet, primary: str
) -> dict[str, Any]:
    """Later stages that log into the same run (global importance, backtest); returns report additions."""
    extras: dict[str, Any] = {}
    extras["importance"] = _log_global_importance(result, ws, primary, config)
    from trendcast.pipelines.main_job import log_backtest

    extras["backtest"] = log_backtest(settings, config, result.predictions, primary)
    return extras


def _log_global_importance(
    result: WalkForwardResult, ws: WindowSet, primary: str, config: ExperimentConfig
) -> dict[str, Any] | None:
    """Mean |attribution| per feature and group over the last test fold, by the model fit on that fold's train."""
    from trendcast import tracking
    from trendcast.explain import background_from_training, global_importance, importance_metrics
    from trendcast.explain.plots import plot_importance

    model = result.last_fold_models.get(primary)
    if model is None or model.name == "majority":
        return None
    fold = result.folds[-1].fold
    test, train = ws.take(fold.test_mask(ws.dates)), ws.take(fold.train_mask(ws.dates))
    background = background_from_training(model, train, size=32, seed=config.seed)  # fold model, not served
    table = global_importance(model, test, max_samples=100, background=background, seed=config.seed)
    tracking.log_metrics(importance_metrics(table))
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "global_importance.csv"
        table.to_csv(csv, index=False)
        tracking.log_artifact(csv)
        tracking.log_artifact(plot_importance(table, Path(tmp) / "global_importance.png"))
    top = table.sort_values("rank").head(10)
    return {
        "fold": fold.index,
        "n_samples": int(min(100, len(test))),
        "top_features": [
            {"feature": str(f), "mean_abs": float(m), "share": float(s)}
            for f, m, s in zip(top["feature"], top["mean_abs"], top["share"], strict=True)
        ],
    }
