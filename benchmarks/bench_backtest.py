"""Backtest speed on 500 tickers x 2,520 days, and the same strategy through vectorbt on a subset.

    .venv/bin/python benchmarks/bench_backtest.py [--tickers 500] [--days 2520] [--subset 50] [--repeat 3]

1. Synthetic random-walk prices and random probabilities (not timed), then `run_backtest` with every metric,
   per-ticker table and trade list (timed; target under 1 s; printed, never asserted).
2. The same long/flat next-close strategy on a subset through vectorbt (`Portfolio.from_orders`, target-percent
   orders at the close): per-ticker returns, total return, Sharpe, max drawdown, trade count and the equal-weight
   portfolio, ours beside theirs with the largest difference, without costs and with 10 bps, plus the speed ratio.

With costs the numbers differ by design at O(cost^2) per entry: we charge cost x |change of weight| of the sleeve
(entering all-in leaves V * (1 - c) invested), vectorbt buys as much as the cash allows after fees (V / (1 + c)).
vectorbt is a dev-only dependency (Apache-2.0 with Commons Clause; not shipped with trendcast).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from trendcast.backtest import BacktestResult, run_backtest
from trendcast.backtest import metrics as m
from trendcast.config import BacktestConfig
from trendcast.data.synthetic import random_walk_bars


def synthetic(n_tickers: int, n_days: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = random_walk_bars(n_tickers=n_tickers, n_days=n_days, seed=seed)
    probabilities = np.random.default_rng(seed + 1).dirichlet([1.0, 1.0, 1.0], len(bars))
    predictions = bars[["ticker", "date"]].copy()
    predictions[["p_down", "p_neutral", "p_up"]] = probabilities
    return bars, predictions


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, list[float]]:
    """Result of the last call and the wall-clock seconds of each call."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, times


def cpu_seconds(fn: Callable[[], Any]) -> float:
    """CPU seconds of one call (this process): a fairer number than wall time on a shared machine."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def vectorbt_run(result: BacktestResult, close: pd.DataFrame, fee: float) -> Any:
    import vectorbt as vbt

    positions = result.positions
    orders = positions.where(positions.diff().fillna(positions) != 0)  # an order only where the target changes
    return vbt.Portfolio.from_orders(
        close.loc[positions.index], size=orders, size_type="targetpercent", fees=fee, freq="1D", init_cash=1e6
    )


def compare(result: BacktestResult, close: pd.DataFrame, fee: float) -> dict[str, float]:
    portfolio = vectorbt_run(result, close, fee)
    theirs = portfolio.returns()
    ours = result.ticker_returns
    ticker_metrics = result.ticker_metrics
    sharpe_theirs = portfolio.sharpe_ratio(year_freq="252D")
    return {
        "daily returns (max |diff|)": float(np.nanmax(np.abs(ours.to_numpy() - theirs.to_numpy()))),
        "total return (max |diff|)": float(np.max(np.abs(ticker_metrics["total_return"] - portfolio.total_return()))),
        "Sharpe (max |diff|)": float(np.max(np.abs(ticker_metrics["sharpe"] - sharpe_theirs))),
        "max drawdown (max |diff|)": float(np.max(np.abs(ticker_metrics["max_drawdown"] - portfolio.max_drawdown()))),
        "trades (max |diff|)": float(np.max(np.abs(ticker_metrics["n_trades"] - portfolio.trades.count()))),
        "portfolio total return, ours": float(m.total_return(result.returns)),
        "portfolio total return, vectorbt": float(m.total_return(theirs.mean(axis=1))),
    }


def print_comparison(title: str, rows: dict[str, float]) -> None:
    print(f"\n{title}")
    for name, value in rows.items():
        print(f"  {name:<36} {value: .3e}" if "diff" in name else f"  {name:<36} {value: .10f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--subset", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    bars, predictions = synthetic(args.tickers, args.days)
    config = BacktestConfig(execution="next_close")  # vectorbt below fills orders at closes, so compare like with like
    result, times = timed(lambda: run_backtest(predictions, bars, config), args.repeat)
    print(f"run_backtest: {args.tickers} tickers x {args.days} days ({len(predictions):,} predictions), all metrics")
    print(f"  best {min(times):.3f} s, median {float(np.median(times)):.3f} s over {args.repeat} runs (target < 1 s)")
    print(f"  CPU time of one run: {cpu_seconds(lambda: run_backtest(predictions, bars, config)):.3f} s")
    print(f"  {len(result.trades):,} trades, strategy Sharpe {result.metrics['strategy']['sharpe']:.3f}")

    try:
        import vectorbt  # noqa: F401
    except ImportError:
        print("\nvectorbt is not installed (pip install -e '.[dev]'); skipping the reference comparison.")
        return
    tickers = sorted(predictions["ticker"].unique())[: args.subset]
    sub_bars, sub_predictions = bars[bars["ticker"].isin(tickers)], predictions[predictions["ticker"].isin(tickers)]
    close = sub_bars.pivot(index="date", columns="ticker", values="adj_close")
    sub_result, ours_times = timed(lambda: run_backtest(sub_predictions, sub_bars, config), args.repeat)
    _, cold = timed(lambda: vectorbt_run(sub_result, close, 1e-3).stats(silence_warnings=True), 1)
    _, warm = timed(lambda: vectorbt_run(sub_result, close, 1e-3).stats(silence_warnings=True), args.repeat)
    for bps in (0.0, 10.0):
        sub_config = BacktestConfig(commission_bps=bps, slippage_bps=0.0, execution="next_close")
        result_bps = run_backtest(sub_predictions, sub_bars, sub_config)
        print_comparison(f"vs vectorbt, {len(tickers)} tickers, {bps:g} bps:", compare(result_bps, close, bps / 1e4))
    print(f"\nspeed on {len(tickers)} tickers x {args.days} days:")
    print(f"  ours {min(ours_times):.3f} s (validation, signals, costs, every metric, per-ticker table, trades)")
    print(
        f"  vectorbt first call {cold[0]:.2f} s (numba compile unless cached), then {min(warm):.3f} s (orders + stats)"
    )
    print(f"  ratio vectorbt / ours (warm): {min(warm) / min(ours_times):.1f}x")


if __name__ == "__main__":
    main()
