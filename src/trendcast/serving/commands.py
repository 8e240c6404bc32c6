"""`trendcast serve`: run the API with uvicorn (the lead registers `serve` on the Typer app; it is a plain function).

Each worker builds its own app through the factory `trendcast.serving.app:app_from_env` (settings from the
TRENDCAST_* environment), so the model loads once per worker, after the fork. With several workers, Prometheus
multiprocess mode is switched on (a fresh temporary PROMETHEUS_MULTIPROC_DIR unless one is set) so /metrics
aggregates every worker. For production behind a process manager use Gunicorn: `gunicorn -c gunicorn.conf.py`.

HTTP layer (HTTP_OPTIONS, shared with gunicorn.conf.py's worker class): uvloop's event loop and the httptools
parser, named rather than left to "auto" so a missing extra fails at start instead of silently serving at half the
speed; a listen backlog of 4096 (a burst of new connections waits in the kernel instead of being refused); idle
keep-alive connections closed after 5 s. With several workers (Linux), each worker listens on a socket of its own
in the port's SO_REUSEPORT group (`ReusePortSockets`), so the kernel spreads new connections evenly over the
workers; on one shared socket the first worker to wake accepts a whole burst (measured: 62 of 64 connections on
one worker of two, while the other idled).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from trendcast.config import load_settings

FACTORY = "trendcast.serving.app:app_from_env"
HTTP_OPTIONS: dict[str, Any] = {"loop": "uvloop", "http": "httptools", "backlog": 4096, "timeout_keep_alive": 5}


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


def share_cores(workers: int) -> None:
    """Unless TRENDCAST_TORCH_THREADS is set, give each worker's PyTorch its share of the cores (threads x workers
    <= cores): two workers with two PyTorch threads each on two cores measured 21-95 ms a forward pass instead of
    0.8-2.4 ms. ONNX Runtime already runs one thread per worker (TRENDCAST_ONNX_THREADS)."""
    os.environ.setdefault("TRENDCAST_TORCH_THREADS", str(max(1, (os.cpu_count() or 1) // max(workers, 1))))


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT: every such socket of the same user on that address
    joins one group, and the kernel hands each new connection to one of them by a hash of the client's address."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class ReusePortSockets(list[socket.socket]):
    """The `sockets` argument uvicorn's supervisor hands to every worker it starts or restarts, holding no socket
    in the parent: it pickles as the address alone, and the first time a worker's server reads it, it binds that
    worker's own SO_REUSEPORT socket (uvicorn's server then listens on it with the configured backlog). A worker
    that exits takes its socket with it; its replacement binds a new one into the group."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[type[ReusePortSockets], tuple[str, int]]:
        return type(self), (self.host, self.port)

    def __iter__(self) -> Any:
        if not len(self):
            self.append(reuse_port_socket(self.host, self.port))
        return super().__iter__()


def can_reuse_port(host: str, port: int) -> bool:
    """Whether each worker can have its own socket: Linux (elsewhere SO_REUSEPORT does not balance), a fixed port,
    and the address free (checked by binding it once; a busy port then fails as uvicorn reports it)."""
    if not hasattr(socket, "SO_REUSEPORT") or sys.platform != "linux" or port == 0:
        return False
    try:
        reuse_port_socket(host, port).close()
    except OSError:
        return False
    return True


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
    share_cores(n_workers)
    shown = "127.0.0.1" if (host or settings.host) in ("0.0.0.0", "::") else (host or settings.host)
    typer.echo(f"trendcast dashboard: http://{shown}:{port or settings.port}/  (API docs: /api/docs)")
    options: dict[str, Any] = {
        "factory": True,
        "host": host or settings.host,
        "port": port or settings.port,
        "workers": n_workers,
        "access_log": False,  # the service middleware writes one JSON access line per request
        "log_config": None,
        "proxy_headers": bool(settings.trusted_proxies),  # X-Forwarded-* only from the proxies the operator names
        "forwarded_allow_ips": settings.trusted_proxies or None,
        "server_header": False,
        **HTTP_OPTIONS,
    }
    if n_workers > 1 and can_reuse_port(options["host"], options["port"]):
        from uvicorn.supervisors import Multiprocess

        config = uvicorn.Config(FACTORY, **options)
        Multiprocess(config, sockets=ReusePortSockets(config.host, config.port)).run()
        return
    uvicorn.run(FACTORY, **options)


if __name__ == "__main__":  # `python -m trendcast.serving.commands --port 8000` until the CLI registers `serve`
    typer.run(serve)
