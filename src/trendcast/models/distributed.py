"""Data-parallel fitting of the Bi-LSTM on Ray Train (`trendcast train --workers N`), with the one training loop.

`BiLSTMModel(config, workers=N).fit(train)` fits the scaler on the driver (the ordinary `DirectionModel.fit` path),
splits off the time-ordered validation tail, then calls `fit_data_parallel` here:

    driver: ray.put(scaled train), ray.put(scaled valid)  -> object refs in the (small) train_loop_config
    TorchTrainer(ScalingConfig(num_workers=N, use_gpu=False)) runs `_train_loop_per_worker` on N workers:
      each builds the same network (same seed), wraps it with `ray.train.torch.prepare_model` (DDP over gloo on CPU)
      and runs `torch_training.train_classifier(..., rank, world_size)`: disjoint, equally long shards of one seeded
      permutation per epoch, the whole validation set on every rank, so early stopping stops every rank together;
      rank 0 reports its best weights and history as a checkpoint (the others report none)
    driver: loads the checkpoint's state_dict into an ordinary `BiLSTMAttention`; the storage folder is deleted.

So a data-parallel model saves, loads, exports to ONNX and serves exactly like a local one.

What Ray 2.60 really does (read in the installed package, ray/train/v2):
- Ray Train V2 is the default (`RAY_TRAIN_V2_ENABLED` defaults to 1). Its `ScalingConfig(trainer_resources=...)`
  *raises* (a DeprecationWarning used as an exception): the V2 controller actor reserves no CPU (num_cpus=0). The
  classic pitfall (the V1 coordinator takes one CPU, so two workers on two cores wait forever) only exists in V1,
  so `trainer_resources={"CPU": 0}` (`ray_runtime.TRAINER_RESOURCES`) is passed only when V2 is switched off.
- `ray.train.report(metrics, checkpoint=...)` is a barrier that every worker must call the same number of times;
  only rank 0's metrics are kept. The train function's return value is not handed back, so the weights travel in
  a checkpoint (`Result.checkpoint`), persisted under `RunConfig(storage_path=...)` (a temporary folder here,
  removed afterwards; a multi-node cluster needs a storage path every node can reach, e.g. NFS or S3).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trendcast.config import BiLSTMConfig
from trendcast.errors import ConfigError, ModelError
from trendcast.features.labels import LabelMode
from trendcast.features.windows import WindowSet
from trendcast.ray_runtime import TRAINER_RESOURCES, ray_session, require_ray

WEIGHTS_FILE, TRAINING_FILE = "network.pt", "training.json"


@dataclass(frozen=True)
class DistributedFit:
    """Rank 0's best weights (keys of the bare `BiLSTMAttention`, no DDP prefix) and its per-epoch history."""

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    best_epoch: int


def fit_data_parallel(
    train: WindowSet,
    valid: WindowSet,
    config: BiLSTMConfig,
    *,
    seed: int,
    workers: int,
    threads: int = 1,
    address: str | None = None,
    label_mode: LabelMode = "absolute",
) -> DistributedFit:
    """Train the Bi-LSTM on `workers` Ray Train workers (CPU, DDP over gloo) on already-scaled sets.

    Joins the Ray session already running in this process, else starts (or connects to, with `address`) one for
    the call. Raises ConfigError when the cluster has fewer CPUs than workers (the run would wait forever) and
    ModelError when training fails on a worker.
    """
    if workers < 1:
        raise ModelError(f"data-parallel training needs workers >= 1, got {workers}")
    if len(train) < workers:
        raise ModelError(f"{len(train)} training samples cannot be shared by {workers} workers; use fewer workers")
    with ray_session(address, num_cpus=max(workers, os.cpu_count() or 1)) as ray:
        _check_cpus(ray, workers)
        loop_config = {
            "train": ray.put(train),  # the sets travel through the object store, not inside the pickled config
            "valid": ray.put(valid),
            "bilstm": config.model_dump(mode="json"),
            "seed": seed,
            "threads": threads,
            "label_mode": label_mode,  # the network masks the classes this label mode never produces
        }
        storage = Path(tempfile.mkdtemp(prefix="trendcast-ray-train-"))
        try:
            return _run_trainer(loop_config, workers, storage)
        finally:
            shutil.rmtree(storage, ignore_errors=True)


def _check_cpus(ray: Any, workers: int) -> None:
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    if cpus < workers:
        raise ConfigError(
            f"the Ray cluster has {cpus:g} CPUs, fewer than --workers {workers}: each worker needs one. "
            "Use fewer workers or a bigger cluster (TRENDCAST_RAY_ADDRESS)."
        )


def scaling_config(workers: int) -> Any:
    """`ScalingConfig` for CPU workers; the V1 coordinator is told to take no CPU (V2 refuses the argument)."""
    require_ray()
    import ray.train
    from ray.train.v2._internal.constants import is_v2_enabled

    options: dict[str, Any] = {"num_workers": workers, "use_gpu": False}
    if not is_v2_enabled():
        options["trainer_resources"] = TRAINER_RESOURCES
    return ray.train.ScalingConfig(**options)


def _run_trainer(loop_config: dict[str, Any], workers: int, storage: Path) -> DistributedFit:
    import ray.train
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(
        _train_loop_per_worker,
        train_loop_config=loop_config,
        scaling_config=scaling_config(workers),
        run_config=ray.train.RunConfig(name="bilstm", storage_path=str(storage)),
    )
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as exc:
        raise ModelError(f"data-parallel training failed on a Ray worker: {exc}; retry with --workers 1") from exc
    if result.checkpoint is None:
        raise ModelError("Ray Train finished without rank 0's checkpoint; retry with --workers 1")
    with result.checkpoint.as_directory() as folder:
        return read_checkpoint(Path(folder))


def read_checkpoint(folder: Path) -> DistributedFit:
    """The weights and history rank 0 wrote into its checkpoint folder."""
    state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    info = json.loads((folder / TRAINING_FILE).read_text())
    return DistributedFit(state, list(info["history"]), int(info["best_epoch"]))


def write_checkpoint(folder: Path, network: torch.nn.Module, history: list[dict[str, float]], best: int) -> None:
    torch.save(network.state_dict(), folder / WEIGHTS_FILE)
    (folder / TRAINING_FILE).write_text(json.dumps({"history": history, "best_epoch": best}))


def _train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: the same network and loop as a local fit, on this rank's shard."""
    import ray
    import ray.train
    import ray.train.torch

    from trendcast.models.bilstm_attention import BiLSTMAttention
    from trendcast.models.torch_training import seed_everything, train_classifier

    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    train, valid = ray.get(loop_config["train"]), ray.get(loop_config["valid"])
    config = BiLSTMConfig.model_validate(loop_config["bilstm"])
    seed_everything(loop_config["seed"])  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    network = BiLSTMAttention(train.n_features, config, loop_config.get("label_mode", "absolute"))
    parallel = ray.train.torch.prepare_model(network)  # DistributedDataParallel (gloo) around the same module
    result = train_classifier(
        parallel,
        train,
        train.labels,
        valid,
        valid.labels,
        config,
        seed=loop_config["seed"],
        threads=loop_config["threads"],
        progress=False,
        rank=rank,
        world_size=world_size,
    )
    metrics = {"best_epoch": result.best_epoch, "best_valid_loss": result.best_valid_loss}
    if rank != 0:
        ray.train.report(metrics)  # a barrier: every rank reports once
        return
    with tempfile.TemporaryDirectory(prefix="trendcast-rank0-") as folder:
        write_checkpoint(Path(folder), network, result.history, result.best_epoch)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
