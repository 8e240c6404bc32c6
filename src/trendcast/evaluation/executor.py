"""Walk-forward as plan -> fit one fold -> merge, and the executors that map the fit over the folds (here or on Ray).

- `plan(ws, models, config)` cuts the purged folds (checking the purge on the real sample dates before anything is
  fitted) and lists one `FoldTask` per (fold, model);
- `fit_fold(ws, task, config, factory)` fits one model on one fold's training samples and predicts its test
  samples: a pure function of its inputs, so it gives the same `FoldOutput` wherever it runs;
- `merge(outputs, folds, models)` orders the outputs by fold, then by the order of `models`, so the completion order
  of the tasks never changes the `WalkForwardResult`.

An executor maps `fit_fold` over the tasks and calls `on_done` as each one finishes (the only seam progress needs):
`LocalExecutor` runs them one after another in this process; `RayExecutor` puts the WindowSet into the object store
once and runs one Ray task per (fold, model), spread over the cluster's nodes, collecting them with `ray.wait` as
they finish. Both run the fit and the prediction with the same torch thread count (`threads`, Settings.torch_threads
from the CLI), which is what makes the Bi-LSTM's predictions identical on both paths. A task that fails raises on
the caller's side with its fold and model named.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import pandas as pd
import torch

from trendcast.backtest.entry import LONG_COLUMN, QUANTILE_COLUMN, SHORT_COLUMN
from trendcast.config import ExperimentConfig, Settings
from trendcast.errors import ConfigError, ModelError, TrendcastError
from trendcast.evaluation.entry_fit import EntryThresholds, fit_entry_thresholds
from trendcast.evaluation.walk_forward import FoldRecord, ModelFactory, WalkForwardResult, make_folds
from trendcast.evaluation.walk_forward_splits import Fold, check_purged
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.ray_runtime import ray_session

LOCAL = "local"  # FoldOutput.node of a task run in this process


@dataclass(frozen=True)
class FoldTask:
    """One unit of work: fit `model` on `fold`'s training samples and predict its test samples."""

    fold: Fold
    model: str

    def describe(self) -> str:
        f = self.fold
        return f"fold {f.index} (test {f.test_start.date()}..{f.test_end.date()}), model {self.model!r}"


@dataclass
class FoldOutput:
    """What one task returns: the out-of-sample predictions with the fitted model, and where it ran."""

    fold: Fold
    model: str
    predictions: pd.DataFrame  # ticker, date, label, forward_return, p_down, p_neutral, p_up, fold, model
    history: list[dict[str, float]]  # per-epoch metrics (empty for models without epochs)
    fitted: DirectionModel
    n_train: int
    n_test: int
    node: str = LOCAL  # the Ray node id that ran the task, or "local"
    entry: EntryThresholds | None = None  # the fold's train_quantile entry thresholds (evaluation/entry_fit.py)


OnDone = Callable[[FoldOutput], None]


class FoldExecutor(Protocol):
    """Maps `fit_fold` over tasks; `remote` says whether the fits run in other processes (no progress bars)."""

    @property
    def remote(self) -> bool: ...

    def map(
        self,
        ws: WindowSet,
        tasks: list[FoldTask],
        config: ExperimentConfig,
        factory: ModelFactory,
        on_done: OnDone | None = None,
    ) -> list[FoldOutput]: ...


# -- plan, fit one fold, merge ---------------------------------------------------------------------------------------
def plan(ws: WindowSet, models: list[str], config: ExperimentConfig) -> list[FoldTask]:
    """One task per (fold, model), folds first; every fold's purge is checked on the sample dates first."""
    names = list(dict.fromkeys(models))
    if not names:
        raise ConfigError("no models to walk forward: name at least one (e.g. --models logreg,majority)")
    folds = make_folds(ws, config)
    for fold in folds:
        check_purged(fold, ws.dates, ws.dates[fold.train_mask(ws.dates)], ws.dates[fold.test_mask(ws.dates)])
    return [FoldTask(fold, name) for fold in folds for name in names]


