"""A real `mlflow server` for integration tests: its backend store in a fresh database of the real PostgreSQL at
127.0.0.1:5432 (dropped afterwards) or in SQLite, its artifacts proxied by the server (`--serve-artifacts`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

from tests.conftest import port_open, require_service

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mlflow_server(backend_uri: str, artifacts: Path) -> Iterator[str]:
    """`mlflow server` on a free port; yields its URL once /health answers (it takes ~20 s to start)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        require_service("mlflow server", lambda: proc.poll() is None and httpx.get(f"{url}/health").is_success)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; yields its SQLAlchemy URL and drops it afterwards."""
    require_service("PostgreSQL", lambda: port_open("127.0.0.1", 5432), "start it or set up trust auth on 5432")
    name = f"mlflow_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def postgres_mlflow_server(tmp_path: Path) -> Iterator[str]:
    with postgres_database() as url, mlflow_server(url, tmp_path / "server-artifacts") as server:
        yield server
