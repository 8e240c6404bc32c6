"""`trendcast serve`: run the API with uvicorn (the lead registers `serve` on the Typer app; it is a plain function).

Each worker builds its own app through the factory `trendcast.serving.app:app_from_env` (settings from the
TRENDCAST_* environment), so the model loads once per worker, after the fork. With several workers, Prometheus
multiprocess mode is switched on (a fresh temporary PROMETHEUS_MULTIPROC_DIR unless one is set) so /metrics
aggregates every worker. For production behind a process manager use Gunicorn: `gunicorn -c gunicorn.conf.py`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from trendcast.config import load_settings

FACTORY = "trendcast.serving.app:app_from_env"


def prepare_multiprocess_dir(workers: int) -> Path | None:
    """With several workers, make sure PROMETHEUS_MULTIPROC_DIR points at an existing, EMPTY directory."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if workers < 2 and not configured:
        return None
    folder = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="trendcast-prometheus-"))
    if folder.exists():
        shutil.rmtree(folder)  # values of dead processes from an earlier run must not be summed in
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: TRENDCAST_HOST, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: TRENDCAST_PORT, 8000)")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: TRENDCAST_WORKERS, 1)")] = None,
) -> None:
    """Serve the prediction API (docs at /api/docs) and the dashboard (at /) with uvicorn."""
    import uvicorn

    settings = load_settings()
    n_workers = workers or settings.workers
    prepare_multiprocess_dir(n_workers)
    shown = "127.0.0.1" if (host or settings.host) in ("0.0.0.0", "::") else (host or settings.host)
    typer.echo(f"trendcast dashboard: http://{shown}:{port or settings.port}/  (API docs: /api/docs)")
    uvicorn.run(
        FACTORY,
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=n_workers,
        access_log=False,
        log_config=None,
        proxy_headers=bool(settings.trusted_proxies),  # X-Forwarded-* only from the proxies the operator names
        forwarded_allow_ips=settings.trusted_proxies or None,
        server_header=False,
    )


if __name__ == "__main__":  # `python -m trendcast.serving.commands --port 8000` until the CLI registers `serve`
    typer.run(serve)
