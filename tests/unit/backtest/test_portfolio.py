"""The cross-sectional long/short portfolio against a hand-computed example, and its timing guards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendcast.backtest.portfolio import long_short_portfolio
from trendcast.errors import DataError

DATES = pd.bdate_range("2020-01-06", periods=5)
OPENS: dict[str, list[float]] = {
    "A": [10, 11, 12, 12, 13],
    "B": [20, 20, 19, 21, 21],
    "C": [30, 33, 30, 30, 27],
    "D": [40, 40, 44, 40, 40],
    "E": [50, np.nan, 50, 50, 50],
}
SCORES: dict[int, dict[str, float]] = {  # date index -> {ticker: score}
    0: {"A": 0.9, "B": 0.1, "C": 0.5, "D": 0.6, "E": 0.95},  # E has no open at t+1: not tradeable
    1: {"A": 0.2, "B": 0.3, "C": 0.8, "D": 0.7, "E": 0.1},
    2: {"C": 0.5, "D": 0.4},  # exactly 2k scored stocks
    3: {"A": 0.5, "B": 0.4, "C": 0.3, "D": 0.2, "E": 0.1},  # no t+2 bar: never traded
}


def _prices() -> pd.DataFrame:
    return pd.DataFrame(
        [(t, d, OPENS[t][i]) for t in OPENS for i, d in enumerate(DATES)], columns=["ticker", "date", "open"]
    )


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        [(t, DATES[i], s) for i, row in SCORES.items() for t, s in row.items()], columns=["ticker", "date", "score"]
    )


def test_returns_equal_a_hand_computed_example() -> None:
    result = long_short_portfolio(_scores(), _prices(), k=1, cost_bps=10.0)
    # day 0: long A (0.9), short B (0.1); held open d1 -> open d2; from flat: turnover 2
    # day 1: long C, short E; A and B closed: turnover 4
    # day 2: long C (kept), short D; E covered: turnover 2
    gross = [(12 / 11 - 1) - (19 / 20 - 1), (30 / 30 - 1) - (50 / 50 - 1), (27 / 30 - 1) - (40 / 40 - 1)]
    turnover = [2.0, 4.0, 2.0]
    net = [g - u * 10.0 / 1e4 for g, u in zip(gross, turnover, strict=True)]
    daily = result.daily
    assert list(daily.index) == list(DATES[:3])
    assert list(daily["entry_date"]) == list(DATES[1:4])
    np.testing.assert_allclose(daily["gross"], gross, rtol=0, atol=1e-12)
    np.testing.assert_allclose(daily["turnover"], turnover, rtol=0, atol=1e-12)
    np.testing.assert_allclose(daily["net"], net, rtol=0, atol=1e-12)
    assert [result.longs[d] for d in DATES[:3]] == [["A"], ["C"], ["C"]]
    assert [result.shorts[d] for d in DATES[:3]] == [["B"], ["E"], ["D"]]


def test_summary_uses_the_backtest_metrics() -> None:
    result = long_short_portfolio(_scores(), _prices(), k=1, cost_bps=10.0)
    summary = result.summary()
    net = result.daily["net"].to_numpy()
    assert summary["net_mean_daily"] == pytest.approx(net.mean(), abs=1e-15)
    assert summary["net_sharpe"] == pytest.approx(net.mean() / net.std(ddof=1) * np.sqrt(252), rel=1e-12)
    assert summary["gross_max_drawdown"] <= 0.0
    assert set(result.by_year()) == {2020}


def test_too_few_scored_stocks_leaves_the_book_flat() -> None:
    scores = _scores()
    result = long_short_portfolio(scores[scores["date"] == DATES[2]], _prices(), k=2, cost_bps=0.0)
    assert (result.daily["gross"] == 0.0).all()
    assert (result.daily["n_long"] == 0).all()


def test_later_scores_and_prices_do_not_change_earlier_days() -> None:
    base = long_short_portfolio(_scores(), _prices(), k=1, cost_bps=10.0).daily
    scores, prices = _scores(), _prices()
    scores.loc[scores["date"] >= DATES[2], "score"] *= -1  # flip every later call
    prices.loc[prices["date"] == DATES[4], "open"] *= 3  # and move a later price
    moved = long_short_portfolio(scores, prices, k=1, cost_bps=10.0).daily
    pd.testing.assert_frame_equal(base.iloc[:2], moved.iloc[:2])


def test_bad_input_is_refused() -> None:
    with pytest.raises(DataError, match="columns"):
        long_short_portfolio(_scores().drop(columns="score"), _prices())
    with pytest.raises(DataError, match="one score"):
        long_short_portfolio(pd.concat([_scores(), _scores()]), _prices())
    with pytest.raises(DataError, match="k must"):
        long_short_portfolio(_scores(), _prices(), k=0)
