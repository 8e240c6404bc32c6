"""Walk-forward evaluation: for each purged fold, fit every model on the training samples (the model fits its own
scaler on those samples only) and collect out-of-sample probabilities for the test samples.

The result holds one predictions frame per model (ticker, date, label, forward_return, p_down, p_neutral, p_up,
fold), the folds with their dates and sample counts, and the per-epoch history of models that have epochs.

`run_walk_forward` is plan -> fit one fold -> merge (trendcast.evaluation.executor): the folds run one after another
in this process by default, or as Ray tasks with `executor=RayExecutor(...)`, with the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from trendcast.config import ExperimentConfig
from trendcast.evaluation.walk_forward_splits import Fold, walk_forward_splits
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.registry import create_model

if TYPE_CHECKING:
    from trendcast.evaluation.executor import FoldExecutor, FoldOutput

ModelFactory = Callable[[str, ExperimentConfig], DirectionModel]


@dataclass
class FoldRecord:
    fold: Fold
    n_train: int
    n_test: int

    def as_dict(self) -> dict[str, object]:
        return {**self.fold.as_dict(), "n_train": self.n_train, "n_test": self.n_test}


@dataclass
class WalkForwardResult:
    folds: list[FoldRecord]
    predictions: dict[str, pd.DataFrame]  # model name -> out-of-sample predictions over all folds
    histories: dict[str, list[list[dict[str, float]]]] = field(default_factory=dict)  # model -> per fold epochs
    last_fold_models: dict[str, DirectionModel] = field(default_factory=dict)  # fitted on the last fold's train


def make_folds(ws: WindowSet, config: ExperimentConfig) -> list[Fold]:
    wf = config.walk_forward
    return walk_forward_splits(
        ws.dates,
        folds=wf.folds,
        horizon=ws.horizon,
        purge=config.purge_days,
        embargo=wf.embargo_days,
        min_train_fraction=wf.min_train_fraction,
        scheme=wf.scheme,
    )


def run_walk_forward(
    ws: WindowSet,
    models: list[str],
    config: ExperimentConfig,
    *,
    progress: bool = True,
    factory: ModelFactory = create_model,
    executor: FoldExecutor | None = None,
) -> WalkForwardResult:
    """Fit each model on each fold's training samples and predict its test samples (out-of-sample only):
    plan -> executor.map(fit_fold) -> merge (trendcast.evaluation.executor; default: this process)."""
    from trendcast.evaluation.executor import LocalExecutor, merge, plan

    tasks = plan(ws, models, config)
    folds = list({task.fold.index: task.fold for task in tasks}.values())
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, disable=not progress) as bar:
        task_id = bar.add_task("walk-forward", total=len(tasks))

        def on_done(output: FoldOutput) -> None:
            bar.update(task_id, advance=1, description=f"fold {output.fold.index + 1}/{len(folds)} {output.model}")

        outputs = (executor or LocalExecutor()).map(ws, tasks, config, factory, on_done)
    return merge(outputs, folds, models)


def fold_arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, (n, 3) probabilities, dates) from a predictions frame."""
    proba = frame[["p_down", "p_neutral", "p_up"]].to_numpy(dtype=np.float64)
    return frame["label"].to_numpy(dtype=np.int64), proba, frame["date"].to_numpy()
