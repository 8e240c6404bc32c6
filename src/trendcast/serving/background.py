"""Background work of a service worker: drift gauges over recent request inputs, judging ticker predictions once
their outcome is stored, process gauges, and following the champion alias.

`RecentInputs` keeps a bounded ring of the last time step of every window the worker predicted (scaled features, as
the drift reference holds them) with its probabilities; it is written on the event loop thread, where forward
passes run. `DriftMonitor` recomputes PSI/KS per feature and the predicted-class mix drift every
`drift_refresh_seconds` against the served bundle's reference and sets the Prometheus gauges.

`OutcomeResolver`, on the same `drift_refresh_seconds`, judges the worker's waiting ticker predictions whose label
is now in the bar store and counts hits and misses (`serving.outcomes`). `ProcessSampler` copies the worker's CPU,
memory and file descriptors into the `trendcast_worker_*` gauges every PROCESS_SAMPLE_S seconds (see
`serving.metrics` for why the standard process collector is not enough under Gunicorn).

`ChampionPoller` (TRENDCAST_MODEL_POLL_SECONDS) asks the registry which version the alias names and reloads when it
changed: a promotion or a rollback reaches the service without anyone calling /api/v1/admin/reload. The swap is the
same atomic one as a reload, so no request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from trendcast.config import LabelConfig
    from trendcast.monitoring.drift import DriftReference
    from trendcast.serving.dependencies import Services
    from trendcast.serving.inference import ServingModel
    from trendcast.serving.outcomes import Outcome, Prediction

logger = logging.getLogger("trendcast.serving")

PROCESS_SAMPLE_S = 5.0  # reading /proc/self costs well under a millisecond
MIN_DRIFT_ROWS = 200  # fewer recent rows give PSI a small-sample bias of ~(bins - 1) / n: not worth a gauge


class RecentInputs:
    """A ring of the last `size` predicted rows (n_features scaled values) and their (3,) probabilities."""

    def __init__(self, size: int, n_features: int) -> None:
        self._rows = np.zeros((size, n_features), dtype=np.float32)
        self._proba = np.zeros((size, 3), dtype=np.float64)
        self._next, self._count = 0, 0

    def add(self, rows: np.ndarray, proba: np.ndarray) -> None:
        size = len(self._rows)
        for start in range(0, len(rows), size):  # a batch larger than the ring keeps its newest rows
            chunk, chunk_p = rows[start : start + size], proba[start : start + size]
            index = (self._next + np.arange(len(chunk))) % size
            self._rows[index], self._proba[index] = chunk, chunk_p
            self._next = int((self._next + len(chunk)) % size)
            self._count = min(size, self._count + len(chunk))

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        return self._rows[: self._count].copy(), self._proba[: self._count].copy()

    def __len__(self) -> int:
        return self._count


class Periodic:
    """Runs `step` every `interval_s` seconds until stopped; a failing step is logged and retried next time."""

    def __init__(self, name: str, interval_s: float, step: Callable[[], Awaitable[None]]) -> None:
        self._name, self._interval, self._step = name, interval_s, step
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._step()
            except Exception as exc:  # keep the worker serving; say what went wrong
                logger.warning("%s failed: %s: %s", self._name, type(exc).__name__, exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class DriftMonitor(Periodic):
    def __init__(self, services: Services) -> None:
        super().__init__("drift refresh", services.settings.drift_refresh_seconds, self.refresh)
        self._services = services
        self._reference: tuple[str, DriftReference | None] | None = None  # (version, its reference), read once

    async def _reference_of(self, serving: ServingModel) -> DriftReference | None:
        version = serving.served.version
        if self._reference is None or self._reference[0] != version:
            self._reference = (version, await asyncio.to_thread(serving.served.drift_reference))
        return self._reference[1]

    async def refresh(self) -> None:
        """Recompute the drift gauges from this worker's recent inputs (no-op below MIN_DRIFT_ROWS)."""
        serving = self._services.slot.current
        if serving is None or len(serving.recent) < MIN_DRIFT_ROWS:
            return
        reference = await self._reference_of(serving)
        if reference is None:
            return
        rows, proba = serving.recent.snapshot()
        settings = self._services.settings
        from trendcast.monitoring.drift import compare

        report = await asyncio.to_thread(
            compare,
            reference,
            rows,
            proba,
            psi_warn=settings.drift_psi_warn,
            psi_alert=settings.drift_psi_alert,
            alpha=settings.drift_alpha,
        )
        self._services.metrics.set_drift(report.to_json())


class OutcomeResolver(Periodic):
    def __init__(self, services: Services) -> None:
        super().__init__("outcome resolution", services.settings.drift_refresh_seconds, self.resolve)
        self._services = services

    async def resolve(self) -> None:
        """Count hits and misses of the waiting ticker predictions whose label the store now holds."""
        metrics = self._services.metrics
        if not len(metrics.outcomes):
            return
        predictions, labels = metrics.outcomes.snapshot()
        outcomes = await asyncio.to_thread(self._realised, predictions, labels)
        metrics.count_outcomes(outcomes)

    def _realised(self, predictions: list[Prediction], labels: dict[str, LabelConfig]) -> list[Outcome]:
        from trendcast.serving.outcomes import realised

        return realised(self._bars({p.ticker for p in predictions}), predictions, labels)

    def _bars(self, tickers: set[str]) -> pd.DataFrame:
        """Every stored bar of the waiting tickers (a ticker no longer stored waits until it is dropped)."""
        store = self._services.store.get()
        stored = sorted(tickers & set(store.ticker_names()))
        return store.load(stored)


class ProcessSampler(Periodic):
    def __init__(self, services: Services) -> None:
        super().__init__("process sample", PROCESS_SAMPLE_S, self.sample)
        self._services = services

    async def sample(self) -> None:
        self._services.metrics.sample_process()


class ChampionPoller(Periodic):
    def __init__(self, services: Services, interval_s: float) -> None:
        super().__init__("champion poll", interval_s, self.check)
        self._services = services

    async def check(self) -> None:
        """Reload when the alias now names another version than the one served (or one appeared)."""
        from trendcast import tracking
        from trendcast.serving.model_sync import load_model

        settings = self._services.settings
        version = await asyncio.to_thread(tracking.alias_version, settings, settings.model_alias)
        current = self._services.slot.current
        if version is None or (current is not None and current.served.version == version):
            return
        logger.info("alias %r now names version %s; reloading", settings.model_alias, version)
        await load_model(self._services)
