"""`trendcast tune`: a Ray Tune search (ASHA) over the Bi-LSTM's sizes, dropout, learning rate, window and label
threshold; every trial is an MLflow run nested under one parent run, and the best trial's configuration is written as
an experiment YAML that `trendcast train --config` accepts.

Honesty: tuning never sees a day the walk-forward later scores as test. The purged walk-forward folds of the
experiment (`evaluation.walk_forward.make_folds`, its folds and min_train_fraction) are computed on the full sample
built with the *smallest* window searched: a longer window only drops the earliest dates, which moves every test
fold later, so this first test fold starts no later than the one any trial's window gives. The trials then load
bars only up to `folds[0].train_end` (`ExperimentConfig.end`), which already lies a purge gap before that first test
day, so no feature, label, scaler or early-stopping decision of a trial touches a test day. Inside a trial the model
is fitted the ordinary way (`BiLSTMModel.fit`: scaler on the trial's training dates only, the loop's time-ordered
validation tail after a purge gap), and that validation tail is what the trial is scored on.

The score (reported every epoch, what ASHA and the final choice use) is the validation **balanced accuracy** of the
weights the fit would keep (those of the epoch with the lowest validation loss so far). The label threshold changes
the class balance: a wider neutral band makes "Neutral" the majority, so raw accuracy and raw log loss reward the
threshold rather than the model, and are not comparable across trials. Balanced accuracy (the mean of the per-class
recalls) is 1/3 for any constant or random guess whatever the balance, so every trial is judged against the same
chance level.

MLflow is written from the Tune driver only (a Tune callback, through `tracking.ChildRuns`): concurrent trials never
write to a SQLite store at the same time. Ray Tune keeps its own records under `<data_dir>/ray_results`.

Ray 2.60: function trainables report with `ray.tune.report` (under Ray Train V2, the default, `ray.train.report`
belongs to Ray Train workers only), and Tune changes each trial's working directory to its trial folder, so the
settings handed to the trials carry an absolute data directory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from trendcast.config import ExperimentConfig, Settings
from trendcast.errors import ConfigError, ModelError
from trendcast.evaluation.walk_forward import make_folds
from trendcast.pipelines.train import load_universe
from trendcast.ray_runtime import ray_session, require_ray

METRIC, MODE = "score", "max"
REPORTED = ("train_loss", "valid_loss", "valid_accuracy", "valid_balanced_accuracy", METRIC)


@dataclass(frozen=True)
class SearchSpace:
    """What `trendcast tune` searches: choices (tuples) and ranges ((low, high), sampled uniformly for dropout and
    log-uniformly for the learning rate)."""

    hidden1: tuple[int, ...] = (32, 64, 128)
    hidden2: tuple[int, ...] = (16, 32, 64)
    dropout: tuple[float, float] = (0.1, 0.5)
    learning_rate: tuple[float, float] = (1e-4, 3e-3)
    window: tuple[int, ...] = (20, 40, 60)
    threshold: tuple[float, ...] = (0.0025, 0.005, 0.01)

    def param_space(self) -> dict[str, Any]:
        """The Ray Tune domains, one flat key per field."""
        from ray import tune

        return {
            "hidden1": tune.choice(list(self.hidden1)),
            "hidden2": tune.choice(list(self.hidden2)),
            "dropout": tune.uniform(*self.dropout),
            "learning_rate": tune.loguniform(*self.learning_rate),
            "window": tune.choice(list(self.window)),
            "threshold": tune.choice(list(self.threshold)),
        }


PARAMS = tuple(f.name for f in fields(SearchSpace))


@dataclass(frozen=True)
class TuneOutcome:
    best_config: ExperimentConfig
    best_metric: float  # validation balanced accuracy of the best trial (see the module docstring)
    trials: pd.DataFrame  # one row per trial: id, parameters, epochs run, score and last metrics, status
    yaml_path: Path
    parent_run_id: str
    data_end: pd.Timestamp  # the last day any trial loaded (the honesty cut)


def apply_params(config: ExperimentConfig, params: dict[str, Any]) -> ExperimentConfig:
    """`config` with a trial's parameters (the keys of `SearchSpace`) put in place; other keys are ignored."""
    data = config.model_dump()
    data["window"] = int(params["window"])
    data["labels"]["threshold"] = float(params["threshold"])
    for key in ("hidden1", "hidden2"):
        data["bilstm"][key] = int(params[key])
    for key in ("dropout", "learning_rate"):
        data["bilstm"][key] = float(params[key])
    return ExperimentConfig.model_validate(data)


