"""Gunicorn's worker class for the service (`worker_class` in gunicorn.conf.py): uvicorn's, with the HTTP options
`trendcast serve` uses (serving.commands.HTTP_OPTIONS: uvloop, httptools, keep-alive) and uvicorn's own access log
off, since the service middleware writes one JSON line per request (uvicorn would still build its arguments for
every request before the disabled logger dropped them). Gunicorn's `backlog` and `keepalive` settings win over the
defaults here, where gunicorn.conf.py sets them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker

from trendcast.serving.commands import HTTP_OPTIONS


class TrendcastWorker(UvicornWorker):  # type: ignore[misc]  # uvicorn-worker ships no type hints
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "loop": HTTP_OPTIONS["loop"],
        "http": HTTP_OPTIONS["http"],
        "access_log": False,
        "server_header": False,
    }
