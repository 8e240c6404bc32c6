"""One JSON error shape for every failure, and the one place that maps exceptions to HTTP status codes.

Every error response, whatever raised it, has this body:

    {"error": {"code": "insufficient_history", "message": "...", "request_id": "6f1c...", "details": {...}}}

Mapping (most specific first; see `TRENDCAST_STATUS`):

    ApiError (raised by the service itself)       its own status (400, 401, 403, 404, 413, 422, 429, 503)
    RequestValidationError (a Pydantic body)      422 validation_error, details = the failing fields
    HTTPException (unknown route, wrong method)   its status: 404 not_found, 405 method_not_allowed
    MissingPricesError                            404 unknown_ticker
    InsufficientHistoryError                      422 insufficient_history, details = needed/available/missing
    SourceError                                   503 store_unavailable
    other DataError                               422 invalid_data
    ModelNotReadyError                            503 model_not_ready
    other TrendcastError, any other exception     500 internal_error, generic message (details only in the log)

No stack trace or internal message of a 5xx ever reaches a client: 5xx bodies carry a fixed message and the
request id to quote, and the log line with that id carries the traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from trendcast.errors import (
    DataError,
    InsufficientHistoryError,
    MissingPricesError,
    ModelNotReadyError,
    SourceError,
    TrendcastError,
)
from trendcast.serving.logging import request_id_var

logger = logging.getLogger("trendcast.serving")

INTERNAL_MESSAGE = "Internal error. Quote the request_id when you report it."

# (exception class, HTTP status, error code); the first isinstance match wins, so subclasses come first.
TRENDCAST_STATUS: tuple[tuple[type[TrendcastError], int, str], ...] = (
    (MissingPricesError, 404, "unknown_ticker"),
    (InsufficientHistoryError, 422, "insufficient_history"),
    (SourceError, 503, "store_unavailable"),
    (DataError, 422, "invalid_data"),
    (ModelNotReadyError, 503, "model_not_ready"),
    (TrendcastError, 500, "internal_error"),
)


class ApiError(HTTPException):
    """An error the service raises on purpose, already in client terms.

    It subclasses Starlette's HTTPException so that FastAPI passes it through unchanged even when it is raised while
    FastAPI itself reads the body (the body-size guard raises it from inside `receive`).
    """

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.message = message
        self.details = details


def error_body(code: str, message: str, details: Any = None) -> bytes:
    """The JSON bytes of the one error shape, with the current request id. Details that cannot be serialised
    (a client's value nested too deep for orjson, say) are dropped rather than turning a 4xx into a 500."""
    error = {"code": code, "message": message, "request_id": request_id_var.get(), "details": details}
    try:
        return orjson.dumps({"error": error})
    except orjson.JSONEncodeError:
        return orjson.dumps({"error": {**error, "details": None}})


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        error_body(code, message, details), status_code=status, headers=headers, media_type="application/json"
    )


def status_of(exc: TrendcastError) -> tuple[int, str]:
    """(HTTP status, error code) for an exception of the trendcast tree."""
    for cls, status, code in TRENDCAST_STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"  # pragma: no cover - TrendcastError above matches everything


def for_item(exc: ApiError | TrendcastError, index: int) -> ApiError | TrendcastError:
    """The same 4xx error, naming the batch item it came from (`items[i]: ...`, details `{"item": i, ...}`);
    server-side (5xx) errors are returned unchanged, for the generic handling."""
    if isinstance(exc, ApiError):
        status, code, message, details = exc.status_code, exc.code, exc.message, exc.details
    else:
        status, code = status_of(exc)
        message, details = str(exc), _details_of(exc)
    if status >= 500:
        return exc
    named = {"item": index, **details} if isinstance(details, dict) else {"item": index, "errors": details}
    headers = dict(exc.headers) if isinstance(exc, ApiError) and exc.headers else None
    return ApiError(status, code, f"items[{index}]: {message}", named, headers)


def _details_of(exc: TrendcastError) -> dict[str, Any] | None:
    if isinstance(exc, InsufficientHistoryError):
        return {"ticker": exc.ticker, "needed": exc.needed, "available": exc.available, "missing": exc.missing}
    if isinstance(exc, MissingPricesError):
        return {"ticker": exc.ticker}
    return None


def _http_code(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # registered for HTTPException only
    headers = dict(exc.headers) if exc.headers else None
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, exc.message, exc.details, headers)
    return error_response(exc.status_code, _http_code(exc.status_code), str(exc.detail), None, headers)


def _clean_validation_error(error: Any) -> dict[str, Any]:
    """Field path, message and type of one Pydantic error, without echoing the (possibly huge) input."""
    return {
        "loc": [str(part) for part in error.get("loc", ())],
        "msg": str(error.get("msg", "")),
        "type": str(error.get("type", "")),
    }


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [_clean_validation_error(e) for e in exc.errors()][:20]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"][1:] if first["loc"][:1] == ["body"] else first["loc"])
    message = f"Invalid request: {where + ': ' if where else ''}{first['msg']}."
    return error_response(422, "validation_error", message, details)


async def handle_trendcast_error(request: Request, exc: Exception) -> Response:
    """The one handler that maps the trendcast exception tree to HTTP statuses (see TRENDCAST_STATUS)."""
    assert isinstance(exc, TrendcastError)
    status, code = status_of(exc)
    if status >= 500:
        logger.error("%s while handling %s: %s", type(exc).__name__, request.url.path, exc, exc_info=exc)
        message = str(exc) if isinstance(exc, ModelNotReadyError) else _public_5xx_message(code)
        return error_response(status, code, message)
    return error_response(status, code, str(exc), _details_of(exc))


def _public_5xx_message(code: str) -> str:
    if code == "store_unavailable":
        return "The price store is unavailable; retry later. Quote the request_id if it persists."
    return INTERNAL_MESSAGE


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; anything else that escapes a route becomes a generic 500 in the service middleware."""
    app.add_exception_handler(HTTPException, handle_http_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(TrendcastError, handle_trendcast_error)
