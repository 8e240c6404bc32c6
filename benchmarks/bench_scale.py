"""How training-data preparation and one fold scale with the universe: streamed vs materialised windows, Ray workers.

For each size (default 100, 500 and 2,000 synthetic random-walk tickers x 2,520 days, all catalog features):

1. **sync**: every ticker's features computed once into a Parquet feature store (seconds per 100 tickers);
2. **peak memory of preparation**, each path in a fresh subprocess (peak RSS from `ru_maxrss`, and the part above
   the process's RSS after its imports):
   - *streamed*: `FeatureStore.load_window_set` (the float32 feature table), the last (largest) walk-forward fold's
     training samples, the scaler fitted on them (column by column) and a `WindowDataset` over the scaled rows;
   - *materialised*: the same, then every training window stacked into one (n, 60, n_features) float32 array, as
     a pipeline that builds X up front does. Skipped, saying so, when that array alone would not fit in 40% of the
     memory available now;
3. **samples per second**: shuffled batches of 256 read from the `WindowDataset` (one gather per batch) vs from the
   materialised array (`X[idx]`), both ending as torch tensors (where the materialised path ran);
4. **fold wall time with 1 and 2 Ray Train workers** (`fit_data_parallel`, DDP over gloo on CPU) and, for
   reference, the same fit in this process: one fold of the Bi-LSTM on the most recent `--fold-samples` training
   samples, `--epochs` epochs, hidden 64/32, one torch thread per worker. Ray is started once, outside the timing.

It prints figures and never asserts: timings depend on the machine and its load. Figures in docs/scale.md come from

    .venv/bin/python benchmarks/bench_scale.py                           # 100, 500, 2000 tickers (about 15 minutes)
    .venv/bin/python benchmarks/bench_scale.py --sizes 100 --skip-ray     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trendcast.config import BiLSTMConfig, ExperimentConfig, LabelConfig
from trendcast.data.synthetic import random_walk_bars
from trendcast.evaluation.walk_forward import make_folds
from trendcast.features.store import FeatureStore
from trendcast.features.windows import WindowSet

WINDOW = 60
BATCH = 256
LABELS = LabelConfig()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,500,2000", help="comma-separated ticker counts")
    parser.add_argument("--days", type=int, default=2520, help="trading days per ticker (2,520 = 10 years)")
    parser.add_argument("--root", type=Path, default=None, help="feature store folder (default: a temp folder)")
    parser.add_argument("--batches", type=int, default=200, help="batches timed per read-throughput figure")
    parser.add_argument("--fold-samples", type=int, default=20_000, help="training samples of the timed fold")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the timed fold")
    parser.add_argument("--skip-ray", action="store_true", help="skip the fold timings")
    parser.add_argument("--child", choices=["streamed", "materialised"], help=argparse.SUPPRESS)
    parser.add_argument("--tickers", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args()


# -- data -------------------------------------------------------------------------------------------------------------
def ticker_name(i: int) -> str:
    return f"S{i:05d}"


def synthetic_bars(n_tickers: int, days: int) -> Iterator[tuple[str, pd.DataFrame]]:
    """One seeded random walk per ticker, generated one ticker at a time (memory holds one ticker's bars)."""
    for i in range(n_tickers):
        bars = random_walk_bars(1, days, seed=i)
        yield ticker_name(i), bars.assign(ticker=ticker_name(i))


def sync(root: Path, n_tickers: int, days: int) -> float:
    """Seconds per 100 tickers to compute and store the features of tickers not yet stored."""
    store = FeatureStore(root)
    have = set(store.stored_tickers())
    todo = [(t, b) for t, b in synthetic_bars(n_tickers, days) if t not in have] if len(have) < n_tickers else []
    started = time.perf_counter()
    summary = store.sync(todo, progress=True)
    seconds = time.perf_counter() - started
    return 100.0 * seconds / len(summary.computed) if summary.computed else float("nan")


def last_fold_train(root: Path, n_tickers: int) -> WindowSet:
    ws = FeatureStore(root).load_window_set([ticker_name(i) for i in range(n_tickers)], window=WINDOW, labels=LABELS)
    fold = make_folds(ws, ExperimentConfig(window=WINDOW))[-1]  # the largest training set
    return ws.take(fold.train_mask(ws.dates))


# -- the child processes: one preparation path each, measured from a fresh interpreter ------------------------------
def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**2


def child(path: str, root: Path, n_tickers: int, batches: int) -> dict[str, float]:
    import torch

    from trendcast.features.dataset import WindowDataset
    from trendcast.features.scaling import WindowScaler

    baseline = current_rss_mib()
    started = time.perf_counter()
    train = last_fold_train(root, n_tickers)
    scaler = WindowScaler().fit(train, pd.Timestamp(train.dates.max()))
    dataset = WindowDataset(train, scaler)
    out = {"samples": float(len(train)), "n_features": float(train.n_features)}
    out["table_mib"] = dataset.data.rows.nbytes / 1024**2
    rng = np.random.default_rng(0)
    if path == "streamed":
        out["prepare_s"] = time.perf_counter() - started

        def epochs() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            loader = dataset.loader(BATCH, shuffle_seed=0)
            while True:
                yield from loader

        stream = epochs()
        out["samples_per_s"] = _timed(lambda: next(stream)[0], batches)
    else:
        x = dataset.data.windows()  # (n, window, n_features) float32: every overlapping window, materialised
        labels = dataset.data.labels
        out["prepare_s"] = time.perf_counter() - started
        out["windows_mib"] = x.nbytes / 1024**2

        def read() -> torch.Tensor:
            idx = rng.integers(0, len(x), BATCH)
            torch.from_numpy(labels[idx])
            return torch.from_numpy(x[idx])

        out["samples_per_s"] = _timed(read, batches)
    out["peak_mib"], out["baseline_mib"] = peak_rss_mib(), baseline
    return out


def _timed(read: object, batches: int) -> float:
    assert callable(read)
    read()  # warm-up
    started = time.perf_counter()
    for _ in range(batches):
        read()
    return batches * BATCH / (time.perf_counter() - started)


def run_child(path: str, root: Path, n_tickers: int, batches: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", path, "--root", str(root), "--tickers", str(n_tickers)]
    command += ["--batches", str(batches)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{path} preparation failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def materialised_fits(n_samples: int, n_features: int) -> tuple[bool, float]:
    need = n_samples * WINDOW * n_features * 4 / 1024**3
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1024**3
    return need < 0.4 * available, need


# -- one fold on Ray Train ------------------------------------------------------------------------------------------
def fold_seconds(root: Path, n_tickers: int, fold_samples: int, epochs: int) -> dict[str, float]:
    from trendcast.features.scaling import WindowScaler
    from trendcast.models.bilstm_attention import BiLSTMAttention
    from trendcast.models.distributed import fit_data_parallel
    from trendcast.models.torch_training import most_recent, split_validation_tail, train_classifier
    from trendcast.ray_runtime import ray_session

    train = most_recent(last_fold_train(root, n_tickers), fold_samples)
    scaled = WindowScaler().fit(train, pd.Timestamp(train.dates.max())).transform(train)
    fit, valid = split_validation_tail(scaled, 0.15, LABELS.horizon)
    config = BiLSTMConfig(hidden1=64, hidden2=32, epochs=epochs, patience=epochs)
    out: dict[str, float] = {"fold_samples": float(len(fit))}
    started = time.perf_counter()
    network = BiLSTMAttention(train.n_features, config)
    train_classifier(network, fit, fit.labels, valid, valid.labels, config, seed=0, threads=1, progress=False)
    out["local_1_thread_s"] = time.perf_counter() - started
    with ray_session(None, num_cpus=2):
        for workers in (1, 2):
            started = time.perf_counter()
            fit_data_parallel(fit, valid, config, seed=0, workers=workers, threads=1)
            out[f"ray_{workers}_workers_s"] = time.perf_counter() - started
    return out


# -- the report -------------------------------------------------------------------------------------------------------
def main() -> None:
    args = _arguments()
    if args.child:
        print(json.dumps(child(args.child, args.root, args.tickers, args.batches)))
        return
    root = args.root or Path(tempfile.mkdtemp(prefix="trendcast-bench-scale-"))
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {sys.version[:6]}")
    print(f"data: synthetic random walks x {args.days} days, window {WINDOW}, all catalog features; store {root}")
    rows = []
    for n in sizes:
        print(f"\n== {n} tickers ==")
        per_100 = sync(root, n, args.days)
        streamed = run_child("streamed", root, n, args.batches)
        fits, need = materialised_fits(int(streamed["samples"]), int(streamed["n_features"]))
        row: dict[str, Any] = {
            "tickers": n,
            "sync_s_per_100": per_100,
            "samples": streamed["samples"],
            "streamed": streamed,
        }
        print(f"sync: {per_100:.1f} s per 100 tickers; last-fold training samples: {streamed['samples']:,.0f}")
        _print_path("streamed", streamed)
        if fits:
            materialised = run_child("materialised", root, n, args.batches)
            row["materialised"] = materialised
            _print_path("materialised", materialised)
            print(
                f"memory ratio materialised/streamed (above imports): "
                f"{_above(materialised) / _above(streamed):.1f}x; streamed read speed "
                f"{streamed['samples_per_s'] / materialised['samples_per_s']:.0%} of materialised"
            )
        else:
            print(f"materialised: skipped, its windows alone need {need:.1f} GiB (> 40% of the memory available)")
        if not args.skip_ray:
            row["fold"] = fold_seconds(root, n, args.fold_samples, args.epochs)
            _print_fold(row["fold"])
        rows.append(row)
    print("\n" + json.dumps(rows, indent=1))
    if args.root is None:
        shutil.rmtree(root, ignore_errors=True)


def _above(result: dict[str, float]) -> float:
    return result["peak_mib"] - result["baseline_mib"]


def _print_path(name: str, result: dict[str, float]) -> None:
    extra = f", windows {result['windows_mib']:,.0f} MiB" if "windows_mib" in result else ""
    print(
        f"{name}: peak RSS {result['peak_mib']:,.0f} MiB ({_above(result):,.0f} above imports; feature table "
        f"{result['table_mib']:,.0f} MiB{extra}), prepared in {result['prepare_s']:.1f} s, "
        f"{result['samples_per_s']:,.0f} samples/s read"
    )


def _print_fold(fold: dict[str, float]) -> None:
    print(
        f"one fold ({fold['fold_samples']:,.0f} samples): in-process {fold['local_1_thread_s']:.1f} s, "
        f"Ray Train 1 worker {fold['ray_1_workers_s']:.1f} s, 2 workers {fold['ray_2_workers_s']:.1f} s"
    )


if __name__ == "__main__":
    main()