def tuning_cut(settings: Settings, config: ExperimentConfig, space: SearchSpace) -> pd.Timestamp:
    """The last day tuning may load: the first walk-forward fold's training end, on the smallest window searched."""
    smallest = config.model_copy(update={"window": min((*space.window, config.window))})
    full = load_universe(settings, smallest, progress=False)
    return pd.Timestamp(make_folds(full, smallest)[0].train_end)


def trial_config(config: ExperimentConfig, params: dict[str, Any], cut: pd.Timestamp, epochs: int) -> ExperimentConfig:
    """A trial's experiment: the parameters, bars up to `cut` only, at most `epochs` epochs."""
    tuned = apply_params(config, params)
    bilstm = tuned.bilstm.model_copy(update={"epochs": epochs})
    return tuned.model_copy(update={"end": str(cut.date()), "bilstm": bilstm})


class KeptScore:
    """Balanced accuracy of the epoch the fit keeps: the one with the lowest validation loss so far."""

    def __init__(self) -> None:
        self.loss, self.score = math.inf, math.nan

    def update(self, row: dict[str, float]) -> float:
        if row["valid_loss"] < self.loss:
            self.loss, self.score = row["valid_loss"], row["valid_balanced_accuracy"]
        return self.score


def run_trial(
    params: dict[str, Any],
    settings: Settings,
    config: ExperimentConfig,
    cut: pd.Timestamp,
    epochs: int,
    report: Callable[[dict[str, float]], None],
) -> None:
    """One trial: its own windows and labels from the stored bars up to `cut`, then an ordinary Bi-LSTM fit that
    calls `report` after every epoch with the epoch, the loop's metrics and the score."""
    from trendcast.models.bilstm_attention import BiLSTMModel

    experiment = trial_config(config, params, cut, epochs)
    data = load_universe(settings, experiment, progress=False)
    kept = KeptScore()

    def on_epoch(row: dict[str, float]) -> None:
        report({"epoch": row["epoch"], **{k: row[k] for k in REPORTED if k in row}, METRIC: kept.update(row)})

    BiLSTMModel(experiment, threads=1, progress=False, on_epoch=on_epoch).fit(data)


def _tune_trainable(
    params: dict[str, Any], settings: Settings, config: ExperimentConfig, cut: pd.Timestamp, epochs: int
) -> None:
    from ray import tune

    run_trial(params, settings, config, cut, epochs, lambda metrics: tune.report(metrics))


def run_tune(
    settings: Settings,
    config: ExperimentConfig,
    *,
    trials: int = 10,
    epochs: int | None = None,
    max_concurrent: int = 2,
    out_yaml: Path | None = None,
    progress: bool = True,
    space: SearchSpace | None = None,
) -> TuneOutcome:
    """Search `space` with `trials` ASHA-scheduled trials of at most `epochs` epochs (default: the config's),
    `max_concurrent` at a time, one CPU each; log them to MLflow and write the best config to `out_yaml`
    (default `<data_dir>/tuned.yaml`)."""
    from trendcast import tracking

    require_ray()
    if trials < 1 or max_concurrent < 1:
        raise ConfigError(f"--trials ({trials}) and --concurrent ({max_concurrent}) must be at least 1")
    space = space or SearchSpace()
    epochs = epochs or config.bilstm.epochs
    out = out_yaml or settings.data_dir / "tuned.yaml"
    local = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})  # trials run in their own folder
    cut = tuning_cut(local, config, space)
    tags = {"trendcast.job": "tune", "trendcast.tune.data_end": str(cut.date()), "trendcast.tune.metric": METRIC}
    with tracking.start_run(settings, f"tune-{config.name}", config, tags) as parent:
        runs = tracking.ChildRuns(settings, parent)
        with ray_session(settings.ray_address, num_cpus=max_concurrent):
            grid = _fit_tuner(local, config, space, cut, epochs, trials, max_concurrent, runs, progress)
        table = trials_table(grid)
        best = best_trial(table)
        best_config = apply_params(config, best).model_copy(update={"name": f"{config.name}-tuned"})
        best_metric = float(best[METRIC])
        path = write_tuned_yaml(best_config, out, best_metric=best_metric, cut=cut, run_id=parent)
        tracking.log_metrics({"best_" + METRIC: best_metric, "trials": float(len(table))})
        tracking.log_dict(best_config.model_dump(mode="json"), "tuned_config.json")
        tracking.log_dict({"trials": table.to_dict(orient="records")}, "trials.json")
        tracking.log_artifact(path)
    return TuneOutcome(best_config, best_metric, table, path, parent, cut)


