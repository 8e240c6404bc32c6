"""Gunicorn settings for production: Uvicorn workers, one app (and one model) per worker.

    gunicorn -c gunicorn.conf.py        # from the repository root, TRENDCAST_* variables in the environment

Binds TRENDCAST_HOST:TRENDCAST_PORT (default 127.0.0.1:8000) with TRENDCAST_WORKERS workers (default: one per
core). Each worker calls the factory `trendcast.serving.app:app_from_env()` after the fork, so nothing heavy is
shared or loaded in the master. Prometheus multiprocess mode: PROMETHEUS_MULTIPROC_DIR (default
/tmp/trendcast-prometheus) is emptied at start and a dead worker's live gauges are dropped.
The workers share one listening socket, so the first idle worker accepts a burst of new connections; `trendcast
serve --workers N` gives each worker a SO_REUSEPORT socket of its own instead (even spread, see serving.commands).
Behind a load balancer that spreads its own connections this matters little.
Rate limits and the prediction cache are shared between workers only through Redis (TRENDCAST_REDIS_URL);
`kill -HUP <master pid>` replaces the workers gracefully (each loads the current champion).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any

from trendcast.config import load_settings

_multiproc = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/trendcast-prometheus"))

wsgi_app = "trendcast.serving.app:app_from_env()"
worker_class = (
    "trendcast.serving.gunicorn_worker.TrendcastWorker"  # uvicorn with uvloop + httptools, no uvicorn access log
)
bind = f"{os.environ.get('TRENDCAST_HOST', '127.0.0.1')}:{os.environ.get('TRENDCAST_PORT', '8000')}"
workers = int(os.environ.get("TRENDCAST_WORKERS", multiprocessing.cpu_count()))
# PyTorch threads per worker (eager backend, /explain): unless set, each worker gets its share of the cores, as
# `trendcast serve` does (two workers x two threads on two cores measured 10-40x slower forward passes).
os.environ.setdefault("TRENDCAST_TORCH_THREADS", str(max(1, multiprocessing.cpu_count() // workers)))
timeout = 60  # seconds a worker may stay silent (a model reload included) before it is restarted
graceful_timeout = 30  # in-flight requests get this long to finish on shutdown or HUP
keepalive = 5  # seconds an idle keep-alive connection stays open
backlog = 4096  # connections the kernel queues while every worker is busy (a burst waits instead of being refused)
max_requests = 0  # workers hold a loaded model: do not recycle them needlessly
accesslog = None  # the service writes its own JSON access line with the request id
errorlog = "-"
# X-Forwarded-For/-Proto are believed only from the proxies the operator names (TRENDCAST_TRUSTED_PROXIES, a JSON
# list of IPs or CIDRs, e.g. the load balancer's subnets); by default nobody, so a client cannot pick its own
# rate-limit bucket or log address by sending the header.
forwarded_allow_ips = ",".join(load_settings().trusted_proxies)


def on_starting(server: Any) -> None:
    if _multiproc.exists():
        shutil.rmtree(_multiproc)
    _multiproc.mkdir(parents=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