def fit_fold(ws: WindowSet, task: FoldTask, config: ExperimentConfig, factory: ModelFactory) -> FoldOutput:
    """Fit `task.model` on the fold's training samples (the model fits its scaler on them only), fit the entry
    thresholds on its predictions of the recent training samples (evaluation/entry_fit.py), and predict the
    fold's test samples."""
    fold = task.fold
    train, test = ws.take(fold.train_mask(ws.dates)), ws.take(fold.test_mask(ws.dates))
    model = factory(task.model, config).fit(train)
    entry = fit_entry_thresholds(model, train, fold.train_end, config)
    frame = model.predict_frame(test)
    frame["fold"] = fold.index
    frame["model"] = task.model
    return FoldOutput(fold, task.model, frame, list(model.history), model, len(train), len(test), entry=entry)


def merge(outputs: Iterable[FoldOutput], folds: list[Fold], models: list[str]) -> WalkForwardResult:
    """The walk-forward result from one output per (fold, model), in any order: frames are concatenated by fold
    index (each fold's rows with its entry thresholds as columns, see `with_entry`), models keep the order of
    `models`, and the last fold's fitted models are kept."""
    names = list(dict.fromkeys(models))
    by_key = _index_outputs(outputs)
    expected = {(fold.index, name) for fold in folds for name in names}
    missing, extra = sorted(expected - set(by_key)), sorted(set(by_key) - expected)
    if missing or extra:
        raise ModelError(
            f"cannot merge the walk-forward: outputs missing for (fold, model) {missing}, unexpected {extra}; "
            "merge the outputs of exactly the tasks that plan() returned"
        )
    if not names:
        raise ConfigError("no models to merge: name at least one")
    ordered = sorted(folds, key=lambda f: f.index)
    records = [FoldRecord(f, by_key[f.index, names[0]].n_train, by_key[f.index, names[0]].n_test) for f in ordered]
    predictions = {n: pd.concat([with_entry(by_key[f.index, n]) for f in ordered], ignore_index=True) for n in names}
    histories = {n: [list(by_key[f.index, n].history) for f in ordered] for n in names}
    last = {n: by_key[ordered[-1].index, n].fitted for n in names} if ordered else {}
    return WalkForwardResult(records, predictions, histories, last)


def with_entry(output: FoldOutput) -> pd.DataFrame:
    """The output's predictions with its fold's entry thresholds as columns (unchanged when it has none)."""
    if output.entry is None:
        return output.predictions
    entry = output.entry
    return output.predictions.assign(
        **{LONG_COLUMN: entry.long, SHORT_COLUMN: entry.short, QUANTILE_COLUMN: entry.quantile}
    )


def _index_outputs(outputs: Iterable[FoldOutput]) -> dict[tuple[int, str], FoldOutput]:
    by_key: dict[tuple[int, str], FoldOutput] = {}
    for output in outputs:
        key = (output.fold.index, output.model)
        if key in by_key:
            raise ModelError(f"two outputs for fold {key[0]}, model {key[1]!r}: run each task once")
        by_key[key] = output
    return by_key


