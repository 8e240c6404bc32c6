"""The inference path: one immutable `ServingModel` per loaded champion, swapped atomically on reload.

    loader(settings) -> ModelBundle          the registry champion (trendcast.tracking) or a saved model folder
      -> ServingModel(served, backend, batcher)   built once per worker; never mutated afterwards
      -> ModelSlot.current                        ONE reference; reload replaces it, in-flight requests keep theirs

Backends: `OnnxBackend` (ONNX Runtime session, the Bi-LSTM's exported graph) when the loaded model has one: the
int8 copy (`onnx-int8`) when the bundle's quantisation record says it agreed with float32 and
TRENDCAST_SERVE_QUANTIZED is on, else the float32 graph (`onnx`); `EagerBackend` (`model.predict_scaled`, PyTorch
for the Bi-LSTM, scikit-learn/LightGBM for baselines) otherwise. All take scaled windows (n, window, n_features)
float32 and return (n, 3) probabilities. Sessions use TRENDCAST_ONNX_THREADS intra-op threads (default 1) that do
not spin, so one worker per core does not steal the next worker's core.

`MicroBatcher` gathers the requests that are ready when a forward pass can start into one batch (no timer, so a
lone request is never delayed): under load one pass serves many requests, which costs about half as much CPU per
sample as batch 1 for the Bi-LSTM. The pass runs on the event loop's own thread: with one worker per core that
measured faster than handing it to an inference thread (no GIL ping-pong between the two threads).

Input building lives here too: `parse_sequence` (orjson-parsed lists -> checked float32 window, NumPy checks
instead of per-float Pydantic validation) and `ticker_window` (store bars -> features -> last `window` rows ->
the model's fitted scaler).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from trendcast.config import Settings
from trendcast.data.store import BarStore
from trendcast.errors import InsufficientHistoryError, ModelNotReadyError
from trendcast.features.feature_set import compute_features, days_still_needed, warmup_bars
from trendcast.features.indicators import resolve
from trendcast.models.base import DirectionModel
from trendcast.models.bundle import ModelBundle, folder_version, read_bundle
from trendcast.serving.background import RecentInputs
from trendcast.serving.errors import ApiError
from trendcast.serving.metrics import ServiceMetrics

logger = logging.getLogger("trendcast.serving")

MAX_BATCH = 64  # samples per forward pass gathered by the micro-batcher
INT8_BACKEND = "onnx-int8"  # the backend name while the quantised graph answers
SETTLE_ROUNDS = 2  # event-loop rounds without a new request before a batch starts


ServedModel = ModelBundle  # what a model loader returns: the model with its folder, version, alias and scores
ModelLoader = Callable[[Settings], ModelBundle]


def load_model_dir(settings: Settings) -> ModelBundle:
    """Load the folder at settings.model_dir (a bundle written by `write_bundle`, or any `model.save()` folder with
    an optional metrics.json), versioned by a hash of its contents."""
    if settings.model_dir is None:
        raise ModelNotReadyError("TRENDCAST_MODEL_DIR is not set; point it at a folder written by model.save()")
    folder = settings.model_dir
    return read_bundle(folder, name=settings.registered_model_name, version=folder_version(folder), alias="local")


def default_loader(settings: Settings) -> ModelBundle:
    """settings.model_dir when set, else the registry model behind settings.model_alias (MLflow, imported lazily)."""
    if settings.model_dir is not None:
        return load_model_dir(settings)
    from trendcast.tracking import load_champion

    return load_champion(settings)


# -- backends ---------------------------------------------------------------------------------------------------------
class Backend(Protocol):
    name: str

    def predict(self, x: np.ndarray) -> np.ndarray: ...


class EagerBackend:
    """The model's own predict_scaled: PyTorch eager for the Bi-LSTM, NumPy/scikit-learn/LightGBM for baselines."""

    name = "eager"

    def __init__(self, model: DirectionModel) -> None:
        self._model = model

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._model.predict_scaled(x)


class OnnxBackend:
    """An ONNX Runtime session over the exported network (trendcast.models.onnx_export.OnnxPredictor); named
    `onnx-int8` over the quantised graph, `onnx` over the float32 one."""

    def __init__(self, path: Path, *, threads: int = 1, quantized: bool = False) -> None:
        from trendcast.models.onnx_export import OnnxPredictor

        self.name = INT8_BACKEND if quantized else "onnx"
        self.predictor = OnnxPredictor(path, threads=threads)

    def predict(self, x: np.ndarray) -> np.ndarray:
        proba, _attention = self.predictor.predict(x)
        return np.asarray(proba, dtype=np.float64)


def make_backend(served: ModelBundle, *, quantized: bool = True, onnx_threads: int = 1) -> Backend:
    """The int8 graph when `quantized` and the bundle's record accepted it, else the float32 graph, else eager."""
    if quantized and served.int8_path is not None:
        return OnnxBackend(served.int8_path, threads=onnx_threads, quantized=True)
    if served.onnx_path is not None:
        return OnnxBackend(served.onnx_path, threads=onnx_threads)
    return EagerBackend(served.model)


