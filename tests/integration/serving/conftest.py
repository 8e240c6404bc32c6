"""Real servers for the serving integration tests: uvicorn (or Gunicorn) subprocesses on free 127.0.0.1 ports.

Each server gets its settings only through TRENDCAST_* environment variables, exactly like a deployment: a temp
data dir whose SQLite store holds two synthetic tickers, and TRENDCAST_MODEL_DIR pointing at a real saved model
(logistic regression, trained in a fraction of a second by the fixture). Servers are started with
`python -m trendcast.serving.commands` (what `trendcast serve` runs) and stopped with SIGTERM after their module.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.unit.serving.support import filled_store, tiny_model_dir

ADMIN_KEY = "admin-key-for-tests-0123456789"
USER_KEY = "user-key-for-tests-0123456789"
REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running service process and an HTTP client for it."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    env: dict[str, str]
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=30)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_shows(self, text: str, within: float = 10.0) -> bool:
        """Whether the log shows `text` within `within` seconds (an access line is written after its response,
        so a test can read the file before it lands)."""
        deadline = time.monotonic() + within
        while text not in self.log_text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True


def start_server(
    tmp: Path, name: str, env: dict[str, str], command: list[str] | None = None, port: int | None = None
) -> Server:
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRENDCAST_")}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    full_env.update({"TRENDCAST_LOG_LEVEL": "INFO", "MLFLOW_DISABLE_TELEMETRY": "true", **env})
    args = command or [sys.executable, "-m", "trendcast.serving.commands", "--host", "127.0.0.1", "--port", str(port)]
    if command is not None:
        full_env["TRENDCAST_PORT"] = str(port)
    log = tmp / f"{name}.log"
    process = subprocess.Popen(
        args, cwd=REPO, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Server(process, f"http://127.0.0.1:{port}", log, full_env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server {name} exited with {process.returncode}:\n{server.log_text()[-3000:]}")
        try:
            if httpx.get(f"{server.base_url}/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    pytest.fail(f"server {name} not ready in 90 s:\n{server.log_text()[-3000:]}")


@pytest.fixture(scope="session")
def serving_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with a filled store and two saved models (different seeds, so different versions)."""
    root = tmp_path_factory.mktemp("serving")
    store = filled_store(f"sqlite:///{(root / 'data' / 'trendcast.db').resolve()}")
    store.close()
    tiny_model_dir(root / "model-a", "logreg", seed=0)
    tiny_model_dir(root / "model-b", "logreg", seed=1, metrics='{"accuracy": 0.44}')
    return root


def base_env(root: Path, model: str = "model-a", **extra: str) -> dict[str, str]:
    """The environment of a server over `root`, serving a COPY of `model` (tests may overwrite it to reload)."""
    live = root / f"live-{model}-{time.monotonic_ns()}"
    shutil.copytree(root / model, live)
    return {
        "TRENDCAST_DATA_DIR": str(root / "data"),
        "TRENDCAST_MODEL_DIR": str(live),
        "TRENDCAST_ADMIN_API_KEYS": f'["{ADMIN_KEY}"]',
        **extra,
    }


@pytest.fixture(scope="module")
def server(serving_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The main server: in-process limits raised out of the way, an admin key, no user keys."""
    tmp = tmp_path_factory.mktemp("main-server")
    running = start_server(
        tmp, "main", base_env(serving_root, TRENDCAST_RATE_LIMIT="100000/minute", TRENDCAST_MAX_BODY_BYTES="65536")
    )
    yield running
    running.stop()
