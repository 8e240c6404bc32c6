"""What a hostile client found (issue 15, the HTTP items), each against a real server process.

Deep JSON, duplicate keys, wrong or missing Content-Type, compressed bodies, a Host-header redirect, huge headers,
slow and abandoned bodies, and spoofed X-Forwarded-For; plus what the HTTP server answers before the app sees a
request (documented in docs/api.md, so it is pinned here).
"""

from __future__ import annotations

import gzip
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.serving.conftest import Server, base_env, start_server
from tests.unit.serving.support import FEATURES, WINDOW

pytestmark = pytest.mark.integration

ROUTES = ("/api/v1/predict", "/api/v1/predict/batch", "/api/v1/explain")


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "request_id", "details"}
    assert error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def nested(depth: int) -> object:
    value: object = "MSFT"
    for _ in range(depth):
        value = [value]
    return value


def raw_exchange(server: Server, request: bytes, *, wait: float = 5.0) -> bytes:
    """Send raw bytes on one connection and return whatever comes back before the server closes or `wait` ends."""
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
        conn.sendall(request)
        chunks: list[bytes] = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


@pytest.fixture(scope="module")
def strict_server(serving_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a 1 s body timeout and a tight limit (3/minute), no trusted proxies."""
    env = base_env(serving_root, TRENDCAST_BODY_TIMEOUT_SECONDS="1", TRENDCAST_RATE_LIMIT="3/minute")
    running = start_server(tmp_path_factory.mktemp("strict"), "strict", env)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def proxied_server(serving_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that names 127.0.0.1 as its proxy (as the ALB's subnets are named in AWS)."""
    env = base_env(serving_root, TRENDCAST_RATE_LIMIT="3/minute", TRENDCAST_TRUSTED_PROXIES='["127.0.0.1"]')
    running = start_server(tmp_path_factory.mktemp("proxied"), "proxied", env)
    yield running
    running.stop()


# -- 4. deep JSON outside `sequence` --------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["ticker", "as_of", "top_k"])
@pytest.mark.parametrize("route", ROUTES)
def test_deeply_nested_fields_get_a_4xx(server: Server, route: str, field: str) -> None:
    item = {"ticker": "SIG000", field: nested(300)}
    body = {"items": [item]} if route.endswith("batch") else item
    assert_error(server.client.post(route, json=body), 422)


@pytest.mark.parametrize("prefix", ["[1.0, ", '["x\\"y", '])  # hidden behind a number; behind an escaped quote
def test_depth_hidden_inside_a_list_gets_a_4xx(server: Server, prefix: str) -> None:
    deep = "[" * 600 + "]" * 600
    body = '{"ticker": ' + prefix + deep + "]}"
    response = server.client.post("/api/v1/predict", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 422)


# -- 12. duplicate keys ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        '{"ticker":"ZZZZ","ticker":"SIG000"}',
        '{"sequence":[[1.0]],"sequence":[[2.0]]}',
        '{"items":[{"ticker":"SIG000","as_of":"2020-01-01","as_of":"2020-02-03"}]}',
        '{"ticker":"SIG\\"0","ticker":"SIG000"}',  # an escaped quote sends it down the exact path
    ],
)
def test_duplicate_keys_are_refused(server: Server, body: str) -> None:
    route = "/api/v1/predict/batch" if body.startswith('{"items"') else "/api/v1/predict"
    response = server.client.post(route, content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "duplicate_key")


def test_bodies_without_duplicates_still_work(server: Server) -> None:
    ok = server.client.post("/api/v1/predict", json={"ticker": "SIG000"})
    assert ok.status_code == 200, ok.text
    escaped = '{"ticker": "SIG000", "as_of": null}'
    assert server.client.post(
        "/api/v1/predict", content=escaped, headers={"Content-Type": "application/json"}
    ).is_success