# -- micro-batching ---------------------------------------------------------------------------------------------------
@dataclass
class _Pending:
    x: np.ndarray  # (k, window, n_features)
    future: asyncio.Future[np.ndarray]


class MicroBatcher:
    """Gathers concurrent requests into one forward pass.

    A request joins the queue; if no drain task is running, one starts at once. Before each pass the task yields
    to the event loop until no new request has joined for a couple of rounds, so requests already read from their
    sockets join the batch (up to `max_batch` samples); requests that arrive during a pass form the next one.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_batch: int = MAX_BATCH) -> None:
        self._predict, self._max_batch = predict, max_batch
        self._queue: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None

    async def predict(self, x: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        item = _Pending(x, loop.create_future())
        self._queue.append(item)
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return await item.future

    def _take(self) -> list[_Pending]:
        taken: list[_Pending] = []
        size = 0
        while self._queue and (not taken or size + len(self._queue[0].x) <= self._max_batch):
            item = self._queue.pop(0)
            taken.append(item)
            size += len(item.x)
        return taken

    async def _gather(self) -> None:
        """Yield to the event loop until the queue stops growing for SETTLE_ROUNDS rounds (or the batch is full):
        requests whose bytes have already arrived get parsed and join. A lone request costs a few loop rounds."""
        stable, size = 0, len(self._queue)
        while stable < SETTLE_ROUNDS and size < self._max_batch:
            await asyncio.sleep(0)
            stable, size = (stable + 1, size) if len(self._queue) == size else (0, len(self._queue))

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._gather()
                batch = self._take()
                xs = batch[0].x if len(batch) == 1 else np.concatenate([item.x for item in batch])
                try:
                    proba = self._predict(xs)
                except Exception as exc:  # the requests of this batch fail; the batcher goes on
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    continue
                start = 0
                for item in batch:
                    if not item.future.done():  # a client that went away cancelled its future
                        item.future.set_result(proba[start : start + len(item.x)])
                    start += len(item.x)
        finally:
            self._task = None


# -- the immutable holder and its slot -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServingModel:
    """Everything a request needs about the current model. Never mutated: reload builds a new one."""

    served: ModelBundle
    backend: Backend
    batcher: MicroBatcher
    loaded_at: datetime
    recent: RecentInputs  # the last predicted rows, for drift (written on the event loop thread)

    @property
    def model(self) -> DirectionModel:
        return self.served.model

    @property
    def window(self) -> int:
        return self.served.model.window

    @property
    def n_features(self) -> int:
        return len(self.served.model.feature_names)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.served.model.class_names

    async def predict(self, x: np.ndarray) -> np.ndarray:
        """(k, 3) probabilities for (k, window, n_features) scaled windows, through the micro-batcher."""
        proba = await self.batcher.predict(x)
        self.recent.add(x[:, -1, :], proba)
        return proba


def _timed(backend: Backend, metrics: ServiceMetrics) -> Callable[[np.ndarray], np.ndarray]:
    inference = metrics.inference.labels(backend.name)

    def predict(x: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        proba = backend.predict(x)
        inference.observe(time.perf_counter() - started)
        metrics.batch_size.observe(len(x))
        return proba

    return predict


def build_serving_model(
    served: ModelBundle,
    metrics: ServiceMetrics,
    recent_size: int = 2000,
    *,
    quantized: bool = True,
    onnx_threads: int = 1,
) -> ServingModel:
    """Wrap a loaded model for serving: pick the backend (see `make_backend`) and warm it up with one forward pass."""
    backend = make_backend(served, quantized=quantized, onnx_threads=onnx_threads)
    n_features = len(served.model.feature_names)
    warm = np.zeros((1, served.model.window, n_features), dtype=np.float32)
    backend.predict(warm)  # first call allocates; do it before traffic arrives
    batcher = MicroBatcher(_timed(backend, metrics))
    return ServingModel(served, backend, batcher, datetime.now(UTC), RecentInputs(recent_size, n_features))


@dataclass
class ModelSlot:
    """The one mutable reference to the current ServingModel. Assigning it is atomic for every reader."""

    current: ServingModel | None = None
    generation: int = field(default=0)

    def swap(self, new: ServingModel) -> ServingModel | None:
        old, self.current = self.current, new
        self.generation += 1
        return old


# -- input building ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BodyScan:
    """What a byte scan of the raw body rules out, so that the common body skips the slower exact checks."""

    numbers_only: bool  # a one-key body (e.g. {"sequence": ...}) with no string, true, false or null as a value
    may_hold_bools: bool  # `true` or `false` may occur in the body

    @classmethod
    def of(cls, raw: bytes) -> BodyScan:
        """Single-byte searches only (memchr speed): after the first key's closing quote, a body of numbers has no
        further quote and none of the letters t, f, n that begin true, false and null (exponents use e/E)."""
        first = raw.find(b'"')
        end = raw.find(b'"', first + 1) + 1 if first >= 0 else 0
        if end > 0 and all(raw.find(c, end) < 0 for c in (b'"', b"t", b"f", b"n")):
            return cls(numbers_only=True, may_hold_bools=False)
        return cls(numbers_only=False, may_hold_bools=b"true" in raw or b"false" in raw)


EXACT = BodyScan(numbers_only=False, may_hold_bools=True)  # no raw body to scan: check everything


def _invalid(message: str, details: Any = None) -> ApiError:
    return ApiError(422, "invalid_sequence", message, details)


def _numeric_array(value: list[Any], scan: BodyScan) -> np.ndarray:
    if scan.numbers_only:  # the raw body was checked: no strings, booleans or nulls anywhere
        return np.asarray(value, dtype=np.float32)
    array = np.asarray(value)  # strings or nulls give a str/object array, rejected below
    if array.dtype.kind == "O" and _all_numbers(value):  # integers beyond 64 bits
        array = np.asarray(value, dtype=np.float64)
    if array.dtype.kind not in "fiu":
        raise _invalid("sequence must hold only numbers (no strings, booleans or nulls) in equally long rows")
    if scan.may_hold_bools and any(type(v) is bool for row in value if isinstance(row, list) for v in row):
        raise _invalid("sequence must hold only numbers; booleans are not numbers")  # NumPy would read true as 1
    return array


def _all_numbers(value: list[Any]) -> bool:
    return all(isinstance(row, list) and all(type(v) in (int, float) for v in row) for row in value)


def parse_sequence(value: Any, window: int, n_features: int, scan: BodyScan = EXACT) -> np.ndarray:
    """A client's `sequence` -> (window, n_features) float32, or a 422 ApiError that says what is wrong."""
    expected = f"{window} rows (time steps, oldest first) of {n_features} scaled features each"
    if not isinstance(value, list) or not value:
        raise _invalid(f"sequence must be a non-empty array of {expected}")
    try:
        with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
            array = _numeric_array(value, scan)
            x = array.astype(np.float32, copy=False)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _invalid(f"sequence must be {expected}; rows of unequal length or non-numbers were sent") from exc
    if x.shape != (window, n_features):
        raise _invalid(
            f"sequence has shape {list(x.shape)}; the model needs {expected}",
            {"expected_shape": [window, n_features], "got_shape": list(x.shape)},
        )
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise _invalid(
            f"sequence holds {int(bad.sum())} values that are not finite float32 numbers "
            f"(first at row {row}, column {col})",
            {"row": row, "column": col},
        )
    return x


