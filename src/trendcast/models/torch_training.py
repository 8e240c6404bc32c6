"""The one training loop for trendcast's torch classifiers: seeding, batching, early stopping, best-epoch restore.

`train_classifier(network, train_x, train_y, valid_x, valid_y, config, seed=...)` trains any `nn.Module` whose
forward returns logits (or a tuple whose first item is the logits) with:

- AdamW (`learning_rate`, `weight_decay`) and gradient-norm clipping (`grad_clip`);
- cross-entropy weighted by inverse training class frequency ("balanced": n / (k * count_c)); the validation loss
  uses the same weights, so early stopping watches the objective being optimised;
- early stopping on the validation loss (`patience` epochs without improvement), after which the best epoch's
  weights are loaded back;
- seeds set for python, NumPy and torch, deterministic algorithms and a fixed thread count for the duration of the
  call (restored after), so two CPU runs with the same seed give identical weights.

Batches are drawn without a DataLoader: a seeded permutation of the *training* samples only, cut into
`batch_size` slices. Validation samples are never shuffled into training. Inputs are either (n, window, F) arrays or
`WindowSet`s; a `WindowSet` is materialised one batch at a time through its index arrays, so a large universe never
needs all its overlapping windows in memory at once.

Data-parallel training (Ray Train, `trendcast.models.distributed`) runs this same loop on every worker with `rank`
and `world_size`: every rank draws the same seeded permutation of the training samples, trims it to a multiple of
`world_size` and takes `order[rank::world_size]` (`shard_order`), so the ranks see disjoint shards with equal batch
counts (DDP's gradient all-reduce needs every rank to run the same number of steps). Every rank evaluates the whole
validation set with the same (synchronised) weights, so early stopping stops all ranks at the same epoch. `on_epoch`
receives each epoch's history row as it is made (Ray Tune reports through it).

The helpers `split_validation_tail` (time-ordered tail + purge gap, never a random split) and `most_recent` (cap
on training samples) prepare the sets before training.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.nn import functional

from trendcast.config import CLASS_NAMES, BiLSTMConfig
from trendcast.errors import ModelError
from trendcast.features.windows import WindowSet

Windows = np.ndarray | WindowSet  # (n, window, n_features) float32 array, or a WindowSet materialised per batch
N_CLASSES = len(CLASS_NAMES)


@dataclass(frozen=True)
class TrainResult:
    """Per-epoch history (epoch, train_loss, valid_loss, valid_accuracy, valid_balanced_accuracy, seconds) and the
    1-based epoch whose weights the network holds after training."""

    history: list[dict[str, float]]
    best_epoch: int
    best_valid_loss: float | None  # None when trained without a validation set


# -- preparing the sets ----------------------------------------------------------------------------------------------
def split_validation_tail(data: WindowSet, fraction: float, purge: int) -> tuple[WindowSet, WindowSet]:
    """Split off the last `fraction` of the unique dates as validation, dropping `purge` dates in between.

    Training keeps the dates before the gap, so no training label (which looks `purge` = horizon days ahead) reaches
    into the validation period. Never a random split.
    """
    dates = np.unique(data.dates)
    n_valid = max(1, round(fraction * len(dates)))
    n_train = len(dates) - n_valid - purge
    if n_train < 1:
        raise ModelError(
            f"only {len(dates)} training dates: too few for a validation tail of {n_valid} dates after a "
            f"purge gap of {purge}; pass a validation set or train on more history"
        )
    train = data.take(data.dates < dates[n_train])
    valid = data.take(data.dates >= dates[n_train + purge])
    return train, valid


def most_recent(data: WindowSet, limit: int | None) -> WindowSet:
    """The `limit` most recent samples by date (all when `limit` is None or not exceeded), in their original order."""
    if limit is None or len(data) <= limit:
        return data
    newest = np.argsort(data.dates, kind="stable")[-limit:]
    return data.take(np.sort(newest))


def class_weights(labels: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Balanced class weights n / (k * count_c) over the k classes present; 0 for absent classes."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights.astype(np.float32)


# -- reproducibility ------------------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed python's `random`, NumPy's global generator and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def torch_runtime(threads: int) -> Iterator[None]:
    """Use `threads` intra-op threads and deterministic algorithms inside the block; restore both afterwards."""
    old_threads, old_deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic)


# -- one batch, one pass --------------------------------------------------------------------------------------------
def _batch(x: Windows, index: np.ndarray) -> torch.Tensor:
    values = x.windows(index) if isinstance(x, WindowSet) else x[index]
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))  # (batch, window, n_features)


def _logits(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = network(x)
    return out[0] if isinstance(out, tuple) else out  # (batch, 3)


def evaluate_classifier(
    network: nn.Module, x: Windows, y: np.ndarray, weights: np.ndarray, batch_size: int = 1024
) -> dict[str, float]:
    """valid_loss (class-weighted cross-entropy, mean over the whole set), valid_accuracy, valid_balanced_accuracy."""
    network.eval()
    loss_sum, weight_sum, predicted = 0.0, 0.0, []
    w = torch.from_numpy(weights)
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            index = np.arange(start, min(start + batch_size, len(y)))
            target = torch.from_numpy(y[index])
            logits = _logits(network, _batch(x, index))
            loss_sum += float(functional.cross_entropy(logits, target, weight=w, reduction="sum"))
            weight_sum += float(w[target].sum())
            predicted.append(logits.argmax(dim=1).numpy())
    pred = np.concatenate(predicted)
    recalls = [float(np.mean(pred[y == c] == c)) for c in np.unique(y)]
    return {
        "valid_loss": loss_sum / max(weight_sum, 1e-12),
        "valid_accuracy": float(np.mean(pred == y)),
        "valid_balanced_accuracy": float(np.mean(recalls)),
    }


def shard_order(order: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's share of a permutation: trimmed to a multiple of `world_size`, then every `world_size`-th item
    from position `rank`. Shards of different ranks are disjoint and equally long; `world_size=1` keeps all."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ModelError(f"rank {rank} is not in 0..{world_size - 1}; pass 0 <= rank < world_size (world_size >= 1)")
    if len(order) < world_size:
        raise ModelError(f"{len(order)} training samples cannot be shared by {world_size} workers; use fewer workers")
    usable = len(order) - len(order) % world_size
    return order[:usable][rank::world_size]


@dataclass(frozen=True)
class _Shard:
    rank: int = 0
    world_size: int = 1


def _train_epoch(
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Windows,
    y: np.ndarray,
    weights: np.ndarray,
    config: BiLSTMConfig,
    rng: np.random.Generator,
    on_batch: Callable[[float], None],
    shard: _Shard = _Shard(),
) -> float:
    network.train()
    w = torch.from_numpy(weights)
    loss_sum, weight_sum = 0.0, 0.0
    # shuffles training samples among themselves only; every rank draws the same order and keeps its own shard
    order = shard_order(rng.permutation(len(y)), shard.rank, shard.world_size)
    for start in range(0, len(order), config.batch_size):
        index = order[start : start + config.batch_size]
        target = torch.from_numpy(y[index])
        loss = functional.cross_entropy(_logits(network, _batch(x, index)), target, weight=w)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(network.parameters(), config.grad_clip)
        optimizer.step()
        batch_weight = float(w[target].sum())
        loss_sum, weight_sum = loss_sum + loss.item() * batch_weight, weight_sum + batch_weight
        on_batch(loss_sum / max(weight_sum, 1e-12))
    return loss_sum / max(weight_sum, 1e-12)


# -- early stopping --------------------------------------------------------------------------------------------------
class _BestEpoch:
    """Remembers the weights of the epoch with the lowest validation loss."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.loss = math.inf
        self.epoch = 0
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, loss: float, network: nn.Module, epoch: int) -> bool:
        """Record this epoch; True when training should stop."""
        if loss < self.loss:
            self.loss, self.epoch = loss, epoch
            self.state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        return epoch - self.epoch >= self.patience