def task_error(task: FoldTask, exc: BaseException, where: str = "") -> TrendcastError:
    """`exc` with the failing task named: the same trendcast error type where it can be rebuilt from a message,
    otherwise a ModelError."""
    message = f"{task.describe()} failed{where}: {exc}"
    if isinstance(exc, TrendcastError):
        try:
            return type(exc)(message)
        except TypeError:  # an error type that needs more than a message
            pass
    return ModelError(f"{message} ({type(exc).__name__}; fix the model's settings or run the fold locally to debug)")


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch intra-op threads for the block (None: leave them as they are); restored afterwards."""
    if threads is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# -- executors -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalExecutor:
    """The tasks one after another in this process. `threads`: torch threads for fit and predict (None: as set)."""

    threads: int | None = None
    remote: ClassVar[bool] = False

    def map(
        self,
        ws: WindowSet,
        tasks: list[FoldTask],
        config: ExperimentConfig,
        factory: ModelFactory,
        on_done: OnDone | None = None,
    ) -> list[FoldOutput]:
        outputs = []
        for task in tasks:
            try:
                with torch_threads(self.threads):
                    output = fit_fold(ws, task, config, factory)
            except Exception as exc:
                raise task_error(task, exc) from exc
            if on_done is not None:
                on_done(output)
            outputs.append(output)
        return outputs


@dataclass(frozen=True)
class RayExecutor:
    """One Ray task per (fold, model) on the cluster at `address` (None: a private instance on this machine; see
    trendcast.ray_runtime). `threads`: torch threads in each task (None: this process's current count, so that the
    results equal the local path's). `factory` must pickle (cloudpickle): build it from plain data, not from a
    loaded ModelBundle."""

    address: str | None = None
    threads: int | None = None
    remote: ClassVar[bool] = True

    def map(
        self,
        ws: WindowSet,
        tasks: list[FoldTask],
        config: ExperimentConfig,
        factory: ModelFactory,
        on_done: OnDone | None = None,
    ) -> list[FoldOutput]:
        if not tasks:
            return []
        threads = self.threads if self.threads is not None else torch.get_num_threads()
        with ray_session(self.address) as ray:
            run = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_run_on_worker)
            ws_ref, config_ref, factory_ref = ray.put(ws), ray.put(config), ray.put(factory)  # shipped once
            pending = {run.remote(ws_ref, task, config_ref, factory_ref, threads): task for task in tasks}
            return _collect(ray, pending, on_done)


def _run_on_worker(
    ws: WindowSet, task: FoldTask, config: ExperimentConfig, factory: ModelFactory, threads: int
) -> FoldOutput:
    """The Ray task body: `fit_fold` with the driver's torch threads, tagged with the node that ran it."""
    import ray

    with torch_threads(threads):
        output = fit_fold(ws, task, config, factory)
    return dataclasses.replace(output, node=str(ray.get_runtime_context().get_node_id()))


def _collect(ray: Any, pending: dict[Any, FoldTask], on_done: OnDone | None) -> list[FoldOutput]:
    """Outputs in completion order, `on_done` called as each arrives; the first failure cancels the rest."""
    outputs: list[FoldOutput] = []
    waiting = list(pending)
    try:
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                output = _result(ray, ref, pending[ref])
                if on_done is not None:
                    on_done(output)
                outputs.append(output)
    except BaseException:
        for ref in waiting:
            ray.cancel(ref)
        raise
    return outputs


def _result(ray: Any, ref: Any, task: FoldTask) -> FoldOutput:
    try:
        output: FoldOutput = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
        raise task_error(task, cause, " on a Ray worker") from exc
    except ray.exceptions.RayError as exc:  # the worker or its node died, the object was lost, ...
        raise task_error(task, exc, " on Ray") from exc
    return output


def executor_for(settings: Settings, use_ray: bool = False) -> FoldExecutor:
    """Ray when asked (`--ray`) or when TRENDCAST_RAY_ADDRESS is set, else this process; torch threads from
    Settings.torch_threads on both paths, so both give the same predictions. With `train_workers > 1` the folds run
    in this process and each Bi-LSTM fit uses Ray Train instead (the two do not nest)."""
    if settings.train_workers > 1:  # each Bi-LSTM fit spreads over Ray Train workers; folds run here, one by one
        if use_ray:
            raise ConfigError(
                "--workers N trains each Bi-LSTM fit data-parallel on Ray Train, which does not run inside Ray fold "
                "tasks: pass --ray (folds in parallel) or --workers (one fit over several workers), not both"
            )
        return LocalExecutor(threads=settings.torch_threads)
    if use_ray or settings.ray_address:
        return RayExecutor(settings.ray_address, threads=settings.torch_threads)
    return LocalExecutor(threads=settings.torch_threads)
