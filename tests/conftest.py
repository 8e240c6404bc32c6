"""Shared fixtures: tiny synthetic bars, fixed seeds, CPU-only torch, and the service-or-skip rule.

A test that needs a real service calls `require_service(name, probe)`: where the service does not answer it skips
with the reason, except when CI=true, where a missing service is a failure.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trendcast.data.synthetic import planted_signal_bars, random_walk_bars

IN_CI = os.environ.get("CI", "").lower() == "true"


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def require_service(name: str, probe: Callable[[], bool], how: str = "") -> None:
    """Skip (or fail under CI=true) when a real service is not reachable."""
    if probe():
        return
    message = f"{name} is not reachable{': ' + how if how else ''}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _seed_and_threads() -> Iterator[None]:
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture
def tmp_settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point TRENDCAST_DATA_DIR at a temp dir and clear other TRENDCAST_* variables."""
    for key in list(os.environ):
        if key.startswith("TRENDCAST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TRENDCAST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return tmp_path / "data"


@pytest.fixture
def rw_bars() -> pd.DataFrame:
    return random_walk_bars(n_tickers=3, n_days=300, seed=1)


@pytest.fixture
def signal_bars() -> pd.DataFrame:
    return planted_signal_bars(n_tickers=3, n_days=400, seed=2)
