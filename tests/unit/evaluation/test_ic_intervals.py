"""Block-bootstrap intervals of the mean IC and mean Rank IC against an independent per-day computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from trendcast.evaluation.metrics import information_coefficient_intervals


def _panel(signal: float, n_days: int = 150, n_tickers: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = np.repeat(pd.bdate_range("2021-01-04", periods=n_days).to_numpy(), n_tickers)
    score = rng.normal(size=n_days * n_tickers)
    ret = signal * score + rng.normal(size=n_days * n_tickers)
    return pd.DataFrame({"date": dates, "score": score, "ret": ret})


def _by_hand(frame: pd.DataFrame) -> tuple[float, float]:
    days = [part for _, part in frame.groupby("date")]
    ic = [stats.pearsonr(p["score"], p["ret"])[0] for p in days]
    rank_ic = [stats.spearmanr(p["score"], p["ret"])[0] for p in days]
    return float(np.mean(ic)), float(np.mean(rank_ic))


def _intervals(frame: pd.DataFrame, seed: int = 0) -> dict[str, object]:
    return information_coefficient_intervals(frame["date"], frame["score"], frame["ret"], n_boot=500, seed=seed)


def test_the_means_match_scipy_and_the_intervals_bracket_them() -> None:
    frame = _panel(signal=0.2)
    out = _intervals(frame)
    ic, rank_ic = _by_hand(frame)
    assert abs(out["ic_mean"] - ic) < 1e-12 and abs(out["rank_ic_mean"] - rank_ic) < 1e-12
    for key, point in (("ic_mean_ci", ic), ("rank_ic_mean_ci", rank_ic)):
        low, high = out[key]
        assert 0.0 < low < point < high
    assert out["n_days"] == 150 and out["block_days"] == 5  # round(150 ** (1/3))


def test_no_signal_covers_zero_and_the_width_follows_the_daily_spread() -> None:
    frame = _panel(signal=0.0, seed=1)
    out = _intervals(frame)
    low, high = out["ic_mean_ci"]
    assert low < 0.0 < high
    se = out["ic_std"] / np.sqrt(out["n_days"])  # days are independent here: the CI is about +/- 1.96 se
    assert 2.5 * se < high - low < 6.0 * se
    assert _intervals(frame, seed=1)["ic_mean_ci"] == _intervals(frame, seed=1)["ic_mean_ci"]