def _progress_bar(enabled: bool | None) -> Progress:
    show = Console().is_terminal if enabled is None else enabled
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[metrics]}"),
        disable=not show,
    )


# -- the loop --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Sets:
    train_x: Windows
    train_y: np.ndarray
    valid_x: Windows | None
    valid_y: np.ndarray | None


def _checked(train_x: Windows, train_y: np.ndarray, valid_x: Windows | None, valid_y: np.ndarray | None) -> _Sets:
    if len(train_y) == 0 or len(train_x) != len(train_y):
        raise ModelError(f"train_x has {len(train_x)} samples and train_y {len(train_y)}: they must match and be > 0")
    if (valid_x is None) != (valid_y is None):
        raise ModelError("pass valid_x and valid_y together (or neither)")
    if valid_x is not None and valid_y is not None and (len(valid_y) == 0 or len(valid_x) != len(valid_y)):
        raise ModelError(f"valid_x has {len(valid_x)} samples and valid_y {len(valid_y)}: they must match and be > 0")
    for labels in (train_y, train_y if valid_y is None else valid_y):
        if labels.min() < 0 or labels.max() >= N_CLASSES:
            raise ModelError(f"labels must be class ids 0..{N_CLASSES - 1}; drop unlabelled samples (-1) first")
    as_int = None if valid_y is None else valid_y.astype(np.int64)
    return _Sets(train_x, train_y.astype(np.int64), valid_x, as_int)


