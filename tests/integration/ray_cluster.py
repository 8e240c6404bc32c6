"""A real multi-node Ray cluster on this machine, for tests: `ray start --head` plus `ray start --address` nodes, each
in its own process group, torn down with os.killpg.

Never `ray stop`: it kills every Ray process on the machine, other users' clusters and test fixtures included. The
cluster is private in three ways: its own free ports (GCS, dashboard agents), its own short temp dir (Unix socket
paths are limited to ~107 characters) and its own auth token (`RAY_AUTH_MODE=token`, `RAY_AUTH_TOKEN`), set in this
process's environment for as long as the cluster runs. Ray 2.60 turns token auth on by itself when
~/.ray/auth_token exists, and a token file another user creates halfway through would lock the driver out. Ray
reads the auth settings once per process, so they are reloaded when set and again when restored.

    with ray_cluster(nodes=2) as cluster:
        RayExecutor(cluster.address).map(...)
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import port_open, require_service

RAY_BIN = Path(sys.executable).parent / "ray"
OBJECT_STORE_BYTES = 100 * 1024**2  # plenty for test data; Ray's default would reserve 30% of memory per node
STOP_GRACE_S = 5.0  # `ray start --block` drains for up to 30 s on SIGTERM; after this it is killed


@dataclass
class RayCluster:
    address: str  # 127.0.0.1:<GCS port>, for ray.init(address=...) and RayExecutor
    temp_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def log_tail(self, lines: int = 20) -> str:
        parts = []
        for log in sorted(self.temp_dir.glob("node*.log")):
            parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)


def ray_importable() -> bool:
    return importlib.util.find_spec("ray") is not None and RAY_BIN.is_file()  # no import: see _reload_auth


def require_ray() -> None:
    """Skip (or fail under CI=true) without Ray."""
    require_service("Ray", ray_importable, "pip install 'trendcast[distributed]'")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def ray_cluster(nodes: int = 2, cpus_per_node: int = 1, timeout_s: float = 120.0) -> Iterator[RayCluster]:
    """A head and `nodes - 1` worker nodes, all alive when the block starts; every process stopped after it."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {key: os.environ.get(key) for key in [*auth, "RAY_AUTH_TOKEN_PATH"]}
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.update(auth)
    _reload_auth()
    cluster = RayCluster(f"127.0.0.1:{free_port()}", temp_dir)
    try:
        cluster.processes.append(_start_node(cluster, 0, cpus_per_node, head=True))
        _wait_for_port(cluster, timeout_s)
        for index in range(1, nodes):
            cluster.processes.append(_start_node(cluster, index, cpus_per_node, head=False))
        wait_for_nodes(cluster, nodes, timeout_s)
        yield cluster
    finally:
        _stop(cluster)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reload_auth()


def _reload_auth() -> None:
    """Make this process's Ray read RAY_AUTH_* again (it caches them on first use)."""
    from ray._private.authentication_test_utils import reset_auth_token_state

    reset_auth_token_state()


def _start_node(cluster: RayCluster, index: int, cpus: int, *, head: bool) -> subprocess.Popen[bytes]:
    port = cluster.address.rsplit(":", 1)[1]
    where = ["--head", "--port", port, "--include-dashboard", "false"] if head else ["--address", cluster.address]
    args = [
        str(RAY_BIN),
        "start",
        *where,
        "--block",
        "--num-cpus",
        str(cpus),
        "--disable-usage-stats",
        "--temp-dir",
        str(cluster.temp_dir),
        "--object-store-memory",
        str(OBJECT_STORE_BYTES),
        "--dashboard-agent-listen-port",
        str(free_port()),  # the default (52365) would clash between two nodes on one machine
    ]
    log = (cluster.temp_dir / f"node{index}.log").open("wb")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ))


def _wait_for_port(cluster: RayCluster, timeout_s: float) -> None:
    host, port = cluster.address.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while not port_open(host, int(port), timeout=0.5):
        _check_alive(cluster)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the Ray head did not listen on {cluster.address} in {timeout_s:.0f} s\n{cluster.log_tail()}"
            )
        time.sleep(0.3)


def wait_for_nodes(cluster: RayCluster, nodes: int, timeout_s: float) -> None:
    """Connect, poll ray.nodes() until `nodes` are alive, disconnect (tests connect again through their code)."""
    import ray

    deadline = time.monotonic() + timeout_s
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        while (alive := sum(bool(n["Alive"]) for n in ray.nodes())) < nodes:
            _check_alive(cluster)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"only {alive} of {nodes} Ray nodes alive after {timeout_s:.0f} s\n{cluster.log_tail()}"
                )
            time.sleep(0.5)
    finally:
        ray.shutdown()


def _check_alive(cluster: RayCluster) -> None:
    for process in cluster.processes:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}\n{cluster.log_tail()}")


def _stop(cluster: RayCluster) -> None:
    """SIGTERM each node's process group (workers first), SIGKILL what is left after a grace period."""
    for process in reversed(cluster.processes):
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for process in reversed(cluster.processes):
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=30)
    shutil.rmtree(cluster.temp_dir, ignore_errors=True)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # the group is gone already
        os.killpg(process.pid, sig)
