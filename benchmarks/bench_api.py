"""Throughput and latency of the prediction API, served the way a user runs it, loaded from another process.

    .venv/bin/python benchmarks/bench_api.py [--duration 10] [--workers 2] [--connections 1,16,64] [--locust]

What it does:
1. trains a full-size Bi-LSTM with attention (BiLSTMConfig defaults: 128/64 units, attention 64, dense 32) for one
   short epoch on synthetic bars with every catalog feature and a 60-day window (the weights do not matter for
   speed, the shapes do), saves it, and exports ONNX beside it; fills a bar store with TICKERS synthetic tickers of
   BARS daily bars each (tens of thousands of distinct (ticker, as_of) pairs);
2. starts the service as a user would (`python -m trendcast.serving.commands --workers N`: uvicorn, JSON logs to a
   file) with TRENDCAST_MODEL_DIR pointing at that folder and rate limiting off (TRENDCAST_RATE_LIMIT_ENABLED=false);
3. drives it with `wrk` (Debian package; one thread, a separate process on 127.0.0.1 sharing the machine's cores)
   and reads requests/s, p50/p95/p99 latency and errors (non-2xx, socket errors, timeouts) from wrk's Lua `done`
   hook, with the server's CPU time per request (user + system of all its processes, from /proc), which other load
   on the machine skews less than requests/s. Scenarios:
   - sequence: POST /api/v1/predict with a 60 x 51 `sequence` at each connection count;
   - ticker miss: `{"ticker", "as_of"}` with a different (ticker, as_of) on every request, so the prediction cache
     never answers and each request builds its window (from the worker's feature cache, serving.ticker_cache);
   - ticker hit: one (ticker, as_of) over and over: the prediction cache answers;
4. starts the reference server (benchmarks/reference_server.py: what a user would write by hand, FastAPI with a
   Pydantic `list[list[float]]` body and one ONNX Runtime call per request) with the same uvicorn and worker count,
   drives it with the same body at the same connection counts, and prints trendcast / reference;
5. with --locust, runs the load test of the repository (`locust -f tests/load/locustfile.py --headless -u 1000
   -r 100 -t 60s`, Locust from PATH or .venv-locust, see `make bench`) against the service and prints Locust's
   p50/p95/p99 and failure rate. Locust runs on the same cores as the server, so it slows the server it measures.

Optional: --backends onnx,eager adds the plain PyTorch-eager path (the same model without its ONNX file).
If wrk is missing it says how to install it (`apt-get install -y wrk`) and stops.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TICKERS = 4
BARS = 6000  # daily bars per synthetic ticker (about 24 years): ~8,000 calendar days to ask about each
HIT_AS_OF = "2020-06-15"

DONE = r"""
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
# one body, read from BENCH_BODY, on every request
ONE_BODY = (
    r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE") or "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
"""
    + DONE
)
# one body per line of BENCH_BODY, in turn (wrk -t1: one Lua state, one counter)
CYCLE_BODIES = (
    r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODY")) do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""
    + DONE
)


@dataclass
class Result:
    scenario: str
    connections: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    server_cpu_ms: float  # CPU time of all server processes per request (less sensitive to other load)
    note: str = ""


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


def build_model(folder: Path, int8_folder: Path) -> tuple[int, str]:
    """Train a full-size Bi-LSTM and save it as a bundle twice: float32 ONNX, and with the int8 copy checked against
    float32 on held-out windows (kept only if it agrees, as training does). Returns (feature count, int8 verdict)."""
    import torch

    from trendcast.config import BiLSTMConfig, ExperimentConfig
    from trendcast.data.synthetic import planted_signal_bars
    from trendcast.features.windows import build_window_set
    from trendcast.models.bundle import read_bundle, write_bundle
    from trendcast.models.registry import create_model

    torch.set_num_threads(2)
    config = ExperimentConfig(window=60, bilstm=BiLSTMConfig(epochs=2, max_train_samples=512, batch_size=128))
    data = build_window_set(planted_signal_bars(n_tickers=2, n_days=620, seed=7), window=60, labels=config.labels)
    cut = int(len(data) * 0.8)
    train, held_out = data.take(np.arange(cut)), data.take(np.arange(cut, len(data)))
    model = create_model("bilstm", config, threads=2, progress=False).fit(train)
    write_bundle(model, train, folder, background_size=8)
    write_bundle(model, train, int8_folder, background_size=8, quantize_check=held_out)
    record = read_bundle(int8_folder, name="bench", version="1", alias="bench").quantization
    if record is None:
        return len(model.feature_names), "int8: no check recorded"
    verdict = (
        f"int8 {'accepted' if record.accepted else 'REFUSED (int8 rows below serve float32)'}: agreement "
        f"{record.agreement:.4f}, max |p diff| {record.max_abs_diff:.4f} on {record.n} held-out windows"
    )
    return len(model.feature_names), verdict


def fill_store(data_dir: Path) -> pd.DataFrame:
    """TICKERS synthetic tickers of BARS bars in the store the service will read; returns the bars."""
    from trendcast.config import Settings
    from trendcast.data.store import open_store
    from trendcast.data.synthetic import planted_signal_bars

    bars = planted_signal_bars(n_tickers=TICKERS, n_days=BARS, seed=11)
    with open_store(Settings(data_dir=data_dir).resolved_database_url) as store:
        store.upsert(bars)
    return bars


def ticker_bodies(bars: pd.DataFrame, skip: int, path: Path) -> int:
    """One `{"ticker", "as_of"}` body per line: every calendar day from the `skip`-th bar on (weekends too: their
    window ends on the Friday) for every ticker, shuffled. Returns the number of bodies."""
    lines = []
    for ticker, group in bars.groupby("ticker"):
        first, last = group["date"].iloc[skip], group["date"].iloc[-1]
        for day in pd.date_range(first, last, freq="D"):
            lines.append(json.dumps({"ticker": ticker, "as_of": day.date().isoformat()}))
    random.Random(0).shuffle(lines)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log}")
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"server not ready after 120 s; see {log}")


@contextmanager
def server(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process group (so its CPU time can be summed), stopped with SIGTERM at the end."""
    env = {**os.environ, **env}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_ready(ready_url, process, log)
        yield process
    finally:
        stop_server(process)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_wrk(url: str, connections: int, duration: int, script: Path, body: Path) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", str(script), url]
    ctype = "application/octet-stream" if body.suffix == ".bin" else "application/json"
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_CTYPE": ctype}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    stats: dict[str, float] = json.loads(line.removeprefix("BENCH_JSON "))
    return stats


def measure(
    scenario: str, process: subprocess.Popen[bytes], url: str, connections: int, duration: int, script: Path, body: Path
) -> Result:
    cpu_before = group_cpu_seconds(process.pid)
    s = run_wrk(url, connections, duration, script, body)
    cpu_ms = 1000 * (group_cpu_seconds(process.pid) - cpu_before) / max(s["requests"], 1)
    return Result(
        scenario,
        connections,
        s["requests"] / s["seconds"],
        s["p50_ms"],
        s["p95_ms"],
        s["p99_ms"],
        int(s["errors"]),
        cpu_ms,
    )


# Where a worker's CPU goes, by the innermost frame that names one of these (py-spy raw stacks).
PROFILE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ONNX Runtime forward pass", ("session.run", "onnxruntime", "onnx_export.py", "quantize")),
    ("JSON parse + NumPy checks", ("parse_object", "parse_sequence", "check_structure", "_numeric_array", "binary.py")),
    ("response body (orjson)", ("prediction_dict", "_json (")),
    ("Prometheus metrics", ("prometheus_client", "serving/metrics.py")),
    ("access log", ("logging/__init__", "pythonjsonlogger", "serving/logging.py", "_record (")),
    ("service middleware", ("serving/middleware.py",)),
    ("FastAPI / Starlette", ("starlette/", "fastapi/")),
    ("uvicorn / httptools", ("uvicorn/", "httptools")),
    ("micro-batcher", ("MicroBatcher", "_drain (", "_gather (", "_take (")),
    ("event loop", ("uvloop", "asyncio/")),
)


