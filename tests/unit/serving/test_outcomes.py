"""Realised outcomes of ticker predictions: judged against the training label, never before t + horizon is stored,
in bounded memory, and counted by the service for the predictions its routes make."""

from __future__ import annotations

import asyncio
from datetime import date

import pandas as pd
import pytest

from tests.unit.serving.conftest import running
from tests.unit.serving.support import FEATURES, TICKERS, WINDOW, fit_tiny_model, tiny_bars
from trendcast.config import LabelConfig, Settings
from trendcast.features.labels import DOWN, NEUTRAL, UP
from trendcast.features.windows import build_window_set
from trendcast.serving import create_app
from trendcast.serving.background import OutcomeResolver
from trendcast.serving.dependencies import Services
from trendcast.serving.metrics import ServiceMetrics
from trendcast.serving.outcomes import Outcome, PendingOutcomes, Prediction, label_config, realised

# closes of one ticker, and the labels for horizon 2 with a fixed 1% band, by hand:
#   t0: 103 / 100 - 1 = +3.0%  -> Up       t1: 100 / 101 - 1 = -0.99% -> Neutral
#   t2: 99 / 103 - 1  = -3.9%  -> Down     t3: 99.5 / 100 - 1 = -0.5% -> Neutral     t4, t5: not known yet
CLOSES = [100.0, 101.0, 103.0, 100.0, 99.0, 99.5]
DAYS = pd.bdate_range("2024-01-01", periods=len(CLOSES))
LABELS = LabelConfig(horizon=2, threshold=0.01)
V = "7"


def bars(n: int = len(CLOSES)) -> pd.DataFrame:
    return pd.DataFrame({"ticker": "AAA", "date": DAYS[:n], "close": CLOSES[:n]})


def day(i: int) -> date:
    return DAYS[i].date()


def judge(frame: pd.DataFrame, predicted: dict[int, int]) -> dict[int, str]:
    predictions = [Prediction("AAA", day(i), V, cls) for i, cls in predicted.items()]
    return {
        DAYS.get_loc(pd.Timestamp(o.prediction.window_end)): o.name for o in realised(frame, predictions, {V: LABELS})
    }


def test_hits_and_misses_against_the_hand_computed_label() -> None:
    outcomes = judge(bars(), {0: UP, 1: UP, 2: DOWN, 3: NEUTRAL, 4: UP, 5: DOWN})
    assert outcomes == {0: "hit", 1: "miss", 2: "hit", 3: "hit"}  # t4, t5: t + 2 is not stored yet


@pytest.mark.parametrize("stored", range(1, len(CLOSES) + 1))
def test_no_outcome_before_the_close_at_t_plus_horizon_is_stored(stored: int) -> None:
    """The leakage guard: the prediction at t0 is judged exactly when the close at t0 + 2 reaches the store."""
    outcomes = judge(bars(stored), {0: UP})
    assert outcomes == ({0: "hit"} if stored >= 1 + LABELS.horizon else {})


def test_volatility_band_is_the_training_one() -> None:
    """A volatility band needs trailing returns known at t: without them the label (and the outcome) waits."""
    vol = LabelConfig(horizon=2, threshold_mode="volatility", vol_lookback=5)
    predictions = [Prediction("AAA", day(2), V, UP)]
    assert realised(bars(), predictions, {V: vol}) == []  # t2 has only 2 past returns, fewer than 5


def test_unknown_tickers_wait() -> None:
    assert realised(bars(), [Prediction("ZZZ", day(0), V, UP)], {V: LABELS}) == []


def test_pending_is_bounded_and_keeps_the_newest() -> None:
    model = fit_tiny_model()
    pending = PendingOutcomes(max_pending=3)
    for i in range(5):
        pending.record("AAA", day(i), V, UP, model)
    pending.record("AAA", day(2), V, UP, model)  # asked again: kept once, now the newest
    predictions, labels = pending.snapshot()
    assert [p.window_end for p in predictions] == [day(3), day(4), day(2)]
    assert labels == {V: label_config(model)}


def test_settle_forgets_judged_predictions_and_unused_label_settings() -> None:
    model = fit_tiny_model()
    pending = PendingOutcomes()
    pending.record("AAA", day(0), "1", UP, model)
    pending.record("AAA", day(1), "2", UP, model)
    pending.settle([Outcome(Prediction("AAA", day(0), "1", UP), UP)])
    predictions, labels = pending.snapshot()
    assert [p.version for p in predictions] == ["2"] and set(labels) == {"2"}


