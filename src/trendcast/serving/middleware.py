"""The service middleware: one pure-ASGI layer around the whole app (cheap: no BaseHTTPMiddleware task hop).

For every HTTP request it
1. takes the incoming X-Request-ID (when well-formed) or makes one, puts it in the logging context and echoes it;
2. refuses bodies over Settings.max_body_bytes with 413 BEFORE anything reads them: at once when Content-Length says
   so, and while streaming (chunked bodies) as soon as the running total passes the limit;
3. adds the security headers and the path's Content-Security-Policy (and X-RateLimit-* when a limit applied);
4. turns any exception that escaped the routes into the generic 500 error body (the traceback goes to the log
   line with the request id, never to the client);
5. records request count and latency by route template and status, and writes one JSON access log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trendcast.serving.errors import INTERNAL_MESSAGE, ApiError, error_body
from trendcast.serving.logging import ACCESS_LOGGER, request_id_var
from trendcast.serving.metrics import ServiceMetrics
from trendcast.serving.ratelimit import RateDecision
from trendcast.serving.security import API_CSP, REQUEST_ID_HEADER, request_id_from, security_headers

logger = logging.getLogger("trendcast.serving")
access_logger = logging.getLogger(ACCESS_LOGGER)

UNMATCHED_ROUTE = "<unmatched>"  # one label for every unknown path, so scanners cannot blow up metric cardinality


class BodyTooLargeError(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "body_too_large",
            f"The request body is larger than {limit} bytes; send less data (e.g. split a batch).",
            {"max_body_bytes": limit},
        )


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _rate_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    decision = scope.get("state", {}).get("rate_limit")
    if not isinstance(decision, RateDecision):
        return []
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
    ]


class ServiceMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        max_body_bytes: int,
        production: bool,
        csp_by_path: dict[str, str],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.static_headers = security_headers(production)
        self.csp_by_path = {path: csp.encode() for path, csp in csp_by_path.items()}
        self.default_csp = API_CSP.encode()
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(_header(scope, b"x-request-id"))
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = [500, 0]  # [status code, 1 once the response has started]
        extra = [
            (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
            *self.static_headers,
            (b"content-security-policy", self.csp_by_path.get(scope["path"], self.default_csp)),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0], status[1] = message["status"], 1
                message = {**message, "headers": [*message.get("headers", ()), *extra, *_rate_headers(scope)]}
            await send(message)

        try:
            await self._dispatch(scope, receive, send_with_headers)
        except Exception as exc:
            await self._fail(exc, status[1] == 1, send_with_headers)
        finally:
            self._record(scope, status[0], time.perf_counter() - started)
            request_id_var.reset(token)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                raise ApiError(400, "invalid_content_length", "The Content-Length header is not a number.")
            if int(length) > self.max_body_bytes:
                raise BodyTooLargeError(self.max_body_bytes)  # refused before a single body byte is read
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        return limited_receive

    async def _fail(self, exc: Exception, started: bool, send: Send) -> None:
        if isinstance(exc, ApiError):
            status, body, headers = exc.status_code, error_body(exc.code, exc.message, exc.details), exc.headers
        else:
            logger.error("unhandled %s", type(exc).__name__, exc_info=exc)
            status, body, headers = 500, error_body("internal_error", INTERNAL_MESSAGE), None
        if started:  # too late for a clean error response; the server closes the connection
            logger.error("error after the response started (%s)", type(exc).__name__)
            return
        await _send_json(send, status, body, (headers or {}).items())

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route_obj: Any = scope.get("route")
        route = getattr(route_obj, "path", UNMATCHED_ROUTE)
        method = scope["method"]
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # label lookups cost more than the increments; the key space is small and bounded
            children = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if access_logger.isEnabledFor(logging.INFO):
            client = scope.get("client")
            access_logger.info(
                "%s %s %d",
                method,
                scope["path"],
                status,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "client": client[0] if client else None,
                },
            )


async def _send_json(send: Send, status: int, body: bytes, headers: Iterable[tuple[str, str]]) -> None:
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
