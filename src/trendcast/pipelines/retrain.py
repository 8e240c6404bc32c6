"""Promotion policy: which evaluated model becomes `champion`, and rollback.

Every candidate and the current champion's configuration are fitted on the same purged walk-forward folds
(`pipelines.train.run_training`); `decide` then ranks the candidates by pooled out-of-sample AUC and takes the best
one that passes gates 1, 2 and 4 as the challenger, and promotes it only if every gate passes, in order:

1. finite: finite probabilities that sum to 1 (within `gates.probability_tolerance`) on every out-of-sample day;
2. skill: better than the no-skill majority baseline on pooled AUC by the paired block bootstrap over days, with
   p below `gates.alpha / n_candidates` (Bonferroni), and pooled AUC not below the best other baseline's;
3. champion: better than the champion's configuration refitted on the same folds: the same paired AUC test at
   `gates.alpha`, and backtest net Sharpe not worse by more than `gates.max_sharpe_drop`;
4. calibration: log loss on the most recent fold not worse than the majority baseline's there.

With no champion yet, gate 3 is skipped. A decision is recorded as version tags (`trendcast.*`), run tags, one JSON
log line and `Decision.to_json()`; nothing here imports MLflow (the registry is reached through `tracking`).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from trendcast.config import GateConfig, Settings
from trendcast.errors import ModelNotReadyError
from trendcast.evaluation.metrics import classification_metrics, paired_bootstrap

logger = logging.getLogger("trendcast.retrain")

PROBA = ["p_down", "p_neutral", "p_up"]
NO_SKILL = "majority"
CHAMPION_KEY = "champion"  # the current champion's configuration, refitted on the same folds
BASELINE_KINDS = frozenset({"majority", "momentum", "logreg", "lightgbm"})
TAG = "trendcast."


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: dict[str, Any]
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "reason": self.reason, **_finite(self.detail)}


@dataclass(frozen=True)
class Scores:
    """What a candidate is judged on, from its out-of-sample predictions and backtest."""

    name: str
    auc: float
    accuracy: float
    sharpe: float
    last_fold_log_loss: float

    def to_json(self) -> dict[str, Any]:
        return _finite(
            {
                "model": self.name,
                "auc": self.auc,
                "accuracy": self.accuracy,
                "sharpe": self.sharpe,
                "last_fold_log_loss": self.last_fold_log_loss,
            }
        )


@dataclass
class Decision:
    promoted: bool
    reason: str
    gates: list[GateResult]
    challenger: Scores | None
    champion: Scores | None
    champion_version: str | None = None
    challenger_version: str | None = None
    ranking: list[Scores] = field(default_factory=list)
    decided_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        challenger = self.challenger.to_json() if self.challenger else None
        if challenger is not None:
            challenger["version"] = self.challenger_version
        champion = self.champion.to_json() if self.champion else None
        if champion is not None:
            champion["version"] = self.champion_version
        return {
            "promoted": self.promoted,
            "reason": self.reason,
            "gates": [g.to_json() for g in self.gates],
            "challenger": challenger,
            "champion": champion,
            "ranking": [s.to_json() for s in self.ranking],
            "decided_at": self.decided_at,
        }

    def tags(self) -> dict[str, str]:
        """MLflow tags (strings) for the challenger's version and the run."""
        tags = {
            f"{TAG}decision": "promoted" if self.promoted else "not promoted",
            f"{TAG}reason": self.reason[:4900],
            f"{TAG}decided_at": self.decided_at,
            f"{TAG}gates": json.dumps([g.to_json() for g in self.gates])[:4900],
        }
        if self.champion_version is not None:
            tags[f"{TAG}champion_at_decision"] = self.champion_version
        return tags


# -- scores -----------------------------------------------------------------------------------------------------------
def _arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return frame["label"].to_numpy(np.int64), frame[PROBA].to_numpy(np.float64), frame["date"].to_numpy()


