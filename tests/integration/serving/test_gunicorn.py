"""Production mode: Gunicorn with two Uvicorn workers from gunicorn.conf.py, metrics aggregated across workers."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from tests.integration.serving.conftest import Server, base_env, start_server

pytestmark = pytest.mark.integration


def model_pids(metrics: str) -> set[str]:
    """Workers that report a loaded model (multiprocess gauges carry a pid label)."""
    return set(re.findall(r'trendcast_model_info\{[^}]*pid="(\d+)"[^}]*\} 1\.0', metrics))


def test_gunicorn_two_workers_share_metrics(serving_root: Path, tmp_path: Path) -> None:
    env = base_env(serving_root, TRENDCAST_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    server: Server = start_server(
        tmp_path, "gunicorn", env, command=[sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    )
    try:
        deadline = time.monotonic() + 60  # "ready" means one worker answers; wait for the second to load its model
        while len(model_pids(server.client.get("/metrics").text)) < 2:
            assert time.monotonic() < deadline, server.log_text()[-2000:]
            time.sleep(0.5)
        for _ in range(20):
            assert server.client.get("/api/v1/model/info", headers={"Connection": "close"}).status_code == 200
        text = server.client.get("/metrics").text
        served = re.search(
            r'trendcast_http_requests_total\{method="GET",route="/api/v1/model/info",status="200"\} '
            r"([0-9.]+)",
            text,
        )
        assert served is not None and float(served.group(1)) == 20.0  # summed over the workers' files
    finally:
        server.stop()
