"""Tiny hand-made bars and predictions for backtest tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def hand_bars(
    closes: dict[str, list[float]], opens: dict[str, list[float]] | None = None, start: str = "2021-01-04"
) -> pd.DataFrame:
    """Long bars from close (and open) lists; NaN closes mean the ticker has no bar that day."""
    dates = pd.bdate_range(start, periods=len(next(iter(closes.values()))))
    frames = []
    for ticker, close in closes.items():
        close_arr = np.asarray(close, dtype=float)
        open_arr = np.asarray(opens[ticker], dtype=float) if opens else close_arr.copy()
        frame = pd.DataFrame(
            {
                "ticker": ticker,
                "date": dates,
                "open": open_arr,
                "high": np.fmax(open_arr, close_arr),
                "low": np.fmin(open_arr, close_arr),
                "close": close_arr,
                "volume": 1e6,
                "adj_close": close_arr,
            }
        )
        frames.append(frame.dropna(subset=["close"]))
    return pd.concat(frames, ignore_index=True)


def signal_predictions(bars: pd.DataFrame, signals: dict[str, list[int]], start: int = 0) -> pd.DataFrame:
    """Predictions from per-ticker signal lists (1 = up, -1 = down, 0 = neutral) from the `start`-th bar on."""
    rows = []
    for ticker, values in signals.items():
        dates = bars.loc[bars["ticker"] == ticker, "date"].to_numpy()[start : start + len(values)]
        for date, value in zip(dates, values, strict=True):
            probabilities = {1: (0.1, 0.1, 0.8), -1: (0.8, 0.1, 0.1), 0: (0.1, 0.8, 0.1)}[value]
            rows.append(
                {
                    "ticker": ticker,
                    "date": date,
                    "p_down": probabilities[0],
                    "p_neutral": probabilities[1],
                    "p_up": probabilities[2],
                }
            )
    return pd.DataFrame(rows)


def probability_predictions(bars: pd.DataFrame, p_up: np.ndarray, p_down: np.ndarray) -> pd.DataFrame:
    """Predictions for every bar of `bars` with the given P(Up), P(Down) (P(Neutral) makes the rest)."""
    frame = bars[["ticker", "date"]].copy()
    frame["p_up"], frame["p_down"] = p_up, p_down
    frame["p_neutral"] = 1.0 - frame["p_up"] - frame["p_down"]
    return frame


def random_predictions(bars: pd.DataFrame, seed: int) -> pd.DataFrame:
    probabilities = np.random.default_rng(seed).dirichlet([1.0, 1.0, 1.0], len(bars))
    return probability_predictions(bars, probabilities[:, 2], probabilities[:, 0])