def test_a_judged_prediction_is_not_judged_again() -> None:
    model = fit_tiny_model()
    pending = PendingOutcomes()
    pending.record("AAA", day(0), V, UP, model)
    pending.settle([Outcome(Prediction("AAA", day(0), V, UP), UP)])
    pending.record("AAA", day(0), V, UP, model)  # asked again after it was judged
    assert len(pending) == 0


def test_predictions_of_a_cross_sectional_model_are_not_recorded() -> None:
    """Their label needs the day's median over the training universe, which the waiting tickers' bars cannot give."""
    model = fit_tiny_model()
    relative = model.config.model_copy(update={"labels": LabelConfig(mode="cross_sectional")})
    pending = PendingOutcomes()
    pending.record("AAA", day(0), V, UP, model)
    model.config = relative
    pending.record("AAA", day(1), V, UP, model)
    assert [p.window_end for p in pending.snapshot()[0]] == [day(0)]


def test_max_pending_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PendingOutcomes(max_pending=0)


def test_label_config_takes_the_horizon_the_model_was_fitted_with() -> None:
    model = fit_tiny_model()
    model.horizon = 3
    config = label_config(model)
    assert config.horizon == 3 and config.threshold == model.config.labels.threshold


def test_metrics_count_hits_and_misses_and_forget_them() -> None:
    metrics, model = ServiceMetrics(), fit_tiny_model()
    metrics.ticker_prediction("AAA", day(0), V, UP, model)
    value = metrics.registry.get_sample_value
    assert value("trendcast_prediction_outcomes_total", {"ticker": "AAA", "outcome": "hit"}) == 0.0  # exists early
    assert value("trendcast_ticker_predictions_total", {"ticker": "AAA"}) == 1.0
    metrics.count_outcomes(
        [Outcome(Prediction("AAA", day(0), V, UP), UP), Outcome(Prediction("AAA", day(1), V, UP), DOWN)]
    )
    assert value("trendcast_prediction_outcomes_total", {"ticker": "AAA", "outcome": "hit"}) == 1.0
    assert value("trendcast_prediction_outcomes_total", {"ticker": "AAA", "outcome": "miss"}) == 1.0
    assert len(metrics.outcomes) == 0


def test_the_service_judges_its_ticker_predictions_like_training_labels(settings: Settings) -> None:
    """Predict stored tickers on past days through the API; the resolver judges each against the training label."""
    as_of = [str(d.date()) for d in pd.bdate_range("2015-06-01", periods=6)]
    predicted: list[tuple[str, str, int]] = []  # (ticker, window end, predicted class)

    async def scenario() -> Services:
        app = create_app(settings)
        async with running(app) as client:
            for ticker in TICKERS:
                for when in as_of:
                    response = await client.post("/api/v1/predict", json={"ticker": ticker, "as_of": when})
                    assert response.status_code == 200, response.text
                    body = response.json()
                    predicted.append((ticker, body["window_end"], body["predicted_class"]))
            services: Services = app.state.services
            assert len(services.metrics.outcomes) == len(predicted)
            await OutcomeResolver(services).resolve()
            return services

    services = asyncio.run(scenario())
    assert len(services.metrics.outcomes) == 0  # every one of those days has its label stored
    frame = build_window_set(tiny_bars(), window=WINDOW, labels=LabelConfig(), features=FEATURES).frame()
    label = {(t, str(d.date())): int(y) for t, d, y in zip(frame["ticker"], frame["date"], frame["label"], strict=True)}
    value = services.metrics.registry.get_sample_value
    for ticker in TICKERS:
        expected_hits = sum(cls == label[(t, end)] for t, end, cls in predicted if t == ticker)
        hits = value("trendcast_prediction_outcomes_total", {"ticker": ticker, "outcome": "hit"})
        misses = value("trendcast_prediction_outcomes_total", {"ticker": ticker, "outcome": "miss"})
        assert (hits, misses) == (expected_hits, len(as_of) - expected_hits)
        assert value("trendcast_ticker_predictions_total", {"ticker": ticker}) == len(as_of)
