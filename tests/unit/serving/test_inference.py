"""Input parsing, the micro-batcher, ticker windows and model folders."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from tests.unit.serving.support import FEATURES, WINDOW, filled_store, fit_tiny_model, tiny_model_dir
from trendcast.config import Settings
from trendcast.errors import InsufficientHistoryError, MissingPricesError, ModelNotReadyError
from trendcast.models.bundle import read_bundle
from trendcast.serving.errors import ApiError
from trendcast.serving.inference import (
    EXACT,
    BodyScan,
    MicroBatcher,
    folder_version,
    load_model_dir,
    make_backend,
    parse_sequence,
    ticker_window,
)

GOOD = np.arange(WINDOW * 4, dtype=np.float64).reshape(WINDOW, 4) / 10


def parse_raw(body: dict[str, object]) -> np.ndarray:
    raw = json.dumps(body).encode()
    return parse_sequence(json.loads(raw)["sequence"], WINDOW, 4, BodyScan.of(raw))


def test_fast_and_exact_paths_agree() -> None:
    raw = json.dumps({"sequence": GOOD.tolist()}).encode()
    assert BodyScan.of(raw).numbers_only
    fast = parse_raw({"sequence": GOOD.tolist()})
    exact = parse_sequence(GOOD.tolist(), WINDOW, 4, EXACT)
    assert fast.dtype == np.float32 and fast.shape == (WINDOW, 4)
    np.testing.assert_array_equal(fast, exact)
    np.testing.assert_allclose(fast, GOOD, rtol=1e-6)


@pytest.mark.parametrize(
    ("raw", "numbers_only", "bools"),
    [
        (b'{"sequence": [[1, 2.5e-3, -1E4]]}', True, False),
        (b'{"sequence": [[1, true]]}', False, True),
        (b'{"sequence": [[1, "2"]]}', False, False),
        (b'{"sequence": [[1, null]]}', False, False),
        (b'{"sequence": [[1]], "ticker": "X"}', False, False),
        (b"[1, 2]", False, False),
    ],
)
def test_body_scan(raw: bytes, numbers_only: bool, bools: bool) -> None:
    scan = BodyScan.of(raw)
    assert (scan.numbers_only, scan.may_hold_bools) == (numbers_only, bools)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (GOOD[:-1].tolist(), "shape [4, 4]"),
        ([row[:-1] for row in GOOD.tolist()], "shape [5, 3]"),
        ([GOOD.tolist()], "shape [1, 5, 4]"),
        ([], "non-empty array"),
        ("abc", "non-empty array"),
        ([[1.0, 2.0], [1.0]], "unequal length"),
        ([["1.5"] * 4] * WINDOW, "only numbers"),
        ([[None] * 4] * WINDOW, "only numbers"),
        ([[True, 0.0, 0.0, 0.0]] * WINDOW, "booleans"),
        ([[1e39, 0.0, 0.0, 0.0], *GOOD.tolist()[1:]], "first at row 0, column 0"),
    ],
)
def test_bad_sequences_say_what_is_wrong(value: object, fragment: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_sequence(value, WINDOW, 4, EXACT)
    assert info.value.status_code == 422 and fragment in info.value.message


def test_big_integers_are_numbers() -> None:
    value = [[10**20, 0, 0, 0], *GOOD.tolist()[1:]]
    assert parse_sequence(value, WINDOW, 4, EXACT)[0, 0] == np.float32(1e20)


def test_micro_batcher_gathers_ready_requests_up_to_max_batch() -> None:
    sizes: list[int] = []

    def predict(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        return np.repeat(x.sum(axis=(1, 2))[:, None], 3, axis=1)  # each row identifies its input

    async def scenario() -> tuple[np.ndarray, list[np.ndarray]]:
        batcher = MicroBatcher(predict, max_batch=4)
        lone = await batcher.predict(np.full((1, 2, 2), 7.0))  # alone: runs at once, batch of 1
        inputs = [np.full((1, 2, 2), float(i)) for i in range(6)]
        return lone, list(await asyncio.gather(*(batcher.predict(x) for x in inputs)))

    lone, results = asyncio.run(scenario())
    assert float(lone[0, 0]) == 28.0
    assert [float(r[0, 0]) for r in results] == [4.0 * i for i in range(6)]
    assert sizes == [1, 4, 2]  # six concurrent requests: two passes instead of six


def test_micro_batcher_fails_only_its_batch() -> None:
    calls = {"n": 0}

    def predict(x: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return np.zeros((len(x), 3))

    async def scenario() -> tuple[BaseException | np.ndarray, ...]:
        batcher = MicroBatcher(predict)
        first = await asyncio.gather(batcher.predict(np.zeros((1, 2, 2))), return_exceptions=True)
        second = await batcher.predict(np.zeros((2, 2, 2)))
        return (*first, second)

    failed, ok = asyncio.run(scenario())
    assert isinstance(failed, RuntimeError) and isinstance(ok, np.ndarray) and ok.shape == (2, 3)


def test_ticker_window(tmp_path: Path) -> None:
    store = filled_store(f"sqlite:///{tmp_path / 'bars.db'}")
    model = fit_tiny_model()
    window = ticker_window(store, "SIG000", date(2015, 6, 6), model)
    assert window.window_end == date(2015, 6, 5) and window.closed and len(window.dates) == WINDOW
    np.testing.assert_array_equal(window.scaled, model.scale_rows(window.unscaled))
    assert window.unscaled.shape == (WINDOW, len(FEATURES)) and np.isfinite(window.unscaled).all()
    latest = ticker_window(store, "SIG000", None, model)
    assert latest.window_end == date(2016, 1, 1) and not latest.closed
    with pytest.raises(InsufficientHistoryError) as info:
        ticker_window(store, "SIG000", date(2015, 1, 26), model)
    assert (info.value.available, info.value.missing) == (2, 3)
    with pytest.raises(MissingPricesError):
        ticker_window(store, "NOPE", None, model)
    store.close()


def test_model_folder_version_and_loading(tmp_path: Path, saved_model: Path) -> None:
    settings = Settings(data_dir=tmp_path, model_dir=saved_model)
    loaded = load_model_dir(settings)
    assert loaded.version == folder_version(saved_model) and loaded.onnx_path is None
    assert loaded.metrics == {"accuracy": 0.41, "log_loss": 1.05} and loaded.model.feature_names == tuple(FEATURES)
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in saved_model.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    assert folder_version(copy) == loaded.version
    (copy / "metrics.json").write_text('{"accuracy": 0.5}')
    assert folder_version(copy) != loaded.version
    with pytest.raises(ModelNotReadyError):
        load_model_dir(Settings(data_dir=tmp_path, model_dir=tmp_path / "missing"))


@pytest.mark.parametrize("backend", ["eager", "onnx"])
def test_concurrency_changes_no_answer(tmp_path: Path, backend: str) -> None:
    """Sixty concurrent requests of 1-3 windows, batched however they arrive, get the answers each would get alone."""
    folder = tiny_model_dir(tmp_path / "bilstm", "bilstm", onnx=backend == "onnx")
    served = read_bundle(folder, name="t", version="1", alias="local")
    predict = make_backend(served).predict
    rng = np.random.default_rng(1)
    inputs = [rng.normal(size=(int(rng.integers(1, 4)), WINDOW, len(FEATURES))).astype(np.float32) for _ in range(60)]
    alone = [predict(x) for x in inputs]
    sizes: list[int] = []

    def counted(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        return predict(x)

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(counted, max_batch=16)
        return list(await asyncio.gather(*(batcher.predict(x) for x in inputs)))

    together = asyncio.run(scenario())
    assert max(sizes) > 3  # requests did share passes
    for got, expected in zip(together, alone, strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
