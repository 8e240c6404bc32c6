"""API keys, request ids, CSP, the error mapping, the prediction cache and the rate limiter (in memory)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from datetime import date

import orjson
import pytest

from trendcast.config import Settings
from trendcast.errors import (
    ConfigError,
    DataError,
    InsufficientHistoryError,
    LeakageError,
    MissingPricesError,
    ModelError,
    ModelNotReadyError,
    SchemaError,
    SourceError,
)
from trendcast.serving.cache import CLOSED_TTL_S, OPEN_TTL_S, MemoryCache, cache_key, ttl_for
from trendcast.serving.errors import error_body, status_of
from trendcast.serving.logging import request_id_var
from trendcast.serving.ratelimit import RateLimiter, async_redis_uri
from trendcast.serving.security import (
    DOCS_ASSETS_DIR,
    REDOC_REMOTE_LOGO,
    KeyRing,
    basic_auth_password,
    docs_csp,
    redoc_html,
    redoc_script,
    request_id_from,
    security_headers,
    swagger_html,
)


def test_key_ring_compares_digests() -> None:
    ring = KeyRing(["alpha", "beta", ""])
    assert len(ring) == 2 and ring.matches("beta") and not ring.matches("gamma")
    assert not ring.matches(None) and not ring.matches("") and not KeyRing([])
    assert b"alpha" not in repr(ring._digests).encode()  # only digests are kept


def test_request_ids() -> None:
    assert request_id_from(b"abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in (b"has space", b"x" * 129, b"", None, "é".encode()):
        generated = request_id_from(bad)
        assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_docs_csp_allows_exactly_the_inline_swagger_script() -> None:
    page = swagger_html("trendcast").decode()
    script = page[page.rindex("<script>") + len("<script>") : page.rindex("</script>")]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = docs_csp(page.encode())
    assert f"'sha256-{digest}'" in policy and "'unsafe-eval'" not in policy
    assert f"script-src 'self' 'sha256-{digest}';" in policy  # nothing but this server and the bootstrap script
    assert "http" not in policy  # no CDN anywhere


def test_docs_pages_load_their_assets_from_this_server() -> None:
    for page in (swagger_html("trendcast"), redoc_html("trendcast")):
        assert b"http://" not in page and b"https://" not in page
        assert b"/api/docs-assets/" in page
    assert (DOCS_ASSETS_DIR / "swagger-ui-bundle.js").is_file() and (DOCS_ASSETS_DIR / "redoc.standalone.js").is_file()
    original = (DOCS_ASSETS_DIR / "redoc.standalone.js").read_bytes()
    served = redoc_script()
    assert b"cdn.redoc.ly" in original and b"cdn.redoc.ly" not in served  # the one remote image, pointed home
    assert len(served) - len(original) == len(b"/api/docs-assets/favicon.png") - len(REDOC_REMOTE_LOGO)


def test_basic_auth_password() -> None:
    encoded = base64.b64encode(b"anyone:s3cret:with-colon").decode()
    assert basic_auth_password(f"Basic {encoded}") == "s3cret:with-colon"
    assert basic_auth_password(f"basic {encoded}") == "s3cret:with-colon"
    for bad in (None, "", "Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"nopassword").decode()):
        assert basic_auth_password(bad) is None


def test_hsts_only_in_production() -> None:
    assert not any(name == b"strict-transport-security" for name, _ in security_headers(False))
    assert any(name == b"strict-transport-security" for name, _ in security_headers(True))


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (MissingPricesError("X"), 404, "unknown_ticker"),
        (InsufficientHistoryError("X", 60, 10, "2020-01-01"), 422, "insufficient_history"),
        (SchemaError("bad column"), 422, "invalid_data"),
        (DataError("bad"), 422, "invalid_data"),
        (SourceError("db down"), 503, "store_unavailable"),
        (ModelNotReadyError("none"), 503, "model_not_ready"),
        (ModelError("broken"), 500, "internal_error"),
        (ConfigError("bad"), 500, "internal_error"),
        (LeakageError("leak"), 500, "internal_error"),
    ],
)
def test_error_tree_maps_to_statuses(exc: Exception, status: int, code: str) -> None:
    assert status_of(exc) == (status, code)  # type: ignore[arg-type]


def test_error_body_carries_the_request_id() -> None:
    token = request_id_var.set("rid-1")
    try:
        body = orjson.loads(error_body("c", "m", {"x": 1}))
    finally:
        request_id_var.reset(token)
    assert body == {"error": {"code": "c", "message": "m", "request_id": "rid-1", "details": {"x": 1}}}


def test_memory_cache_expires_and_stays_bounded() -> None:
    now = {"t": 1000.0}

    async def scenario() -> None:
        cache = MemoryCache(max_entries=2, clock=lambda: now["t"])
        await cache.set("a", {"v": 1}, 10)
        assert await cache.get("a") == {"v": 1}
        now["t"] += 11
        assert await cache.get("a") is None
        for key in ("b", "c", "d"):
            await cache.set(key, {"v": key}, 100)
        assert await cache.get("b") is None and await cache.get("d") == {"v": "d"}

    asyncio.run(scenario())


def test_cache_keys_and_ttls() -> None:
    assert cache_key("v3", "SPY", date(2018, 12, 28)) == "v3|SPY|2018-12-28"
    assert cache_key("v3", "SPY", None) == "v3|SPY|latest"
    assert (ttl_for(True), ttl_for(False)) == (CLOSED_TTL_S, OPEN_TTL_S) and CLOSED_TTL_S > OPEN_TTL_S


def test_rate_limiter_in_memory() -> None:
    limiter = RateLimiter.from_settings(Settings(rate_limit="3/minute", rate_limit_predict="1/minute"))
    assert limiter is not None

    async def scenario() -> None:
        decisions = [await limiter.hit("/api/v1/tickers", "1.2.3.4") for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert decisions[2].remaining == 0 and 1 <= decisions[3].retry_after_s <= 60
        assert (await limiter.hit("/api/v1/tickers", "5.6.7.8")).allowed  # another client
        assert (await limiter.hit("/api/v1/model/info", "1.2.3.4")).allowed  # another route
        predict = [await limiter.hit("/api/v1/predict", "1.2.3.4") for _ in range(2)]
        assert [d.allowed for d in predict] == [True, False] and predict[1].limit == 1

    asyncio.run(scenario())


def test_rate_limit_settings() -> None:
    assert RateLimiter.from_settings(Settings(rate_limit_enabled=False)) is None
    with pytest.raises(ConfigError, match="TRENDCAST_RATE_LIMIT="):
        RateLimiter.from_settings(Settings(rate_limit="lots"))
    assert async_redis_uri("redis://h:6379/0") == "async+redis://h:6379/0"
