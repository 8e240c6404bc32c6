"""The promotion gates on hand-made out-of-sample predictions: each gate refuses what it exists to refuse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendcast.config import GateConfig
from trendcast.pipelines.retrain import decide, gate_calibration, gate_finite

GATES = GateConfig(n_boot=200)
N_DAYS, N_TICKERS = 300, 4


def frame(proba: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    dates = np.repeat(pd.bdate_range("2020-01-01", periods=N_DAYS).to_numpy(), N_TICKERS)
    tickers = np.tile([f"T{i}" for i in range(N_TICKERS)], N_DAYS)
    folds = np.repeat(np.arange(3), int(np.ceil(len(labels) / 3)))[: len(labels)]
    out = pd.DataFrame({"ticker": tickers, "date": dates, "label": labels, "fold": folds})
    out[["p_down", "p_neutral", "p_up"]] = proba
    return out


def labels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3, N_DAYS * N_TICKERS)


def majority(y: np.ndarray) -> pd.DataFrame:
    return frame(np.tile(np.bincount(y, minlength=3) / len(y), (len(y), 1)), y)


def informed(y: np.ndarray, strength: float, seed: int = 1) -> pd.DataFrame:
    """Probabilities that lean towards the true class by `strength` (0 = noise), each row summing to 1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (len(y), 3))
    logits[np.arange(len(y)), y] += strength
    proba = np.exp(logits * 0.3)
    return frame(proba / proba.sum(axis=1, keepdims=True), y)


def test_finite_gate_refuses_nan_and_rows_not_summing_to_one() -> None:
    y = labels()
    good = informed(y, 1.0)
    assert gate_finite(good, GATES).passed
    bad = good.copy()
    bad.loc[3, "p_up"] = np.nan
    bad.loc[7, "p_up"] += 0.01
    result = gate_finite(bad, GATES)
    assert not result.passed and result.detail["n_bad"] == 2


def test_skill_promotes_signal_and_refuses_noise() -> None:
    y = labels()
    predictions = {"majority": majority(y), "logreg": informed(y, 1.5), "momentum": informed(y, 0.0, seed=2)}
    decision = decide(predictions, {"logreg": 0.5, "momentum": 0.1}, ["logreg", "momentum"], GATES)
    assert decision.promoted and decision.challenger is not None and decision.challenger.name == "logreg"
    assert [g.name for g in decision.gates] == ["finite", "skill", "calibration"]  # no champion: no gate 3
    noise = {"majority": majority(y), "momentum": informed(y, 0.0, seed=2)}
    refused = decide(noise, {}, ["momentum"], GATES)
    assert not refused.promoted and "skill" in refused.reason and "503" in refused.reason


def test_champion_gate_needs_a_significant_gain_on_the_same_days() -> None:
    y = labels()
    strong, weak = informed(y, 1.5), informed(y, 0.6, seed=3)
    base = {"majority": majority(y), "lightgbm": strong}
    better = decide(
        {**base, "champion": weak}, {"lightgbm": 1.0, "champion": 0.5}, ["lightgbm"], GATES, champion_version="1"
    )
    assert better.promoted and [g.name for g in better.gates] == ["finite", "skill", "champion", "calibration"]
    same = decide(
        {**base, "champion": strong}, {"lightgbm": 1.0, "champion": 1.0}, ["lightgbm"], GATES, champion_version="1"
    )
    assert not same.promoted and "gate 'champion'" in same.reason and "version 1 keeps serving" in same.reason
    # a better AUC does not excuse a much worse backtest
    costly = decide(
        {**base, "champion": weak}, {"lightgbm": 0.2, "champion": 0.5}, ["lightgbm"], GATES, champion_version="1"
    )
    assert not costly.promoted and "Sharpe" in costly.reason


def test_calibration_gate_refuses_overconfident_probabilities() -> None:
    y = labels()
    confident = informed(y, 0.3)  # a little skill, stated with near certainty
    sharp = confident[["p_down", "p_neutral", "p_up"]].to_numpy() ** 8
    confident[["p_down", "p_neutral", "p_up"]] = sharp / sharp.sum(axis=1, keepdims=True)
    assert not gate_calibration(confident, majority(y)).passed
    assert gate_calibration(informed(y, 1.5), majority(y)).passed


def test_decision_json_and_tags_carry_every_gate() -> None:
    y = labels()
    decision = decide({"majority": majority(y), "logreg": informed(y, 1.5)}, {"logreg": 0.4}, ["logreg"], GATES)
    body = decision.to_json()
    assert set(body) >= {"promoted", "reason", "gates", "challenger", "champion"}
    assert body["challenger"]["model"] == "logreg" and body["champion"] is None
    tags = decision.tags()
    assert tags["trendcast.decision"] == "promoted" and tags["trendcast.reason"] == decision.reason


def test_decide_needs_the_majority_reference() -> None:
    y = labels()
    with pytest.raises(Exception, match="majority"):
        decide({"logreg": informed(y, 1.0)}, {}, ["logreg"], GATES)