def train_classifier(
    network: nn.Module,
    train_x: Windows,
    train_y: np.ndarray,
    valid_x: Windows | None,
    valid_y: np.ndarray | None,
    config: BiLSTMConfig,
    *,
    seed: int,
    threads: int = 2,
    progress: bool | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> TrainResult:
    """Train `network` in place and return its history; the network ends in eval mode with its best weights.

    Without a validation set it trains all `config.epochs` and keeps the last epoch (history then has no valid_*
    entries). `progress=None` shows a Rich bar per epoch only on a terminal. `on_epoch(row)` is called after each
    epoch with its history row. `rank`/`world_size` train this process's shard of every epoch (data-parallel, see
    the module docstring); the defaults train on all samples.

    Examples:
        result = train_classifier(net, x_train, y_train, x_valid, y_valid, BiLSTMConfig(epochs=5), seed=0)
        result.best_epoch, result.history[-1]["valid_loss"]
    """
    sets = _checked(train_x, train_y, valid_x, valid_y)
    shard = _Shard(rank, world_size)
    shard_order(np.arange(len(sets.train_y)), rank, world_size)  # refuses a bad rank or too few samples up front
    weights = class_weights(sets.train_y)  # from all training labels: the same weights on every rank
    with torch_runtime(threads), _progress_bar(progress) as bar:
        seed_everything(seed + rank)  # other dropout masks per rank; the same as before for rank 0
        rng = np.random.default_rng(seed)  # the same sample order on every rank (each keeps its shard)
        optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        best, history = _BestEpoch(config.patience), []
        for epoch in range(1, config.epochs + 1):
            row = _run_epoch(network, optimizer, sets, weights, config, rng, bar, epoch, shard)
            history.append(row)
            if on_epoch is not None:
                on_epoch(dict(row))
            if sets.valid_y is not None and best.update(row["valid_loss"], network, epoch):
                break
        if best.state is not None:
            network.load_state_dict(best.state)
        optimizer.zero_grad(set_to_none=True)  # no stale gradients on the returned network
        network.eval()
    best_epoch = best.epoch if best.state is not None else len(history)
    return TrainResult(history, best_epoch, best.loss if best.state is not None else None)


def _run_epoch(
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    sets: _Sets,
    weights: np.ndarray,
    config: BiLSTMConfig,
    rng: np.random.Generator,
    bar: Progress,
    epoch: int,
    shard: _Shard,
) -> dict[str, float]:
    started = time.perf_counter()
    per_rank = len(sets.train_y) // shard.world_size
    n_batches = math.ceil(per_rank / config.batch_size)
    task = bar.add_task(f"epoch {epoch}/{config.epochs}", total=n_batches, metrics="")

    def on_batch(loss: float) -> None:
        bar.update(task, advance=1, metrics=f"loss {loss:.4f}")

    train_loss = _train_epoch(network, optimizer, sets.train_x, sets.train_y, weights, config, rng, on_batch, shard)
    if not math.isfinite(train_loss):
        raise ModelError(f"training diverged at epoch {epoch} (loss {train_loss}); lower bilstm.learning_rate")
    row: dict[str, float] = {"epoch": epoch, "train_loss": train_loss}
    if sets.valid_x is not None and sets.valid_y is not None:
        row |= evaluate_classifier(network, sets.valid_x, sets.valid_y, weights)
    row["seconds"] = time.perf_counter() - started
    bar.update(task, metrics=_metrics_text(row))
    return row


def _metrics_text(row: dict[str, float]) -> str:
    text = f"loss {row['train_loss']:.4f}"
    if "valid_loss" in row:
        text += f" | valid {row['valid_loss']:.4f} acc {row['valid_accuracy']:.3f}"
        text += f" bal {row['valid_balanced_accuracy']:.3f}"
    return text
