"""Helpers for the dashboard browser test: a data dir built like a user would (CLI ingest + train), Chromium pages
that refuse every request leaving 127.0.0.1, and the page's number formats (mirrors of `pct`/`num` in
src/trendcast/serving/static/dashboard.js, including JavaScript's round-half-away-from-zero `toFixed`)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TICKERS = ("AAPL", "MSFT", "IBM")
# A quick experiment: fast candidates only, three folds, a short window; the gates still decide the champion.
EXPERIMENT = """\
name: dashboard-browser-test
window: 20
labels:
  horizon: 1
  threshold: 0.005
walk_forward:
  folds: 3
  min_train_fraction: 0.5
candidates: [logreg, majority]
gates:
  n_boot: 100
seed: 7
"""
NETWORK_NOISE = "Failed to load resource"  # Chromium's own console line for every 4xx/5xx answer


def cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run `trendcast ARGS` in a subprocess with `env`; fail loudly with its output."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRENDCAST_")}
    full_env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "COLUMNS": "160", **env})
    done = subprocess.run(
        [sys.executable, "-c", "from trendcast.cli import app; app()", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"trendcast {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def build_data_dir(root: Path) -> dict[str, str]:
    """Ingest three bundled tickers and train a champion through the CLI; return the server's environment."""
    env = {"TRENDCAST_DATA_DIR": str(root / "data")}
    experiment = root / "experiment.yaml"
    experiment.write_text(EXPERIMENT, encoding="utf-8")
    cli(["data", "ingest", "--source", "bundled", "--tickers", ",".join(TICKERS)], env, root)
    out = cli(
        ["train", "--model", "logreg", "--config", str(experiment), "--report", str(root / "train.json")], env, root
    )
    if "champion" not in out:
        raise RuntimeError(f"training registered no champion:\n{out}")
    return env


@dataclass
class Watch:
    """What a page did: console errors, uncaught exceptions, and requests that tried to leave 127.0.0.1."""

    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def real_errors(self, allow_http_errors: bool = False) -> list[str]:
        return [e for e in self.errors if not (allow_http_errors and NETWORK_NOISE in e)]


def watch_page(page: Any, route_guard: bool = True) -> Watch:
    """Record errors on `page`; with `route_guard`, abort (and record) every request not to 127.0.0.1."""
    watch = Watch()
    page.on("console", lambda m: watch.errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"))

    def guard(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith("data:"):
            route.continue_()
        else:
            watch.outside.append(url)
            route.abort()

    if route_guard:
        page.route("**/*", guard)
    else:
        page.on("request", lambda r: None if urlsplit(r.url).hostname == "127.0.0.1" else watch.outside.append(r.url))
    return watch


def _fixed(value: float, digits: int) -> str:
    """JavaScript's Number.prototype.toFixed: the exact binary value, halves rounded away from zero."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{_fixed(value * 100, digits)}%"


def num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else _fixed(value, digits)