def worker_pids(process: subprocess.Popen[bytes]) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def profile_shares(files: list[Path]) -> dict[str, float]:
    """Share of sampled worker CPU by category (PROFILE_CATEGORIES), from py-spy's raw (collapsed) stacks."""
    counts: dict[str, int] = {}
    for file in files:
        for line in file.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")[::-1]
            found = next(
                (name for frame in frames for name, keys in PROFILE_CATEGORIES if any(k in frame for k in keys)),
                "other",
            )
            counts[found] = counts.get(found, 0) + int(n)
    total = sum(counts.values()) or 1
    return {name: n / total for name, n in sorted(counts.items(), key=lambda kv: -kv[1])}


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    body: Path  # the sequence body
    tickers: Path  # one ticker body per line (distinct (ticker, as_of))
    n_tickers_bodies: int
    locust_summary: str | None = None

    @property
    def one(self) -> Path:
        return self.work / "one.lua"

    @property
    def cycle(self) -> Path:
        return self.work / "cycle.lua"

    def trendcast(self, name: str, model_dir: Path) -> list[Result]:
        port = free_port()
        env = {
            "TRENDCAST_MODEL_DIR": str(model_dir),
            "TRENDCAST_DATA_DIR": str(self.work / "data"),
            "TRENDCAST_RATE_LIMIT_ENABLED": "false",
            "TRENDCAST_TORCH_THREADS": "1",
        }
        base = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "trendcast.serving.commands", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(self.args.workers)]
        log = self.work / f"server-{name}.log"
        results = []
        with server(command, env, f"{base}/ready", log) as process:
            url = f"{base}/api/v1/predict"
            check = httpx.post(url, content=self.body.read_bytes(), headers={"Content-Type": "application/json"})
            check.raise_for_status()
            run_wrk(url, 4, 2, self.one, self.body)  # warm-up, not reported
            for connections in self.args.connections:
                results.append(measure(f"{name} sequence", process, url, connections, *self._seq))
            if self.args.profile and name == "trendcast":
                self.profile(process, url)
            if not self.args.no_binary:
                binary = self.body.with_suffix(".bin")
                for connections in self.args.connections[-1:]:
                    results.append(
                        measure(f"{name} binary", process, url, connections, self.args.duration, self.one, binary)
                    )
            if name == "trendcast" and not self.args.no_ticker:
                results += self.tickers_scenarios(process, url)
            if name == "trendcast" and self.args.locust:
                self.locust(base)
        return results

    @property
    def _seq(self) -> tuple[int, Path, Path]:
        return self.args.duration, self.one, self.body

    def profile(self, process: subprocess.Popen[bytes], url: str) -> None:
        """py-spy on every worker during one more run at the highest connection count; prints CPU ms by category."""
        spy = ROOT / ".venv" / "bin" / "py-spy"
        files = [self.work / f"profile-{pid}.txt" for pid in worker_pids(process)]
        spies = [
            subprocess.Popen(
                [
                    str(spy),
                    "record",
                    "--pid",
                    file.stem.split("-")[1],
                    "-d",
                    str(self.args.duration),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(file),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for file in files
        ]
        time.sleep(0.5)
        result = measure("profiled", process, url, self.args.connections[-1], *self._seq)
        for spied in spies:
            spied.wait(timeout=60)
        shares = profile_shares([f for f in files if f.exists()])
        print(f"py-spy, {result.connections} connections, {result.server_cpu_ms:.3f} ms server CPU per request:")
        for category, share in shares.items():
            print(f"  {category:<28} {share:6.1%}  ~{share * result.server_cpu_ms:.3f} ms/request")

    def tickers_scenarios(self, process: subprocess.Popen[bytes], url: str) -> list[Result]:
        latest = self.work / "latest.jsonl"  # as_of omitted: warms every worker's feature matrix of every ticker
        latest.write_text("".join(json.dumps({"ticker": f"SIG{j:03d}"}) + "\n" for j in range(TICKERS)))
        run_wrk(url, 8, 3, self.cycle, latest)
        results = []
        for connections in self.args.ticker_connections:
            miss = measure("ticker miss", process, url, connections, self.args.duration, self.cycle, self.tickers)
            sent = miss.rps * self.args.duration
            if sent > self.n_tickers_bodies:
                miss.note = f"{sent:.0f} requests > {self.n_tickers_bodies} distinct bodies: some were hits"
            results.append(miss)
        hit = self.work / "hit.json"
        hit.write_text(json.dumps({"ticker": "SIG000", "as_of": HIT_AS_OF}))
        for connections in self.args.ticker_connections:
            results.append(measure("ticker hit", process, url, connections, self.args.duration, self.one, hit))
        return results

    def reference(self, onnx: Path) -> list[Result]:
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "reference_server:app", "--app-dir", str(ROOT / "benchmarks")]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(self.args.workers)]
        base = f"http://127.0.0.1:{port}"
        results = []
        with server(command, {"REFERENCE_ONNX": str(onnx)}, f"{base}/docs", self.work / "reference.log") as process:
            url = f"{base}/predict"
            check = httpx.post(url, content=self.body.read_bytes(), headers={"Content-Type": "application/json"})
            check.raise_for_status()
            run_wrk(url, 4, 2, self.one, self.body)
            for connections in self.args.connections:
                results.append(measure("reference sequence", process, url, connections, *self._seq))
        return results

    def locust(self, base: str) -> None:
        """The repository's Locust scenario; its summary goes to self.locust_summary."""
        binary = shutil.which("locust") or str(ROOT / ".venv-locust" / "bin" / "locust")
        if not Path(binary).is_file():
            self.locust_summary = "locust not found: `make bench` installs it into .venv-locust"
            return
        prefix = self.work / "locust"
        command = [binary, "-f", str(ROOT / "tests" / "load" / "locustfile.py"), "--headless", "-u", "1000"]
        command += ["-r", "100", "-t", self.args.locust_time, "--host", base, "--csv", str(prefix), "--only-summary"]
        subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
        self.locust_summary = locust_summary(prefix.with_name("locust_stats.csv"))


