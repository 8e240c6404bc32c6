"""The dashboard's API in-process: prices from the store, the served model's out-of-sample history and backtest from
its bundle, the model card's scores and verdict, and the errors (unknown ticker, bad range, a bundle saved without
its evaluation, missing key)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.unit.serving.conftest import running
from tests.unit.serving.support import TICKERS, evaluated_model_dir, filled_store
from trendcast.backtest.engine import run_backtest
from trendcast.config import Settings
from trendcast.data.store import BarStore
from trendcast.evaluation.report import ModelScore
from trendcast.models.bundle import PREDICTIONS_FILE, REPORT_FILE
from trendcast.serving import create_app
from trendcast.serving.dashboard import DashboardCache, verdict_of
from trendcast.serving.schemas import GatePublic

TICKER = TICKERS[1]
CLASSES = np.array(["Down", "Neutral", "Up"])


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return evaluated_model_dir(tmp_path_factory.mktemp("evaluated") / "logreg")


def make_settings(tmp_path: Path, model_dir: Path, **extra: Any) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", model_dir=model_dir, log_json=True, log_level="WARNING", **extra)
    filled_store(settings.resolved_database_url).close()
    return settings


def get(settings: Settings, *paths: str, headers: dict[str, str] | None = None) -> list[Any]:
    async def scenario() -> list[Any]:
        async with running(create_app(settings)) as client:
            return [await client.get(path, headers=headers) for path in paths]

    return asyncio.run(scenario())


def saved_predictions(folder: Path, ticker: str = TICKER) -> pd.DataFrame:
    frame = pd.read_parquet(folder / PREDICTIONS_FILE)
    return frame[frame["ticker"] == ticker].sort_values("date").reset_index(drop=True)


# -- prices -----------------------------------------------------------------------------------------------------------
def test_prices_are_the_stored_bars_in_the_range(tmp_path: Path, evaluated: Path) -> None:
    settings = make_settings(tmp_path, evaluated)
    whole, part = get(
        settings, f"/api/v1/prices/{TICKER.lower()}", f"/api/v1/prices/{TICKER}?start=2015-03-02&end=2015-03-31"
    )
    stored = BarStore(settings.resolved_database_url).load([TICKER])
    body = whole.json()
    assert whole.status_code == 200 and body["ticker"] == TICKER and body["count"] == len(stored) == len(body["bars"])
    assert body["bars"][0] == {
        "date": str(stored["date"].iloc[0].date()),
        **{k: pytest.approx(float(stored[k].iloc[0])) for k in ("open", "high", "low", "close", "volume")},
    }
    assert [b["close"] for b in body["bars"]] == pytest.approx(stored["close"].tolist())
    days = [b["date"] for b in part.json()["bars"]]
    inside = stored[(stored["date"] >= "2015-03-02") & (stored["date"] <= "2015-03-31")]
    assert days == [str(d.date()) for d in inside["date"]] and days[0] == "2015-03-02" and days[-1] == "2015-03-31"


@pytest.mark.parametrize("path", ["/api/v1/prices/NOPE", "/api/v1/history/NOPE", "/api/v1/backtest/NOPE"])
def test_unknown_ticker_is_404_like_predict(tmp_path: Path, evaluated: Path, path: str) -> None:
    settings = make_settings(tmp_path, evaluated)
    (response,) = get(settings, path)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_ticker" and "NOPE" in error["message"] and error["request_id"]


@pytest.mark.parametrize("kind", ["prices", "history", "backtest"])
def test_start_after_end_and_bad_dates_are_422(tmp_path: Path, evaluated: Path, kind: str) -> None:
    settings = make_settings(tmp_path, evaluated)
    reversed_range, bad_date = get(
        settings,
        f"/api/v1/{kind}/{TICKER}?start=2015-06-01&end=2015-05-01",
        f"/api/v1/{kind}/{TICKER}?start=2015-13-01",
    )
    assert reversed_range.status_code == 422 and reversed_range.json()["error"]["code"] == "validation_error"
    assert "start" in reversed_range.json()["error"]["message"]
    assert bad_date.status_code == 422 and bad_date.json()["error"]["code"] == "validation_error"


# -- history ----------------------------------------------------------------------------------------------------------
def test_history_is_the_saved_out_of_sample_predictions_with_a_hand_counted_hit_rate(
    tmp_path: Path, evaluated: Path
) -> None:
    settings = make_settings(tmp_path, evaluated)
    whole, part, info = get(
        settings,
        f"/api/v1/history/{TICKER}",
        f"/api/v1/history/{TICKER}?start=2015-09-01&end=2015-10-30",
        "/api/v1/model/info",
    )
    body, frame = whole.json(), saved_predictions(evaluated)
    assert whole.status_code == 200 and body["source"] == "walk_forward" and body["model_type"] == "logreg"
    assert body["model"] == {"name": info.json()["name"], "version": info.json()["version"]}
    assert body["horizon"] == 1 and body["count"] == len(frame) == len(body["points"]) > 50
    proba = frame[["p_down", "p_neutral", "p_up"]].to_numpy()
    predicted, actual = CLASSES[proba.argmax(axis=1)], CLASSES[frame["label"].to_numpy()]
    assert [p["date"] for p in body["points"]] == [str(d.date()) for d in frame["date"]]
    assert [p["predicted"] for p in body["points"]] == list(predicted)
    assert [p["actual"] for p in body["points"]] == list(actual)
    assert [p["confidence"] for p in body["points"]] == pytest.approx(proba.max(axis=1).tolist())
    assert [p["fold"] for p in body["points"]] == frame["fold"].tolist()
    assert body["known"] == len(frame) and body["hit_rate"] == pytest.approx(np.mean(predicted == actual))
    window = part.json()
    inside = (frame["date"] >= "2015-09-01") & (frame["date"] <= "2015-10-30")
    assert window["count"] == int(inside.sum()) > 0
    assert window["hit_rate"] == pytest.approx(np.mean((predicted == actual)[inside.to_numpy()]))


def test_history_of_a_stored_ticker_outside_the_evaluation_is_empty(tmp_path: Path, evaluated: Path) -> None:
    settings = make_settings(tmp_path, evaluated)
    (response,) = get(settings, f"/api/v1/history/{TICKER}?start=2030-01-01")
    assert response.status_code == 200
    assert response.json()["count"] == 0 and response.json()["hit_rate"] is None and response.json()["known"] == 0


# -- backtest ---------------------------------------------------------------------------------------------------------
def test_backtest_equity_ends_at_the_engines_total_return(tmp_path: Path, evaluated: Path) -> None:
    settings = make_settings(tmp_path, evaluated)
    whole, part = get(settings, f"/api/v1/backtest/{TICKER}", f"/api/v1/backtest/{TICKER}?start=2015-09-01")
    body = whole.json()
    assert whole.status_code == 200 and body["execution"] == "next_open" and body["costs_bps"] == 10.0
    frame = saved_predictions(evaluated)
    bars = BarStore(settings.resolved_database_url).load([TICKER])
    expected = run_backtest(frame, bars)  # the default config is the tiny model's own
    assert body["entry_rule"] == expected.entry.describe()
    equity = body["equity"]
    assert body["count"] == len(equity) == len(expected.returns) + 1
    assert equity[0]["strategy"] == 1.0 and equity[0]["buy_and_hold"] == 1.0
    assert equity[0]["date"] == str(frame["date"].iloc[0].date())  # the first signal's bar; the fill is the next
    assert equity[-1]["strategy"] == pytest.approx(1 + expected.metrics["strategy"]["total_return"])
    assert equity[-1]["buy_and_hold"] == pytest.approx(1 + expected.metrics["benchmark"]["total_return"])
    peak = np.maximum.accumulate([p["strategy"] for p in equity])
    assert [p["strategy_drawdown"] for p in equity] == pytest.approx(
        list(np.array([p["strategy"] for p in equity]) / peak - 1)
    )
    for side, engine in (("strategy", "strategy"), ("buy_and_hold", "benchmark")):
        metrics = body["metrics"][side]
        for key in ("sharpe", "sortino", "max_drawdown", "annual_return", "total_return", "win_rate", "profit_factor",
                    "exposure", "trades"):  # fmt: skip
            assert key in metrics
        assert metrics["sharpe"] == pytest.approx(expected.metrics[engine]["sharpe"])
        assert metrics["annual_return"] == pytest.approx(expected.metrics[engine]["cagr"])
    assert body["metrics"]["buy_and_hold"]["trades"] == 1
    later = part.json()["equity"]
    assert later[0]["strategy"] == 1.0 and later[0]["date"] >= "2015-08-31" and len(later) < len(equity)


# -- the card ---------------------------------------------------------------------------------------------------------
def test_model_card_scores_every_evaluated_model_and_states_the_verdict(tmp_path: Path, evaluated: Path) -> None:
    import json

    settings = make_settings(tmp_path, evaluated)
    (response,) = get(settings, "/api/v1/model/card")
    card, report = response.json(), json.loads((evaluated / REPORT_FILE).read_text())
    assert response.status_code == 200 and card["model_type"] == "logreg" and card["primary_metric"] == "auc"
    assert card["alias"] == "local" and card["window"] == 5 and card["horizon"] == 1 and card["trained_through"]
    assert card["scores"][0]["model"] == "logreg" and card["scores"][0]["served"] is True
    assert {s["model"] for s in card["scores"]} == set(report["models"]) == {"logreg", "majority", "momentum"}
    for score in card["scores"]:
        pooled = report["models"][score["model"]]["pooled"]
        assert score["auc"]["value"] == pytest.approx(pooled["metrics"]["auc_macro_ovr"])
        assert [score["auc"]["low"], score["auc"]["high"]] == pytest.approx(pooled["auc_ci"])
        assert score["accuracy"]["value"] == pytest.approx(pooled["metrics"]["accuracy"])
        assert score["n"] == pooled["metrics"]["n_samples"]
    assert card["decision"]["promoted"] is report["decision"]["promoted"]
    assert [g["name"] for g in card["decision"]["gates"]] == [g["name"] for g in report["decision"]["gates"]]
    auc = {s["model"]: s["auc"]["value"] for s in card["scores"]}
    low = next(s["auc"]["low"] for s in card["scores"] if s["model"] == "logreg")
    skill = next(g for g in card["decision"]["gates"] if g["name"] == "skill")
    better = low > max(auc["majority"], auc["momentum"]) and skill["passed"]
    assert card["verdict"] == ("better" if better else "not_better")
    assert f"{auc['logreg']:.3f}" in card["statement"]


def score(name: str, auc: float, ci: tuple[float, float]) -> ModelScore:
    return ModelScore(name, 0.4, (0.3, 0.5), auc, ci, 0.4, 0.4, 1.0, 0.6, 100, {})


@pytest.mark.parametrize(
    ("mine", "skill", "verdict", "words"),
    [
        (
            score("lightgbm", 0.627, (0.61, 0.64)),
            True,
            "better",
            "is better than every baseline evaluated (majority, momentum); the best baseline, momentum, scored 0.580",
        ),
        (
            score("lightgbm", 0.570, (0.55, 0.59)),
            None,
            "not_better",
            "is not better than momentum: momentum scored AUC 0.580",
        ),
        (score("lightgbm", 0.600, (0.61, 0.64)), False, "not_better", "did not pass the skill gate (p too high)"),
        (score("lightgbm", 0.600, (0.57, 0.63)), None, "not_better", "momentum's AUC 0.580 is inside its 95% interval"),
        (
            score("lightgbm", 0.600, (0.57, 0.63)),
            True,
            "not_better",
            "is not clearly better than momentum",
        ),  # gate passed
        (score("lightgbm", 0.600, (0.59, 0.63)), None, "better", "LightGBM (AUC 0.600 [0.590, 0.630]) is better"),
        (score("lightgbm", math.nan, (math.nan, math.nan)), None, "unknown", "unknown"),
    ],
)
def test_the_better_rule(mine: ModelScore, skill: bool | None, verdict: str, words: str) -> None:
    scores = {
        "lightgbm": mine,
        "majority": score("majority", 0.5, (0.49, 0.51)),
        "momentum": score("momentum", 0.58, (0.56, 0.6)),
    }
    gate = None if skill is None else GatePublic(name="skill", passed=skill, detail="p too high")
    got, statement = verdict_of(scores, "lightgbm", gate)
    assert got == verdict and words in statement
    assert verdict_of({"lightgbm": mine}, "lightgbm", gate)[0] == "unknown"  # no baseline to compare with


# -- a bundle without its evaluation, keys, caching ------------------------------------------------------------------
def test_a_bundle_saved_without_evaluation_says_so(tmp_path: Path, saved_model: Path) -> None:
    settings = make_settings(tmp_path, saved_model)
    history, backtest, card = get(
        settings, f"/api/v1/history/{TICKER}", f"/api/v1/backtest/{TICKER}", "/api/v1/model/card"
    )
    for response in (history, backtest):
        assert response.status_code == 409 and response.json()["error"]["code"] == "no_evaluation"
        assert "Retrain" in response.json()["error"]["message"]
    assert card.status_code == 200 and card.json()["scores"] == [] and card.json()["verdict"] == "unknown"
    assert card.json()["decision"] is None and "retrain" in card.json()["statement"]


def test_dashboard_routes_need_the_api_key_when_keys_are_configured(tmp_path: Path, evaluated: Path) -> None:
    settings = make_settings(tmp_path, evaluated, api_keys=["k-secret-123456"])
    paths = [
        f"/api/v1/prices/{TICKER}",
        f"/api/v1/history/{TICKER}",
        f"/api/v1/backtest/{TICKER}",
        "/api/v1/model/card",
    ]
    assert [r.status_code for r in get(settings, *paths)] == [401] * 4
    assert [r.status_code for r in get(settings, *paths, headers={"X-API-Key": "k-secret-123456"})] == [200] * 4


def test_the_cache_computes_once_per_version_and_key() -> None:
    calls: list[str] = []

    def compute(tag: str) -> str:
        calls.append(tag)
        return tag

    async def scenario() -> list[str]:
        cache = DashboardCache(max_entries=2)
        return [
            await cache.get("v1", "a", lambda: compute("a1")),
            await cache.get("v1", "a", lambda: compute("a2")),  # cached
            await cache.get("v2", "a", lambda: compute("a3")),  # new version: recomputed
            await cache.get("v2", "b", lambda: compute("b")),
            await cache.get("v2", "c", lambda: compute("c")),  # evicts a
            await cache.get("v2", "a", lambda: compute("a4")),
        ]

    assert asyncio.run(scenario()) == ["a1", "a1", "a3", "b", "c", "a4"]
    assert calls == ["a1", "a3", "b", "c", "a4"]


# -- POST /api/v1/explain with method ---------------------------------------------------------------------------------
def post_explain(settings: Settings, *bodies: dict[str, Any]) -> list[Any]:
    async def scenario() -> list[Any]:
        async with running(create_app(settings)) as client:
            return [await client.post("/api/v1/explain", json=body) for body in bodies]

    return asyncio.run(scenario())


def test_explain_with_lime_and_auto(tmp_path: Path, evaluated: Path) -> None:
    settings = make_settings(tmp_path, evaluated)
    body = {"ticker": TICKER, "as_of": "2015-10-01", "top_k": 3}
    auto, lime, again, bad = post_explain(
        settings, body, {**body, "method": "lime"}, {**body, "method": "lime"}, {**body, "method": "kernel"}
    )
    assert auto.status_code == 200 and auto.json()["explanation"]["method"] == "linear_shap"
    explanation = lime.json()["explanation"]
    assert lime.status_code == 200 and explanation["method"] == "lime" and len(explanation["top_features"]) == 3
    assert explanation["output_value"] == pytest.approx(lime.json()["prediction"]["confidence"])
    local = explanation["base_value"] + sum(explanation["contributions"].values())
    assert explanation["additivity_error"] == pytest.approx(local - explanation["output_value"], abs=1e-9)
    assert again.json()["explanation"]["contributions"] == explanation["contributions"]  # deterministic
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


def test_lime_without_a_saved_background_is_409(tmp_path: Path, saved_model: Path) -> None:
    settings = make_settings(tmp_path, saved_model)
    (response,) = post_explain(settings, {"ticker": TICKER, "method": "lime"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "no_background"