def _last_fold(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["fold"] == frame["fold"].max()]


def _log_loss(frame: pd.DataFrame) -> float:
    y, proba, _ = _arrays(frame)
    if not np.isfinite(proba).all():
        return math.inf
    return float(classification_metrics(y, proba)["log_loss"])


def scores_of(name: str, frame: pd.DataFrame, sharpe: float) -> Scores:
    y, proba, _ = _arrays(frame)
    if not np.isfinite(proba).all():
        return Scores(name, math.nan, math.nan, sharpe, math.inf)
    metrics = classification_metrics(y, proba)
    return Scores(
        name, float(metrics["auc_macro_ovr"]), float(metrics["accuracy"]), sharpe, _log_loss(_last_fold(frame))
    )


def _aligned(frame: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """`other` in `frame`'s row order (the same folds give the same rows; checked, not assumed)."""
    keys = ["ticker", "date"]
    if len(frame) == len(other) and (frame[keys].to_numpy() == other[keys].to_numpy()).all():
        return other
    merged = frame[keys].merge(other, on=keys, how="left", validate="one_to_one")
    if merged[PROBA].isna().any().any():
        raise ModelNotReadyError("two models were not evaluated on the same out-of-sample days; rerun the retrain")
    return merged


def _paired_auc(frame: pd.DataFrame, other: pd.DataFrame, gates: GateConfig, seed: int) -> dict[str, float]:
    y, proba, dates = _arrays(frame)
    other_proba = _aligned(frame, other)[PROBA].to_numpy(np.float64)
    result = paired_bootstrap(y, proba, other_proba, dates, "auc_macro_ovr", n_boot=gates.n_boot, seed=seed)
    return {k: float(v) for k, v in result.items()}


# -- the gates -------------------------------------------------------------------------------------------------------
def gate_finite(frame: pd.DataFrame, gates: GateConfig) -> GateResult:
    proba = frame[PROBA].to_numpy(np.float64)
    finite = np.isfinite(proba).all(axis=1)
    sums_ok = finite & (np.abs(proba.sum(axis=1) - 1.0) <= gates.probability_tolerance)
    bad = int((~sums_ok).sum())
    detail = {"n_predictions": len(frame), "n_bad": bad, "tolerance": gates.probability_tolerance}
    reason = (
        "every probability is finite and sums to 1"
        if bad == 0
        else f"{bad} predictions are not finite or not summing to 1"
    )
    return GateResult("finite", bad == 0, detail, reason)


def gate_skill(
    name: str,
    frame: pd.DataFrame,
    predictions: dict[str, pd.DataFrame],
    scores: dict[str, Scores],
    gates: GateConfig,
    n_tests: int,
    seed: int,
) -> GateResult:
    level = gates.alpha / max(1, n_tests)
    test = _paired_auc(frame, predictions[NO_SKILL], gates, seed)
    others = {n: s.auc for n, s in scores.items() if n in BASELINE_KINDS and n not in (name, NO_SKILL)}
    best_name = max(others, key=lambda n: others[n] if math.isfinite(others[n]) else -1.0) if others else None
    best_auc = others[best_name] if best_name else math.nan
    beats_majority = test["diff"] > 0 and test["p_value"] < level
    not_worse = best_name is None or not math.isfinite(best_auc) or scores[name].auc >= best_auc
    detail = {
        "auc": scores[name].auc,
        "auc_majority": test["metric_b"],
        "diff": test["diff"],
        "p_value": test["p_value"],
        "level": level,
        "n_tests": n_tests,
        "best_baseline": best_name,
        "best_baseline_auc": best_auc,
    }
    if not beats_majority:
        reason = f"AUC {scores[name].auc:.4f} is not significantly above the majority baseline (p={test['p_value']:.3f} >= {level:.4f})"
    elif not not_worse:
        reason = f"AUC {scores[name].auc:.4f} is below the best baseline {best_name} ({best_auc:.4f})"
    else:
        reason = f"AUC {scores[name].auc:.4f} beats the majority baseline (p={test['p_value']:.4f} < {level:.4f}) and every baseline"
    return GateResult("skill", beats_majority and not_worse, detail, reason)


def gate_champion(
    frame: pd.DataFrame, champion: pd.DataFrame, mine: Scores, theirs: Scores, gates: GateConfig, seed: int
) -> GateResult:
    test = _paired_auc(frame, champion, gates, seed)
    better_auc = test["diff"] > 0 and test["p_value"] < gates.alpha
    sharpe_ok = math.isfinite(mine.sharpe) and (
        not math.isfinite(theirs.sharpe) or mine.sharpe >= theirs.sharpe - gates.max_sharpe_drop
    )
    detail = {
        "auc": mine.auc,
        "auc_champion": theirs.auc,
        "diff": test["diff"],
        "p_value": test["p_value"],
        "level": gates.alpha,
        "sharpe": mine.sharpe,
        "sharpe_champion": theirs.sharpe,
        "max_sharpe_drop": gates.max_sharpe_drop,
    }
    if not better_auc:
        reason = f"AUC {mine.auc:.4f} vs the champion's {theirs.auc:.4f} on the same days: not significantly better (p={test['p_value']:.3f})"
    elif not sharpe_ok:
        reason = f"net Sharpe {mine.sharpe:.2f} trails the champion's {theirs.sharpe:.2f} by more than {gates.max_sharpe_drop}"
    else:
        reason = (
            f"AUC {mine.auc:.4f} beats the champion's {theirs.auc:.4f} (p={test['p_value']:.4f}) and net Sharpe holds"
        )
    return GateResult("champion", better_auc and sharpe_ok, detail, reason)


def gate_calibration(frame: pd.DataFrame, majority: pd.DataFrame) -> GateResult:
    mine = _log_loss(_last_fold(frame))
    theirs = _log_loss(_last_fold(majority))
    passed = mine <= theirs
    detail = {"fold": int(frame["fold"].max()), "log_loss": mine, "log_loss_majority": theirs}
    verb = "is not worse than" if passed else "is worse than"
    return GateResult(
        "calibration", passed, detail, f"last-fold log loss {mine:.4f} {verb} the majority baseline's {theirs:.4f}"
    )


# -- the decision ----------------------------------------------------------------------------------------------------
def decide(
    predictions: dict[str, pd.DataFrame],
    sharpe: dict[str, float],
    candidates: list[str],
    gates: GateConfig,
    *,
    champion_version: str | None = None,
    seed: int = 0,
) -> Decision:
    """Pick the challenger among `candidates` and decide whether it replaces the champion (see the module doc).
    `predictions` must hold every candidate, `majority`, and `champion` when a champion exists."""
    if NO_SKILL not in predictions:
        raise ModelNotReadyError("the majority baseline must be evaluated: it is the no-skill reference of the gates")
    scores = {n: scores_of(n, f, sharpe.get(n, math.nan)) for n, f in predictions.items()}
    ranking = sorted(
        (scores[n] for n in candidates), key=lambda s: s.auc if math.isfinite(s.auc) else -1.0, reverse=True
    )
    champion = scores.get(CHAMPION_KEY) if champion_version is not None else None
    chosen, first_gates = _challenger(ranking, predictions, scores, gates, len(candidates), seed)
    gate_results = list(first_gates)
    if chosen is not None and champion is not None and all(g.passed for g in gate_results):
        third = gate_champion(predictions[chosen.name], predictions[CHAMPION_KEY], chosen, champion, gates, seed)
        gate_results.insert(2, third)
    promoted = chosen is not None and all(g.passed for g in gate_results)
    reason = _reason(chosen, gate_results, champion_version, promoted)
    return Decision(promoted, reason, gate_results, chosen, champion, champion_version, None, ranking)


def _challenger(
    ranking: list[Scores],
    predictions: dict[str, pd.DataFrame],
    scores: dict[str, Scores],
    gates: GateConfig,
    n_tests: int,
    seed: int,
) -> tuple[Scores | None, list[GateResult]]:
    """The best-ranked candidate passing gates 1, 2 and 4, with its gate results; else the top one and its failures."""
    first: tuple[Scores | None, list[GateResult]] = (None, [])
    for candidate in ranking:
        results = _basic_gates(candidate.name, predictions, scores, gates, n_tests, seed)
        if all(g.passed for g in results):
            return candidate, results
        if first[0] is None:
            first = (candidate, results)
    return first


def _basic_gates(
    name: str,
    predictions: dict[str, pd.DataFrame],
    scores: dict[str, Scores],
    gates: GateConfig,
    n_tests: int,
    seed: int,
) -> list[GateResult]:
    frame = predictions[name]
    finite = gate_finite(frame, gates)
    if not finite.passed:
        return [finite]
    skill = gate_skill(name, frame, predictions, scores, gates, n_tests, seed)
    return [finite, skill, gate_calibration(frame, predictions[NO_SKILL])]


def _reason(chosen: Scores | None, results: list[GateResult], champion: str | None, promoted: bool) -> str:
    if chosen is None:
        return "no candidate was evaluated"
    if promoted:
        kept = f"replaces champion version {champion}" if champion else "becomes the first champion"
        return f"{chosen.name} {kept}: " + "; ".join(g.reason for g in results)
    failed = next(g for g in results if not g.passed)
    still = f"champion version {champion} keeps serving" if champion else "nothing is served (503 model_not_ready)"
    return f"{chosen.name} not promoted, gate '{failed.name}' failed: {failed.reason}; {still}"


def log_decision(decision: Decision, event: str = "promotion_decision") -> None:
    """The decision as one JSON log line."""
    logger.info(json.dumps({"event": event, **decision.to_json()}, default=str))


# -- registry actions -------------------------------------------------------------------------------------------------
def record_promotion(settings: Settings, decision: Decision, version: str) -> None:
    """Tag the challenger's version with the decision and move the aliases (champion, or challenger)."""
    from trendcast import tracking

    decision.challenger_version = version
    tags = decision.tags()
    if decision.promoted and decision.champion_version is not None:
        tags[f"{TAG}previous_champion"] = decision.champion_version
    tracking.set_version_tags(settings, version, tags)
    tracking.set_alias(settings, tracking.CHAMPION if decision.promoted else tracking.CHALLENGER, version)


def rollback(settings: Settings, to: str | None = None) -> dict[str, Any]:
    """Move `champion` to `to`, or to the version it replaced (the `trendcast.previous_champion` tag)."""
    from trendcast import tracking

    current = tracking.alias_version(settings, tracking.CHAMPION)
    if current is None:
        raise ModelNotReadyError("there is no champion to roll back; `trendcast models` lists the versions")
    target = to or tracking.get_version(settings, current).tags.get(f"{TAG}previous_champion")
    if not target:
        raise ModelNotReadyError(
            f"champion version {current} replaced no earlier champion; pass --to VERSION (`trendcast models`)"
        )
    tracking.get_version(settings, target)  # exists, or a clear error
    if target == current:
        raise ModelNotReadyError(f"version {target} is already the champion")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    reason = f"rollback: champion moved from version {current} to version {target}"
    tracking.set_version_tags(
        settings, target, {f"{TAG}decision": "rolled back to", f"{TAG}reason": reason, f"{TAG}decided_at": now}
    )
    tracking.set_version_tags(settings, current, {f"{TAG}rolled_back_at": now})
    tracking.set_alias(settings, tracking.CHAMPION, target)
    record = {"event": "rollback", "promoted": True, "reason": reason, "from": current, "to": target, "decided_at": now}
    logger.info(json.dumps(record))
    return record


def _finite(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()}
