"""trendcast.ray_runtime without starting Ray: the object store size and the signal handlers a Ray run leaves."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

from trendcast.ray_runtime import MIN_OBJECT_STORE, init_kwargs, object_store_bytes, signal_handlers_kept


def test_signal_handlers_are_restored_after_a_run_that_replaces_them() -> None:
    def swallow(signum: int, frame: FrameType | None) -> None:  # what Ray Tune / Train leave behind
        pass

    before = signal.getsignal(signal.SIGINT)
    with signal_handlers_kept():
        signal.signal(signal.SIGINT, swallow)
        assert signal.getsignal(signal.SIGINT) is swallow
    assert signal.getsignal(signal.SIGINT) is before


def test_object_store_fits_shared_memory(tmp_path: Path) -> None:
    gib = 1024**3
    fits = object_store_bytes(str(tmp_path), memory_bytes=4 * gib)
    assert MIN_OBJECT_STORE <= fits <= int(0.3 * 4 * gib)
    assert object_store_bytes(str(tmp_path / "missing"), memory_bytes=4 * gib) == int(0.3 * 4 * gib)


def test_a_private_instance_never_joins_another_cluster() -> None:
    private = init_kwargs(None, num_cpus=2)
    assert private["address"] == "local" and private["include_dashboard"] is False and private["num_cpus"] == 2
    assert init_kwargs("auto")["address"] == "auto" and "include_dashboard" not in init_kwargs("auto")
