"""Throughput and latency of POST /api/v1/predict, served the way a user runs it, loaded from another process.

    .venv/bin/python benchmarks/bench_api.py [--duration 10] [--workers 2] [--connections 1,16,64]

What it does:
1. trains a full-size Bi-LSTM with attention (BiLSTMConfig defaults: 128/64 units, attention 64, dense 32) for one
   short epoch on synthetic bars with every catalog feature and a 60-day window (the weights do not matter for
   speed, the shapes do), saves it, and exports ONNX beside it;
2. starts the service as a user would (`python -m trendcast.serving.commands --workers N`, uvicorn, JSON logs to a
   file) with TRENDCAST_MODEL_DIR pointing at that folder and rate limiting off (TRENDCAST_RATE_LIMIT_ENABLED=false);
3. drives POST /api/v1/predict with a 60 x n_features `sequence` body from `wrk` (Debian package; a separate
   process on 127.0.0.1, sharing the machine's cores) at each connection count, and reads requests/s,
   p50/p95/p99 latency and errors (non-2xx, socket errors, timeouts) from wrk's Lua `done` hook;
4. repeats 2-3 with the same model minus its ONNX file, i.e. the plain PyTorch-eager path, and prints both and the
   ratio, with the server's CPU time per request (all its processes), which other load on the machine skews less
   than requests/s.

If wrk is missing it says how to install it (`apt-get install -y wrk`) and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f, "errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, errors, e.status))
end
"""


@dataclass
class Result:
    backend: str
    connections: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    server_cpu_ms: float  # CPU time of all server processes per request (less sensitive to other load)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (Linux /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ...
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_model(folder: Path) -> int:
    """Train and save a full-size Bi-LSTM (+ ONNX); returns its feature count."""
    import torch

    from trendcast.config import BiLSTMConfig, ExperimentConfig
    from trendcast.data.synthetic import planted_signal_bars
    from trendcast.features.windows import build_window_set
    from trendcast.models.onnx_export import export_onnx
    from trendcast.models.registry import create_model

    torch.set_num_threads(2)
    config = ExperimentConfig(window=60, bilstm=BiLSTMConfig(epochs=1, max_train_samples=256, batch_size=128))
    data = build_window_set(planted_signal_bars(n_tickers=2, n_days=420, seed=7), window=60, labels=config.labels)
    model = create_model("bilstm", config, threads=2, progress=False).fit(data)
    model.save(folder)
    export_onnx(model, folder / "model.onnx")  # type: ignore[arg-type]
    return len(model.feature_names)


def start_server(model_dir: Path, data_dir: Path, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TRENDCAST_MODEL_DIR": str(model_dir),
        "TRENDCAST_DATA_DIR": str(data_dir),
        "TRENDCAST_RATE_LIMIT_ENABLED": "false",
        "TRENDCAST_TORCH_THREADS": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        sys.executable,
        "-m",
        "trendcast.serving.commands",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    process = subprocess.Popen(
        command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log}")
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"server not ready after 120 s; see {log}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_wrk(url: str, connections: int, duration: int, script: Path, body: Path) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", str(script), url]
    out = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "BENCH_BODY": str(body)}, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    stats: dict[str, float] = json.loads(line.removeprefix("BENCH_JSON "))
    return stats


def bench_backend(name: str, model_dir: Path, args: argparse.Namespace, work: Path, body: Path) -> list[Result]:
    port = free_port()
    server = start_server(model_dir, work / "data", port, args.workers, work / f"server-{name}.log")
    url = f"http://127.0.0.1:{port}/api/v1/predict"
    results = []
    try:
        check = httpx.post(url, content=body.read_bytes(), headers={"Content-Type": "application/json"}, timeout=10)
        check.raise_for_status()
        run_wrk(url, 4, 2, work / "post.lua", body)  # warm-up, not reported
        for connections in args.connections:
            cpu_before = group_cpu_seconds(server.pid)
            s = run_wrk(url, connections, args.duration, work / "post.lua", body)
            cpu_ms = 1000 * (group_cpu_seconds(server.pid) - cpu_before) / max(s["requests"], 1)
            results.append(
                Result(
                    name,
                    connections,
                    s["requests"] / s["seconds"],
                    s["p50_ms"],
                    s["p95_ms"],
                    s["p99_ms"],
                    int(s["errors"]),
                    cpu_ms,
                )
            )
    finally:
        stop_server(server)
    return results


def report(results: list[Result]) -> None:
    print(
        f"{'backend':<8} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'server CPU ms/req':>18}"
    )
    for r in results:
        print(
            f"{r.backend:<8} {r.connections:>5} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.errors:>7} {r.server_cpu_ms:>18.3f}"
        )
    by = {(r.backend, r.connections): r for r in results}
    for connections in sorted({r.connections for r in results}):
        onnx, eager = by.get(("onnx", connections)), by.get(("eager", connections))
        if onnx and eager:
            print(f"{connections:>3} connections: ONNX Runtime / PyTorch eager = {onnx.rps / eager.rps:.2f}x req/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--connections", type=lambda s: [int(c) for c in s.split(",")], default=[1, 16, 64])
    parser.add_argument("--backends", default="onnx,eager", help="onnx, eager or both (comma-separated)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install -y wrk` (Debian), then run again.")
    with tempfile.TemporaryDirectory(prefix="trendcast-bench-") as tmp:
        work = Path(tmp)
        onnx_dir, eager_dir = work / "model-onnx", work / "model-eager"
        n_features = build_model(onnx_dir)
        shutil.copytree(onnx_dir, eager_dir, ignore=shutil.ignore_patterns("model.onnx"))
        (work / "post.lua").write_text(LUA)
        body = work / "body.json"
        sequence = np.random.default_rng(0).normal(size=(60, n_features)).round(6).tolist()
        body.write_text(json.dumps({"sequence": sequence}))
        print(
            f"model: Bi-LSTM 128/64 + attention, window 60 x {n_features} features; body {body.stat().st_size:,} "
            f"bytes; {args.workers} workers; {os.cpu_count()} cores shared with wrk; {args.duration} s per point"
        )
        results: list[Result] = []
        dirs = {"onnx": onnx_dir, "eager": eager_dir}
        for name in args.backends.split(","):
            results += bench_backend(name, dirs[name], args, work, body)
        report(results)
        print(
            f"load average after the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (other processes share "
            "the cores: compare runs by server CPU ms/req as well as req/s)"
        )


if __name__ == "__main__":
    main()
