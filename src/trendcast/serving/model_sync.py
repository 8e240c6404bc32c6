"""Loading the model into a worker, and keeping every worker on the same model after a reload.

`load_model(services)` runs the loader and the warm-up off the event loop, then swaps the slot's one reference:
requests that already hold the old `ServingModel` finish on it, new ones get the new model; no request fails.

POST /api/v1/admin/reload reaches ONE worker. With Redis configured, that worker also increments
`<redis_key_prefix>:model-generation`, and every worker polls that counter (`GenerationWatcher`, every
POLL_INTERVAL_S) and reloads when it changes, so all workers and replicas follow within a few seconds. Without
Redis each worker only reloads itself: run a single worker, or restart the workers gracefully (`kill -HUP` to the
Gunicorn master), which loads the new champion in each.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys

from redis.asyncio import Redis
from redis.exceptions import RedisError

from trendcast.serving.dependencies import Services
from trendcast.serving.inference import ServingModel, build_serving_model

logger = logging.getLogger("trendcast.serving")

POLL_INTERVAL_S = 2.0


async def load_model(services: Services) -> tuple[ServingModel | None, ServingModel]:
    """Load the current champion through the loader and swap it in. Returns (old, new). Raises what the loader
    raises (ModelNotReadyError, ModelError), leaving the old model in place."""
    async with services.reload_lock:
        settings = services.settings
        served = await asyncio.to_thread(services.loader, settings)
        _limit_torch_threads(settings.torch_threads)
        new = await asyncio.to_thread(
            build_serving_model,
            served,
            services.metrics,
            settings.drift_sample_size,
            quantized=settings.serve_quantized,
            onnx_threads=settings.onnx_threads,
        )
        old = services.slot.swap(new)
    freeze_heap()
    services.metrics.set_model(served.name, served.version, served.alias, new.backend.name)
    logger.info(
        "serving model %s version %s (%s backend)%s",
        served.name,
        served.version,
        new.backend.name,
        f", replacing version {old.served.version}" if old else "",
    )
    return old, new


def freeze_heap() -> None:
    """Collect once, then move every object alive now (imported libraries, the model) to the collector's permanent
    generation, so that later full collections only walk what requests allocate. Without it, a full collection
    walked the whole heap every few seconds under load and stalled the event loop: p99 at 16 connections went from
    109 ms to 9.5 ms, at 64 from 224 ms to 39 ms (benchmarks/bench_api.py, 2 workers). Called after every model
    swap: unfreezing first lets that collection free a replaced model's cycles."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _limit_torch_threads(threads: int) -> None:
    """PyTorch's intra-op threads for eager inference in this worker (TRENDCAST_TORCH_THREADS; 1 when there are as
    many workers as cores). Set on the event loop thread, where the forward passes run."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


async def try_initial_load(services: Services) -> None:
    """Load at startup; a missing or broken model leaves the service up and not ready (503) until a reload."""
    try:
        await load_model(services)
    except Exception as exc:  # the service must start even without a model
        logger.warning(
            "no model loaded at startup (%s: %s); /ready answers 503 until POST /api/v1/admin/reload",
            type(exc).__name__,
            exc,
        )


class GenerationWatcher:
    """Follows the shared model generation counter in Redis and reloads this worker when another one reloaded."""

    def __init__(self, services: Services, url: str, prefix: str) -> None:
        self._services = services
        self._redis: Redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._key = f"{prefix}:model-generation"
        self._seen: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._seen = await self._read()
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def announce(self) -> None:
        """Tell the other workers that this one reloaded (and remember the generation it now serves)."""
        try:
            self._seen = int(await self._redis.incr(self._key))
        except RedisError as exc:
            logger.warning("could not announce the reload to other workers: %s", exc)

    async def _read(self) -> int | None:
        try:
            value = await self._redis.get(self._key)
        except RedisError as exc:
            logger.warning("model generation unreadable: %s", exc)
            return self._seen
        return int(value) if value is not None else 0

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            current = await self._read()
            if current is None or current == self._seen:
                continue
            self._seen = current
            try:
                await load_model(self._services)
            except Exception as exc:  # keep serving the old model; try again at the next change
                logger.error("reload after generation %s failed: %s: %s", current, type(exc).__name__, exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()
