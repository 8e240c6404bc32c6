"""Compute every feature (and labels, windows index) for a synthetic 500 tickers x 2,520 days universe.

Prints wall seconds and peak memory; the target (issue: under 10 s and 2 GiB on 2 cores) is printed, never asserted.
Run: .venv/bin/python benchmarks/bench_features.py [--tickers 500] [--days 2520]
"""

from __future__ import annotations

import argparse
import resource
import time

from trendcast.config import LabelConfig
from trendcast.data.synthetic import random_walk_bars
from trendcast.features.windows import build_window_set


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    args = parser.parse_args()
    bars = random_walk_bars(n_tickers=args.tickers, n_days=args.days, seed=0)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    ws = build_window_set(bars, window=60, labels=LabelConfig())
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bars: {len(bars):,} ({args.tickers} tickers x {args.days} days), features: {ws.n_features}")
    print(f"samples (60-step windows with labels): {len(ws):,}; feature matrix {ws.rows.nbytes / 2**20:,.0f} MiB")
    print(f"features + labels + window index: {seconds:.2f} s ({len(bars) / seconds:,.0f} bars/s)")
    print(f"peak RSS: {peak:,.0f} MiB (of which input bars + interpreter before the run: {rss_before:,.0f} MiB)")
    print("target: < 10 s and < 2048 MiB on 2 cores")


if __name__ == "__main__":
    main()
