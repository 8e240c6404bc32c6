"""Fuzz every body-taking route: whatever the body, the answer is below 500, in the one error shape, with a request id
and no traceback text.

Hypothesis draws JSON of any shape (deep nesting, duplicate-looking keys, huge and odd numbers, strings where
numbers go), near-valid requests with one field broken, and raw bytes, under JSON and non-JSON content types.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.serving.support import FEATURES, WINDOW, filled_store, tiny_model_dir
from trendcast.config import Settings
from trendcast.serving.app import create_app

ROUTES = ("/api/v1/predict", "/api/v1/predict/batch", "/api/v1/explain")
DEPTHS = (3, 40, 300, 700, 1100)  # around orjson's limits: 254 levels to write JSON, 1024 to read it


Post = Callable[[str, bytes, dict[str, str]], httpx.Response]


@pytest.fixture(scope="module")
def post(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Post]:
    """POST to the app in-process (its lifespan running in a background event loop), from synchronous code."""
    root = tmp_path_factory.mktemp("fuzz")
    config = Settings(
        data_dir=root / "data",
        model_dir=tiny_model_dir(root / "model", "logreg"),
        rate_limit_enabled=False,
        log_level="ERROR",
    )
    filled_store(config.resolved_database_url).close()
    app = create_app(config)
    with start_blocking_portal() as portal:
        stack = AsyncExitStack()

        async def start() -> httpx.AsyncClient:
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            return await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://test"))

        client = portal.call(start)
        yield lambda route, body, headers: portal.call(lambda: client.post(route, content=body, headers=headers))
        portal.call(stack.aclose)


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner))
numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(min_value=-(2**70), max_value=2**70)


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()  # the standard library writes integers of any size


def _deep(depth: int, field: str, leaf: str) -> bytes:
    """A body with one field nested `depth` levels (written as text: deeper than encoders go)."""
    return ('{"ticker": "SIG000", ' + json.dumps(field) + ": " + "[" * depth + leaf + "]" * depth + "}").encode()


near_valid = st.one_of(
    st.fixed_dictionaries(
        {"ticker": st.sampled_from(["SIG000", "sig001", "ZZZZ", "^GSPC"]) | json_values},
        optional={"as_of": st.dates().map(str) | json_values, "top_k": st.integers() | json_values},
    ),
    st.builds(
        lambda rows, value: {"sequence": [[value] * rows[1] for _ in range(rows[0])]},
        st.tuples(st.integers(0, WINDOW + 2), st.integers(0, len(FEATURES) + 2)),
        numbers | st.text(max_size=3) | st.none(),
    ),
    st.builds(lambda items: {"items": items}, st.lists(json_values, max_size=3)),
)
bodies = st.one_of(
    json_values.map(_encode),
    near_valid.map(_encode),
    st.builds(
        _deep,
        st.sampled_from(DEPTHS),
        st.sampled_from(["ticker", "as_of", "top_k", "sequence"]),
        st.sampled_from(['"x"', "1.5", '{"a": 1}']),
    ),
    st.binary(max_size=200),
    st.builds(
        lambda key, a, b: f'{{"{key}": {a}, "{key}": {b}}}'.encode(),
        st.sampled_from(["ticker", "sequence", "top_k"]),
        st.sampled_from(['"SIG000"', "1", "[[1.0]]"]),
        st.sampled_from(['"SIG001"', "null"]),
    ),
)
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None])


def assert_clean_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert "Traceback" not in response.text
    request_id = response.headers["x-request-id"]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "request_id", "details"}
        assert error["request_id"] == request_id and error["code"] and error["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, content_type=content_types)
@pytest.mark.parametrize("route", ROUTES)
def test_no_body_gets_a_5xx(post: Post, route: str, body: bytes, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert_clean_answer(post(route, body, headers))


@pytest.mark.parametrize("route", ROUTES)
def test_no_nesting_gets_a_5xx(post: Post, route: str) -> None:
    """Every field at every depth around the parser's limits (the case the fuzzing above draws too rarely)."""
    for depth in DEPTHS:
        for field in ("ticker", "as_of", "top_k", "sequence", "items"):
            for leaf in ('"x"', "1.5", '{"a": 1}'):
                assert_clean_answer(post(route, _deep(depth, field, leaf), {"Content-Type": "application/json"}))