def locust_summary(stats: Path) -> str:
    if not stats.is_file():
        return f"locust wrote no {stats.name}; run it by hand to see why"
    with stats.open() as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    total = rows["Aggregated"]
    count, failures = int(total["Request Count"]), int(total["Failure Count"])
    return (
        f"Locust 1000 users: {float(total['Requests/s']):.0f} req/s, p50 {total['50%']} ms, p95 {total['95%']} ms, "
        f"p99 {total['99%']} ms, failures {failures}/{count} ({100 * failures / max(count, 1):.2f}%); Locust "
        "(one process) shares the cores with the server, so these include Locust's own queueing"
    )


def report(results: list[Result], locust: str | None) -> None:
    print(
        f"{'scenario':<20} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'server CPU ms/req':>18}"
    )
    for r in results:
        print(
            f"{r.scenario:<20} {r.connections:>5} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.errors:>7} {r.server_cpu_ms:>18.3f}" + (f"  ({r.note})" if r.note else "")
        )
    by = {(r.scenario, r.connections): r for r in results}
    for connections in sorted({r.connections for r in results}):
        ours, ref = by.get(("trendcast sequence", connections)), by.get(("reference sequence", connections))
        eager = by.get(("eager sequence", connections))
        if ours and ref:
            print(f"{connections:>3} connections: trendcast / hand-written reference = {ours.rps / ref.rps:.2f}x req/s")
        if ours and eager:
            print(f"{connections:>3} connections: ONNX Runtime / PyTorch eager = {ours.rps / eager.rps:.2f}x req/s")
    top = max((r.connections for r in results if r.scenario == "trendcast sequence"), default=None)
    mid = sorted({r.connections for r in results if r.scenario == "trendcast sequence"})
    if top is not None and len(mid) > 1:
        lower = by[("trendcast sequence", mid[-2])]
        ratio = by[("trendcast sequence", top)].rps / lower.rps
        print(f"trendcast at {top} connections / at {lower.connections}: {ratio:.2f} of the req/s")
    if locust:
        print(locust)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--connections", type=lambda s: [int(c) for c in s.split(",")], default=[1, 16, 64])
    parser.add_argument("--ticker-connections", type=lambda s: [int(c) for c in s.split(",")], default=[64])
    parser.add_argument("--backends", default="onnx,int8", help="onnx, int8, eager (comma-separated)")
    parser.add_argument("--no-binary", action="store_true", help="skip the float32 binary-body point")
    parser.add_argument("--profile", action="store_true", help="py-spy the workers at the highest connection count")
    parser.add_argument("--no-reference", action="store_true", help="skip the hand-written reference server")
    parser.add_argument("--no-ticker", action="store_true", help="skip the ticker scenarios")
    parser.add_argument("--locust", action="store_true", help="also run tests/load/locustfile.py (1000 users)")
    parser.add_argument("--locust-time", default="60s", help="Locust's run time (-t)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install -y wrk` (Debian), then run again.")
    with tempfile.TemporaryDirectory(prefix="trendcast-bench-") as tmp:
        work = Path(tmp)
        onnx_dir, eager_dir, int8_dir = work / "model-onnx", work / "model-eager", work / "model-int8"
        n_features, int8_verdict = build_model(onnx_dir, int8_dir)
        shutil.copytree(onnx_dir, eager_dir, ignore=shutil.ignore_patterns("model.onnx"))
        (work / "one.lua").write_text(ONE_BODY)
        (work / "cycle.lua").write_text(CYCLE_BODIES)
        body = work / "body.json"
        sequence = np.random.default_rng(0).normal(size=(60, n_features)).round(6).tolist()
        body.write_text(json.dumps({"sequence": sequence}))
        (work / "body.bin").write_bytes(np.asarray(sequence, dtype="<f4").tobytes())  # the same window, binary
        bars = fill_store(work / "data")
        n_bodies = ticker_bodies(bars, 400, work / "tickers.jsonl")  # past every indicator's warm-up and the window
        print(
            f"model: Bi-LSTM 128/64 + attention, window 60 x {n_features} features; body {body.stat().st_size:,} "
            f"bytes; {args.workers} workers; {os.cpu_count()} cores shared with wrk; {args.duration} s per point; "
            f"store: {TICKERS} tickers x {BARS} bars, {n_bodies:,} distinct ticker requests"
        )
        bench = Bench(args, work, body, work / "tickers.jsonl", n_bodies)
        results: list[Result] = []
        print(int8_verdict)
        names = {"onnx": ("trendcast", onnx_dir), "eager": ("eager", eager_dir), "int8": ("int8", int8_dir)}
        for backend in args.backends.split(","):
            results += bench.trendcast(*names[backend])
        if not args.no_reference:
            results += bench.reference(onnx_dir / "model.onnx")
        report(results, bench.locust_summary)
        print(
            f"load average after the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (other processes share "
            "the cores: compare runs by server CPU ms/req as well as req/s)"
        )


if __name__ == "__main__":
    main()