# -- 10. media types and encodings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["text/plain", "image/png", None, "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("route", ROUTES)
def test_only_json_is_read(server: Server, route: str, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = server.client.post(route, content=b'{"ticker": "SIG000"}', headers=headers)
    assert_error(response, 415, "unsupported_media_type")


def test_json_with_a_charset_is_json(server: Server) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert server.client.post("/api/v1/predict", content=b'{"ticker": "SIG000"}', headers=headers).status_code == 200


def test_compressed_bodies_are_refused_not_misread(server: Server) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = server.client.post("/api/v1/predict", content=gzip.compress(b'{"ticker": "SIG000"}'), headers=headers)
    error = assert_error(response, 415, "unsupported_content_encoding")
    assert "NaN" not in str(error["message"])


# -- 11. no redirect that follows the Host header ----------------------------------------------------------------------
def test_trailing_slash_does_not_redirect_to_the_host_header(server: Server) -> None:
    response = server.client.get("/health/", headers={"Host": "evil.example"})
    assert response.status_code == 404 and "location" not in response.headers
    assert_error(response, 404, "not_found")


# -- 9. header size ------------------------------------------------------------------------------------------------------
def test_huge_headers_get_431(server: Server) -> None:
    response = server.client.get("/api/v1/tickers", headers={"X-Padding": "a" * 200_000})
    assert_error(response, 431, "headers_too_large")


# -- 6. slow and abandoned bodies ----------------------------------------------------------------------------------------
def _partial_post(length: int, sent: bytes) -> bytes:
    head = (
        f"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    return head.encode() + sent


def test_a_body_shorter_than_its_length_times_out_with_408(strict_server: Server) -> None:
    started = time.monotonic()
    answer = raw_exchange(strict_server, _partial_post(100, b'{"ticker":'), wait=10)
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"body_timeout"' in answer and b"x-request-id" in answer.lower()
    assert elapsed < 5, f"the connection was held {elapsed:.1f} s"


def test_an_abandoned_body_is_not_a_server_error(strict_server: Server) -> None:
    port = int(strict_server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(_partial_post(100, b'{"ticker":'))
        time.sleep(0.3)  # the client gives up before the body timeout
    time.sleep(0.5)
    metrics = strict_server.client.get("/metrics").text
    assert not re.search(r'trendcast_http_requests_total\{[^}]*status="500"', metrics)
    assert re.search(r'trendcast_http_requests_total\{[^}]*route="/api/v1/predict",status="499"\} 1', metrics)
    assert strict_server.log_shows("client disconnected")
    assert "Traceback" not in strict_server.log_text()


# -- 7. a batch pays per item --------------------------------------------------------------------------------------------
def test_a_batch_is_charged_by_its_items(strict_server: Server) -> None:
    """3 per minute: a 2-item batch uses 2; the next 2-item batch needs 2 more but 1 is left."""
    two = {"items": [{"ticker": "SIG000"}, {"ticker": "SIG001"}]}
    assert strict_server.client.post("/api/v1/predict/batch", json=two).status_code == 200
    refused = strict_server.client.post("/api/v1/predict/batch", json=two)
    error = assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1 and error["details"]["cost"] == 1  # type: ignore[index]


# -- 5. whatever /predict accepts, /explain answers --------------------------------------------------------------------
@pytest.mark.parametrize("value", [1e6, -1e6, 3.4e38, -3.4e38, 1e-45])
def test_explain_answers_every_window_predict_accepts(server: Server, value: float) -> None:
    body = {"sequence": [[value] * len(FEATURES)] * WINDOW}
    assert server.client.post("/api/v1/predict", json=body).status_code == 200
    explained = server.client.post("/api/v1/explain", json=body)
    assert explained.status_code == 200, explained.text
    assert explained.json()["explanation"]["sentence"]


# -- 14. batch errors name the item ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bad", "status", "code"),
    [
        ({"sequence": [[0.1, 0.2]]}, 422, "invalid_sequence"),  # a shape error
        ({"sequence": [[0.1] * len(FEATURES)] * (WINDOW - 1) + [["x"] * len(FEATURES)]}, 422, "invalid_sequence"),
        ({"ticker": "SIG000", "as_of": "2015-02-30"}, 422, "validation_error"),
        ({"ticker": "ZZZZ"}, 404, "unknown_ticker"),
    ],
)
def test_batch_errors_name_the_failing_item(server: Server, bad: dict[str, object], status: int, code: str) -> None:
    body = {"items": [{"ticker": "SIG000"}, bad]}
    error = assert_error(server.client.post("/api/v1/predict/batch", json=body), status, code)
    assert str(error["message"]).startswith("items[1]: ")
    assert error["details"]["item"] == 1  # type: ignore[index]


# -- 8. forwarded headers -----------------------------------------------------------------------------------------------
def test_spoofed_forwarded_for_does_not_get_a_fresh_bucket(strict_server: Server) -> None:
    statuses = [
        strict_server.client.get("/api/v1/tickers", headers={"X-Forwarded-For": f"10.9.8.{i}"}).status_code
        for i in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    assert strict_server.log_shows('"route":"/api/v1/tickers","status":429')  # the 4th request's line landed
    assert "10.9.8." not in strict_server.log_text()  # the access log records the real peer


def test_a_named_proxy_is_believed(proxied_server: Server) -> None:
    statuses = [
        proxied_server.client.get("/api/v1/tickers", headers={"X-Forwarded-For": f"10.9.8.{i}"}).status_code
        for i in range(4)
    ]
    assert statuses == [200, 200, 200, 200]  # four different clients behind the proxy
    assert proxied_server.log_shows('"client":"10.9.8.3"')


# -- 13. what the HTTP server answers before the app sees the request -----------------------------------------------------
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n",
        b"BREW /api/v1/predict HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_malformed_http_is_refused_by_the_server_with_400(server: Server, request_bytes: bytes) -> None:
    """The HTTP parser (httptools) refuses these before any app code runs: a plain 400, documented in docs/api.md.
    No 5xx, and the connection is closed."""
    answer = raw_exchange(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_a_known_method_on_the_wrong_route_gets_the_error_shape(server: Server) -> None:
    assert_error(server.client.request("PATCH", "/api/v1/predict"), 405, "method_not_allowed")


def test_a_well_formed_request_still_works(server: Server) -> None:
    assert (
        server.client.post(
            "/api/v1/predict", content=orjson.dumps({"ticker": "SIG000"}), headers={"Content-Type": "application/json"}
        ).status_code
        == 200
    )
