"""The service middleware: one pure-ASGI layer around the whole app (cheap: no BaseHTTPMiddleware task hop).

For every HTTP request it
1. takes the incoming X-Request-ID (when well-formed) or makes one, puts it in the logging context and echoes it;
2. refuses bodies over Settings.max_body_bytes with 413 BEFORE anything reads them: at once when Content-Length says
   so, and while streaming (chunked bodies) as soon as the running total passes the limit; a body that stops
   arriving for Settings.body_timeout_seconds gets 408; request headers over Settings.max_header_bytes get 431;
   a body on /api/ that is not declared `application/json` gets 415 (the predict routes also take the binary
   window types of `serving.binary`), and so does any Content-Encoding but identity (so a cross-origin "simple"
   POST cannot reach the API);
3. adds the security headers (keeping a Cache-Control the response set itself, e.g. the dashboard's static files)
   and the path's Content-Security-Policy: `csp_by_path` maps exact paths, or prefixes written with a trailing `*`
   ("/static/*"); anything else gets the JSON API's policy (and X-RateLimit-* when a limit applied);
4. turns any exception that escaped the routes into the generic 500 error body (the traceback goes to the log
   line with the request id, never to the client); a client that disconnects mid-request is recorded as 499
   (nginx's "client closed request"), not as a server error, and logs no traceback;
5. records request count and latency by route template and status, and writes one JSON access log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trendcast.serving.binary import BINARY_ROUTES, BINARY_TYPES
from trendcast.serving.errors import INTERNAL_MESSAGE, ApiError, error_body
from trendcast.serving.logging import ACCESS_LOGGER, request_id_var
from trendcast.serving.metrics import ServiceMetrics
from trendcast.serving.ratelimit import RateDecision
from trendcast.serving.security import API_CSP, REQUEST_ID_HEADER, request_id_from, security_headers

logger = logging.getLogger("trendcast.serving")
access_logger = logging.getLogger(ACCESS_LOGGER)

UNMATCHED_ROUTE = "<unmatched>"  # one label for every unknown path, so scanners cannot blow up metric cardinality
CLIENT_CLOSED = 499  # nginx's status for a request the client abandoned; never sent, only recorded
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = frozenset({b"application/json"})
WINDOW_TYPES = JSON_TYPES | {t.encode() for t in BINARY_TYPES}  # what the predict routes read (serving.binary)


@dataclass(frozen=True)
class RequestLimits:
    """What the middleware refuses before a route runs (from Settings)."""

    max_body_bytes: int
    max_header_bytes: int = 16_384
    body_timeout_seconds: float = 10.0


class BodyTimeoutError(ApiError):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            "body_timeout",
            f"The request body stopped arriving for {seconds:g} s (shorter than its Content-Length?); send it whole.",
            headers={"Connection": "close"},
        )


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


def _has_cache_control(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(key.lower() == b"cache-control" for key, _ in headers)


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
        limits: RequestLimits,
        production: bool,
        csp_by_path: dict[str, str],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.limits = limits
        self.max_body_bytes = limits.max_body_bytes
        self.static_headers = security_headers(production)
        self.csp_by_path = {path: csp.encode() for path, csp in csp_by_path.items() if not path.endswith("*")}
        self.csp_by_prefix = tuple((path[:-1], csp.encode()) for path, csp in csp_by_path.items() if path.endswith("*"))
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
            (b"content-security-policy", self._csp(scope["path"])),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0], status[1] = message["status"], 1
                own = message.get("headers", ())
                added = [h for h in extra if h[0] != b"cache-control"] if _has_cache_control(own) else extra
                message = {**message, "headers": [*own, *added, *_rate_headers(scope)]}
            await send(message)

        try:
            await self._dispatch(scope, receive, send_with_headers)
        except Exception as exc:
            failed = await self._fail(exc, status[1] == 1, send_with_headers)
            if status[1] == 0:
                status[0] = failed
        finally:
            self._record(scope, status[0], time.perf_counter() - started)
            request_id_var.reset(token)

    def _csp(self, path: str) -> bytes:
        exact = self.csp_by_path.get(path)
        if exact is not None:
            return exact
        for prefix, csp in self.csp_by_prefix:
            if path.startswith(prefix):
                return csp
        return self.default_csp

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        header_bytes = sum(len(key) + len(value) for key, value in scope["headers"])
        if header_bytes > self.limits.max_header_bytes:
            raise ApiError(
                431,
                "headers_too_large",
                f"The request headers total {header_bytes} bytes; at most {self.limits.max_header_bytes} are read.",
                {"max_header_bytes": self.limits.max_header_bytes},
            )
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                raise ApiError(400, "invalid_content_length", "The Content-Length header is not a number.")
            if int(length) > self.max_body_bytes:
                raise BodyTooLargeError(self.max_body_bytes)  # refused before a single body byte is read
        has_body = (length is not None and length != b"0") or _header(scope, b"transfer-encoding") is not None
        if has_body and scope["method"] in BODY_METHODS and scope["path"].startswith("/api/"):
            _check_media_type(scope)
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        """`receive` that counts body bytes against the limit and gives each body chunk `body_timeout_seconds` to
        arrive; once the body is complete, later calls (a response waiting for a disconnect) are not timed."""
        received = 0
        complete = False
        limit = self.max_body_bytes
        timeout = self.limits.body_timeout_seconds

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout(timeout):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeoutError(timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
                complete = not message.get("more_body", False)
            return message

        return limited_receive

    async def _fail(self, exc: Exception, started: bool, send: Send) -> int:
        """Answer an escaped exception in the one error shape; returns the status to record."""
        if isinstance(exc, ClientDisconnect):  # nobody is left to answer: record it, no traceback
            logger.info("client disconnected before the response")
            return CLIENT_CLOSED
        if isinstance(exc, ApiError):
            status, body, headers = exc.status_code, error_body(exc.code, exc.message, exc.details), exc.headers
        else:
            logger.error("unhandled %s", type(exc).__name__, exc_info=exc)
            status, body, headers = 500, error_body("internal_error", INTERNAL_MESSAGE), None
        if started:  # too late for a clean error response; the server closes the connection
            logger.error("error after the response started (%s)", type(exc).__name__)
            return status
        await _send_json(send, status, body, (headers or {}).items())
        return status

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


def _check_media_type(scope: Scope) -> None:
    """415 unless the body is declared JSON (or, on the predict routes, binary windows) and not encoded: the API
    reads nothing else."""
    content_type = (_header(scope, b"content-type") or b"").split(b";", 1)[0].strip().lower()
    accepted = WINDOW_TYPES if scope["path"] in BINARY_ROUTES else JSON_TYPES
    if content_type not in accepted:
        raise _unsupported_media_type(content_type, accepted)
    encoding = (_header(scope, b"content-encoding") or b"identity").strip().lower()
    if encoding != b"identity":
        raise ApiError(
            415,
            "unsupported_content_encoding",
            f"Content-Encoding {encoding.decode('latin-1')[:50]!r} is not accepted: send the body uncompressed.",
        )


def _unsupported_media_type(content_type: bytes, accepted: frozenset[bytes]) -> ApiError:
    shown = content_type.decode("latin-1")[:100] or "none"
    if accepted is JSON_TYPES:
        only = f" here (binary windows are read only by {' and '.join(sorted(BINARY_ROUTES))})"
        where = only if content_type in WINDOW_TYPES else ""
        message = f"Content-Type {shown!r} is not accepted{where}: send the body as JSON with Content-Type: "
        message += "application/json."
    else:
        message = f"Content-Type {shown!r} is not accepted: send JSON with Content-Type: application/json, or "
        message += f"scaled windows as {' or '.join(sorted(BINARY_TYPES))} (see docs/api.md, Binary bodies)."
    return ApiError(415, "unsupported_media_type", message, {"accepted": sorted(t.decode() for t in accepted)})


async def _send_json(send: Send, status: int, body: bytes, headers: Iterable[tuple[str, str]]) -> None:
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
