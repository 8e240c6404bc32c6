"""Rate limiting (in-process, the default 100/minute) and API keys on every /api route, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.serving.conftest import ADMIN_KEY, USER_KEY, Server, base_env, start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secured(serving_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Default limits (100/minute per client and route), a user key file and an admin key."""
    tmp = tmp_path_factory.mktemp("secured")
    key_file = tmp / "api_keys"
    key_file.write_text(f"{USER_KEY}\n\nsecond-user-key\n")
    running = start_server(
        tmp,
        "secured",
        base_env(serving_root, TRENDCAST_API_KEYS_FILE=str(key_file), TRENDCAST_RATE_LIMIT_PREDICT="5/minute"),
    )
    yield running
    running.stop()


def test_every_api_route_needs_a_key(secured: Server) -> None:
    missing = secured.client.get("/api/v1/model/info")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "X-API-Key"
    assert secured.client.get("/api/v1/model/info", headers={"X-API-Key": "nope"}).status_code == 401
    assert secured.client.get("/api/v1/model/info", headers={"X-API-Key": USER_KEY}).status_code == 200
    assert secured.client.get("/api/v1/model/info", headers={"X-API-Key": "second-user-key"}).status_code == 200
    assert secured.client.get("/api/v1/model/info", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
    assert secured.client.get("/health").status_code == 200  # probes need no key
    assert secured.client.get("/metrics").status_code == 200


def test_a_user_key_is_not_an_admin_key(secured: Server) -> None:
    response = secured.client.post("/api/v1/admin/reload", headers={"X-API-Key": USER_KEY})
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert secured.client.post("/api/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_the_101st_request_in_a_minute_gets_429(secured: Server) -> None:
    headers = {"X-API-Key": USER_KEY}
    statuses = [secured.client.get("/api/v1/tickers", headers=headers).status_code for _ in range(100)]
    assert statuses == [200] * 100
    rejected = secured.client.get("/api/v1/tickers", headers=headers)
    assert rejected.status_code == 429
    error = rejected.json()["error"]
    assert error["code"] == "rate_limited" and error["details"]["limit"] == 100
    assert 1 <= int(rejected.headers["retry-after"]) <= 60
    assert rejected.headers["x-ratelimit-remaining"] == "0"
    # limits are per route: another route still answers
    assert secured.client.get("/api/v1/model/info", headers=headers).status_code == 200
    assert 'trendcast_rate_limit_rejections_total{route="/api/v1/tickers"} 1.0' in secured.client.get("/metrics").text


def test_predict_has_its_own_limit(secured: Server) -> None:
    headers = {"X-API-Key": USER_KEY}
    body = {"ticker": "SIG000", "as_of": "2015-08-03"}
    statuses = [secured.client.post("/api/v1/predict", json=body, headers=headers).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
