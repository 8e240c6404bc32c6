"""Structured logs for the service: one JSON object a line, each carrying the request id of the request it belongs to.

The request id lives in a context variable that the service middleware sets for the duration of each request, so
every log line written while handling it (ours, uvicorn's, a library's) gets `request_id` without passing it around.
Lines outside a request carry `request_id: null`.

`configure_logging(settings)` is called once per worker by `create_app()`; it replaces the handlers of the root and
uvicorn loggers, so calling it twice (tests build several apps) does not duplicate lines. API keys, request bodies
and headers are never logged.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.orjson import OrjsonFormatter

from trendcast.config import Settings

request_id_var: ContextVar[str | None] = ContextVar("trendcast_request_id", default=None)

ACCESS_LOGGER = "trendcast.access"
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access")


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or None) to every record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _formatter(json_lines: bool) -> logging.Formatter:
    if json_lines:
        return OrjsonFormatter(
            ["asctime", "levelname", "name", "message", "request_id"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def configure_logging(settings: Settings) -> None:
    """JSON (or plain, with TRENDCAST_LOG_JSON=false) lines on stderr at `settings.log_level`, request id included."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(settings.log_json))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    for name in _UVICORN_LOGGERS:  # let them propagate to the root handler instead of their own plain handlers
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the service middleware writes one access line itself