@dataclass(frozen=True)
class TickerWindow:
    """The last `window` feature rows of a ticker up to `as_of`, unscaled and scaled."""

    ticker: str
    scaled: np.ndarray  # (window, n_features) float32
    unscaled: np.ndarray  # (window, n_features) float64
    dates: list[date]
    window_end: date
    closed: bool  # the store already holds a later bar, so this window can no longer change


def _usable_tail(values: np.ndarray) -> int:
    """How many of the last rows are finite in every feature, counted back from the newest."""
    finite = np.isfinite(values).all(axis=1)
    broken = np.flatnonzero(~finite)
    return len(finite) if len(broken) == 0 else len(finite) - 1 - int(broken[-1])


def ticker_window(store: BarStore, ticker: str, as_of: date | None, model: DirectionModel) -> TickerWindow:
    """Build the model's input from stored bars: features over the whole history up to `as_of` (causal), the last
    `window` rows, checked finite, scaled with the model's fitted scaler.

    Raises MissingPricesError (unknown ticker) or InsufficientHistoryError (fewer usable rows than the window; its
    `missing` counts the indicators' warm-up, so that many more trading days make the request work).
    """
    bars = store.load([ticker])
    last_stored = pd.Timestamp(bars["date"].max()) if len(bars) else None
    if as_of is not None:
        bars = bars[bars["date"] <= pd.Timestamp(as_of)]
    label = as_of.isoformat() if as_of is not None else "the latest bar"
    indicators = resolve(list(model.feature_names))
    if bars.empty:
        missing = days_still_needed(np.empty((0, len(indicators))), model.window, warmup_bars(indicators))
        raise InsufficientHistoryError(ticker, model.window, 0, label, missing=missing)
    features = compute_features(bars.reset_index(drop=True), indicators)
    values = features.to_numpy(dtype=np.float64)
    usable = _usable_tail(values)
    if usable < model.window:
        missing = days_still_needed(values, model.window, warmup_bars(indicators))
        raise InsufficientHistoryError(ticker, model.window, usable, label, missing=missing)
    rows = values[-model.window :]
    dates = [ts.date() for ts in features.index[-model.window :]]
    closed = last_stored is not None and as_of is not None and last_stored > pd.Timestamp(as_of)
    return TickerWindow(ticker, model.scale_rows(rows), rows, dates, dates[-1], closed)
