"""Two workers (two server processes) sharing one real Redis: rate limits, the prediction cache and reloads.

Needs Redis at 127.0.0.1:6379 (skipped with the reason where none answers; a failure under CI=true). Every run uses
its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import port_open, require_service
from tests.integration.serving.conftest import ADMIN_KEY, Server, base_env, start_server

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    require_service("Redis", lambda: port_open("127.0.0.1", 6379), "start redis-server on 127.0.0.1:6379")
    name = f"trendcast-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def pair(serving_root: Path, prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("redis-pair")
    env = base_env(serving_root, TRENDCAST_REDIS_URL=REDIS_URL, TRENDCAST_REDIS_KEY_PREFIX=prefix)
    first = start_server(tmp, "worker-1", env)
    second = start_server(tmp, "worker-2", env)  # same model folder, same Redis, same prefix
    yield first, second
    first.stop()
    second.stop()


def test_ready_checks_redis(pair: tuple[Server, Server]) -> None:
    assert pair[0].client.get("/ready").json()["checks"] == {"model": True, "store": True, "redis": True}


def test_rate_limit_is_shared(pair: tuple[Server, Server], prefix: str) -> None:
    first, second = pair
    statuses = [first.client.get("/api/v1/tickers").status_code for _ in range(60)]
    statuses += [second.client.get("/api/v1/tickers").status_code for _ in range(40)]
    assert statuses == [200] * 100
    assert first.client.get("/api/v1/tickers").status_code == 429  # the 101st, counted across both workers
    assert second.client.get("/api/v1/tickers").status_code == 429
    assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{prefix}:ratelimit*"))


def test_cache_is_shared(pair: tuple[Server, Server]) -> None:
    first, second = pair
    body = {"ticker": "SIG001", "as_of": "2015-11-02"}
    computed = first.client.post("/api/v1/predict", json=body).json()
    reused = second.client.post("/api/v1/predict", json=body).json()
    assert computed["cached"] is False and reused["cached"] is True
    assert reused["probabilities"] == computed["probabilities"]
    assert 'trendcast_prediction_cache_total{result="hit"} 1.0' in second.client.get("/metrics").text


def test_a_reload_reaches_the_other_worker(pair: tuple[Server, Server], serving_root: Path) -> None:
    first, second = pair
    live = Path(first.env["TRENDCAST_MODEL_DIR"])
    old = second.client.get("/api/v1/model/info").json()["version"]
    shutil.rmtree(live)
    shutil.copytree(serving_root / "model-b", live)
    new = first.client.post("/api/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}).json()["model"]["version"]
    assert new != old
    deadline = time.monotonic() + 15
    while second.client.get("/api/v1/model/info").json()["version"] != new:
        assert time.monotonic() < deadline, "the second worker did not follow the reload"
        time.sleep(0.2)
