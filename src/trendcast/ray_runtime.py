"""Ray, behind one module: start or join a cluster with settings that suit small machines, and say how to install
the optional extra when it is missing (`pip install 'trendcast[distributed]'`).

Where Ray runs is `Settings.ray_address` (`TRENDCAST_RAY_ADDRESS`):
- unset: a private Ray instance on this machine, started for the call and stopped after it;
- `auto`: the cluster already running on this machine (`ray start --head`);
- `ray://host:10001`: a remote cluster through Ray Client (needs `ray[client]`, which `[distributed]` lacks).

Pitfalls handled for a private instance (they cost real memory on a 2-core machine):
- it is started with `address="local"`: a bare `ray.init()` joins any cluster it finds running on the machine
  (`ray start` clusters of other users and test fixtures included), so a "private" run would land on theirs;
- the dashboard is off (`include_dashboard=False`): each of its modules costs ~150 MB resident;
- the object store is sized to fit /dev/shm, so Ray never falls back to a (much slower) store under /tmp;
- Ray Train's coordinator is given no CPU (`TRAINER_RESOURCES`): by default it reserves one, and on two cores a
  two-worker run would wait forever (see trendcast.models.distributed).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from trendcast.errors import ConfigError

INSTALL_HINT = "Ray is not installed: pip install 'trendcast[distributed]' (or use the local path without --ray)"
TRAINER_RESOURCES = {"CPU": 0}
MIN_OBJECT_STORE = 80 * 1024**2  # Ray refuses less than 75 MiB
DEFAULT_OBJECT_STORE_FRACTION = 0.3  # Ray's own default share of memory


def require_ray() -> ModuleType:
    """The `ray` module, or a ConfigError naming the extra to install."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - the dev install has Ray
        raise ConfigError(INSTALL_HINT) from exc
    return ray


def _require_ray_client() -> None:
    """A ConfigError naming the extra when Ray Client's dependencies (grpcio) are missing."""
    from ray._private.utils import get_ray_client_dependency_error

    if get_ray_client_dependency_error() is not None:
        raise ConfigError(
            "a ray:// address needs Ray Client: pip install 'ray[client]==2.60.0' (or use TRENDCAST_RAY_ADDRESS=auto "
            "on a node of the cluster)"
        )


def object_store_bytes(shm_path: str = "/dev/shm", memory_bytes: int | None = None) -> int:
    """An object store that fits in /dev/shm (80% of its free space at most, and Ray's default share of memory
    at most), so Ray keeps its objects in shared memory instead of falling back to /tmp."""
    memory = memory_bytes if memory_bytes is not None else _total_memory()
    wanted = int(DEFAULT_OBJECT_STORE_FRACTION * memory)
    try:
        free = shutil.disk_usage(shm_path).free
    except OSError:
        return max(MIN_OBJECT_STORE, wanted)
    return max(MIN_OBJECT_STORE, min(wanted, int(0.8 * free)))


def _total_memory() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def init_kwargs(address: str | None, num_cpus: int | None = None) -> dict[str, object]:
    """`ray.init` arguments: a private instance sized for this machine, or the address of a cluster to join."""
    quiet: dict[str, object] = {"log_to_driver": False, "configure_logging": False}
    if address:
        return {"address": address, **quiet}
    return {
        "address": "local",  # never join a cluster found on the machine (RAY_ADDRESS or `ray start`)
        "num_cpus": num_cpus or os.cpu_count() or 1,
        "include_dashboard": False,
        "object_store_memory": object_store_bytes(),
        **quiet,
    }


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray connected for the block: joins a running session as is, else starts (or connects to) one and shuts it
    down afterwards. Yields the `ray` module."""
    ray = require_ray()
    with signal_handlers_kept():
        if ray.is_initialized():
            yield ray
            return
        with _session(ray, address, num_cpus):
            yield ray


@contextmanager
def signal_handlers_kept() -> Iterator[None]:
    """Restore this process's SIGINT and SIGTERM handlers after the block. Ray Tune and Ray Train install their own
    SIGINT handler (to stop a run gracefully) and leave it behind; after `trendcast tune` or `--workers` in a
    long-lived process (a test session, a notebook, the scheduler) Ctrl-C would otherwise stop raising
    KeyboardInterrupt."""
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            for sig, handler in kept.items():
                if handler is not None:
                    signal.signal(sig, handler)


@contextmanager
def _session(ray: ModuleType, address: str | None, num_cpus: int | None) -> Iterator[None]:
    """Start (or connect to) Ray for the block and shut it down afterwards."""
    if address and address.startswith("ray://"):
        _require_ray_client()
    try:
        ray.init(**init_kwargs(address, num_cpus))
    except ConnectionError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address!r}: {exc}. Start one with `ray start --head`, or unset "
            "TRENDCAST_RAY_ADDRESS to run a private instance on this machine."
        ) from exc
    try:
        yield
    finally:
        ray.shutdown()