def _fit_tuner(
    settings: Settings,
    config: ExperimentConfig,
    space: SearchSpace,
    cut: pd.Timestamp,
    epochs: int,
    trials: int,
    max_concurrent: int,
    runs: Any,
    progress: bool,
) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    trainable = tune.with_parameters(_tune_trainable, settings=settings, config=config, cut=cut, epochs=epochs)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=space.param_space(),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            scheduler=ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=1, reduction_factor=2),
            search_alg=BasicVariantGenerator(random_state=config.seed),
            num_samples=trials,
            max_concurrent_trials=max_concurrent,
        ),
        run_config=tune.RunConfig(
            name=f"tune-{config.name}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=str(settings.data_dir / "ray_results"),
            callbacks=[mlflow_callback(runs, cut)],
            verbose=1 if progress else 0,
        ),
    )
    return tuner.fit()


def mlflow_callback(runs: Any, cut: pd.Timestamp) -> Any:
    """A Tune callback (driver side) that makes each trial a child run: params at start, metrics every epoch."""
    from ray.tune import Callback

    class MlflowTrials(Callback):
        def __init__(self) -> None:
            self.run_ids: dict[str, str] = {}

        def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            params = {k: trial.config[k] for k in PARAMS} | {"data_end": str(cut.date())}
            tags = {"trendcast.tune.trial": str(trial.trial_id)}
            self.run_ids[trial.trial_id] = runs.start(f"trial-{trial.trial_id}", params, tags)

        def on_trial_result(
            self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
        ) -> None:
            if trial.trial_id in self.run_ids:
                metrics = {k: float(result[k]) for k in REPORTED if k in result}
                runs.log_metrics(self.run_ids[trial.trial_id], metrics, step=int(result["epoch"]))

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            if trial.trial_id in self.run_ids:
                runs.end(self.run_ids.pop(trial.trial_id))

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            if trial.trial_id in self.run_ids:
                runs.end(self.run_ids.pop(trial.trial_id), failed=True)

    return MlflowTrials()


def trials_table(grid: Any) -> pd.DataFrame:
    """One row per trial: trial_id, the parameters, epochs run, the last score and metrics, status."""
    rows = []
    for result in grid:
        metrics = result.metrics or {}
        row: dict[str, Any] = {"trial_id": metrics.get("trial_id", "")}
        row |= {k: result.config.get(k) for k in PARAMS}
        row["epochs"] = int(metrics.get("epoch", 0))
        row |= {k: float(metrics.get(k, math.nan)) for k in REPORTED}
        row["status"] = "ok" if result.error is None else f"error: {result.error}"
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(METRIC, ascending=False, na_position="last", kind="stable", ignore_index=True)


def best_trial(table: pd.DataFrame) -> dict[str, Any]:
    """The first scored trial of the table (best first; ties keep Tune's order): its parameters and score."""
    scored = table[(table["status"] == "ok") & table[METRIC].notna()]
    if scored.empty:
        errors = [s for s in table["status"] if s != "ok"]
        raise ModelError(
            f"no tuning trial finished with a score ({errors[0] if errors else 'no error reported'}). "
            "Check `trendcast train --config` on the same experiment, or use more history."
        )
    return dict(scored.iloc[0])


def write_tuned_yaml(
    config: ExperimentConfig, path: Path, *, best_metric: float, cut: pd.Timestamp, run_id: str
) -> Path:
    """The tuned experiment as YAML for `trendcast train --config`, with a header saying where it came from."""
    header = (
        f"# Written by `trendcast tune` (MLflow parent run {run_id}): the best trial's configuration.\n"
        f"# Validation balanced accuracy {best_metric:.4f}; tuned on data up to {cut.date()}, before the first\n"
        f"# walk-forward test fold. Train it with: trendcast train --config {path}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path
