"""The data behind the dashboard's API (routes/dashboard.py): prices, the served model's out-of-sample history, its
backtest and its card, built from the model bundle and the bar store, memoised per served model version.

    bundle.evaluation_predictions()   walk-forward out-of-sample predictions of the served kind -> history, backtest
    bundle.evaluation_report()        the training report: every model's pooled scores with CIs -> card
    bundle.tags / report["decision"]  the promotion decision (registry tags first: they follow rollbacks)

Everything here is blocking (Parquet, SQL, the backtest engine): routes call it through `DashboardCache.get`, which
runs it in a worker thread once per (served version, key) and keeps the answer in memory in this worker. A new served
version drops the old answers. A bundle without evaluation files (older versions, hand-made folders) answers 409
`no_evaluation` on history and backtest; its card has no scores and the verdict "unknown".

The card's verdict (`verdict_of`) is "better" only when the served model's pooled out-of-sample AUC is above every
baseline's, the lower end of its 95% AUC interval is above the best baseline's AUC (a lead inside the model's own
interval may be noise), and, where the promotion decision recorded a `skill` gate for this model (paired block
bootstrap against the majority baseline), that gate passed. With scores it is otherwise "not_better"; without scores
for the model or for any baseline it is "unknown".
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from trendcast.backtest.engine import BacktestResult, run_backtest
from trendcast.config import BacktestConfig
from trendcast.data.store import BarStore
from trendcast.errors import MissingPricesError
from trendcast.evaluation.report import ModelScore, TrainingReport
from trendcast.models.bundle import ModelBundle
from trendcast.pipelines.retrain import BASELINE_KINDS, CHAMPION_KEY, TAG
from trendcast.serving.errors import ApiError
from trendcast.serving.schemas import (
    BacktestMetrics,
    BacktestMetricsPair,
    BacktestPublic,
    DecisionPublic,
    EquityPoint,
    GatePublic,
    HistoryPoint,
    HistoryPublic,
    Interval,
    ModelCardPublic,
    ModelRef,
    ModelScorePublic,
    PriceBar,
    PricesPublic,
)

T = TypeVar("T")
PROBA = ["p_down", "p_neutral", "p_up"]
DISPLAY = {"bilstm": "Bi-LSTM", "lightgbm": "LightGBM", "logreg": "logistic regression"}
MAX_ENTRIES = 512  # answers kept per worker (each ticker x date range is one); the oldest go first


# -- the per-worker memo ----------------------------------------------------------------------------------------------
class DashboardCache:
    """Answers per (served model version, key), computed once in a worker thread; a new version clears the rest.

    Only the event loop touches the dict (lookups and stores happen around the awaited thread), so it needs no lock;
    two concurrent misses on one key both compute it, and the second store wins."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._version: str | None = None
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()

    async def get(self, version: str, key: Hashable, compute: Callable[[], T]) -> T:
        if version != self._version:
            self._version = version
            self._entries.clear()
        if key in self._entries:
            self._entries.move_to_end(key)
            hit: T = self._entries[key]
            return hit
        value = await asyncio.to_thread(compute)
        if self._version == version:  # not reloaded meanwhile
            self._entries[key] = value
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value


def cache_version(bundle: ModelBundle) -> str:
    """What identifies the served model's files: registry versions of two registries can share a number."""
    return f"{bundle.name}:{bundle.version}:{bundle.folder}"


# -- dates and tickers ------------------------------------------------------------------------------------------------
def check_range(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and start > end:
        raise ApiError(
            422,
            "validation_error",
            f"start ({start}) is after end ({end}); send start <= end (YYYY-MM-DD, both inclusive).",
            {"start": start.isoformat(), "end": end.isoformat()},
        )


def check_ticker(store: BarStore, ticker: str) -> None:
    """MissingPricesError (404 unknown_ticker, as the predict route answers) for a ticker the store does not hold."""
    names = store.ticker_names()
    if ticker not in names:
        raise MissingPricesError(ticker, names)


def _between(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= (frame["date"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (frame["date"] <= pd.Timestamp(end)).to_numpy()
    return frame[keep]


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# -- prices -----------------------------------------------------------------------------------------------------------
def prices(store: BarStore, ticker: str, start: date | None, end: date | None) -> PricesPublic:
    bars = store.load([ticker], start.isoformat() if start else None, end.isoformat() if end else None)
    items = [
        PriceBar(date=d.date(), open=o, high=h, low=lo, close=c, volume=v)
        for d, o, h, lo, c, v in zip(
            bars["date"], bars["open"], bars["high"], bars["low"], bars["close"], bars["volume"], strict=True
        )
    ]
    return PricesPublic(ticker=ticker, bars=items, count=len(items))


# -- the evaluation saved with the model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    predictions: pd.DataFrame  # the served kind's walk-forward out-of-sample predictions, validated
    report: dict[str, Any] | None


def load_evaluation(bundle: ModelBundle) -> Evaluation:
    """The bundle's out-of-sample predictions and report; 409 no_evaluation when it was saved without them."""
    predictions = bundle.evaluation_predictions()
    if predictions is None:
        raise ApiError(
            409,
            "no_evaluation",
            f"Model {bundle.name} version {bundle.version} was saved without its walk-forward out-of-sample "
            "predictions, so it has no history or backtest to show. Retrain with this version of trendcast "
            "(`trendcast train`) to save them with the model.",
            {"model": bundle.name, "version": bundle.version},
        )
    return Evaluation(predictions.sort_values(["ticker", "date"]).reset_index(drop=True), bundle.evaluation_report())


def ticker_rows(evaluation: Evaluation, ticker: str) -> pd.DataFrame:
    frame = evaluation.predictions
    return frame[frame["ticker"] == ticker].reset_index(drop=True)


# -- history ----------------------------------------------------------------------------------------------------------
def _actual(label: Any, names: tuple[str, ...]) -> str | None:
    value = _finite(label)
    return names[int(value)] if value is not None and value in (0.0, 1.0, 2.0) else None


def history_points(rows: pd.DataFrame, names: tuple[str, ...]) -> list[HistoryPoint]:
    proba = rows[PROBA].to_numpy(dtype=np.float64)
    predicted = proba.argmax(axis=1)
    labels = rows["label"] if "label" in rows else pd.Series([None] * len(rows))
    folds = rows["fold"] if "fold" in rows else pd.Series([None] * len(rows))
    points = []
    for day, p, k, label, fold in zip(rows["date"], proba, predicted, labels, folds, strict=True):
        actual = _actual(label, names)
        points.append(
            HistoryPoint(
                date=pd.Timestamp(day).date(),
                predicted=names[k],
                p_down=float(p[0]),
                p_neutral=float(p[1]),
                p_up=float(p[2]),
                confidence=float(p[k]),
                actual=actual,
                correct=None if actual is None else actual == names[k],
                fold=None if _finite(fold) is None else int(fold),
            )
        )
    return points


def history(
    bundle: ModelBundle, points: list[HistoryPoint], ticker: str, start: date | None, end: date | None
) -> HistoryPublic:
    """The history response for the points inside [start, end]; hit rate over those with a known outcome."""
    chosen = [p for p in points if (start is None or p.date >= start) and (end is None or p.date <= end)]
    known = [p for p in chosen if p.correct is not None]
    return HistoryPublic(
        ticker=ticker,
        model=ModelRef(name=bundle.name, version=bundle.version),
        model_type=bundle.model.name,
        source="walk_forward",
        horizon=bundle.model.horizon,
        points=chosen,
        count=len(chosen),
        hit_rate=sum(bool(p.correct) for p in known) / len(known) if known else None,
        known=len(known),
    )


# -- backtest ---------------------------------------------------------------------------------------------------------
def backtest_config(bundle: ModelBundle, report: Mapping[str, Any] | None) -> BacktestConfig:
    """The backtest settings recorded in the training report, else those of the model's experiment config."""
    recorded = ((report or {}).get("config") or {}).get("backtest")
    return BacktestConfig.model_validate(recorded) if recorded else bundle.model.config.backtest


def _metrics(values: Mapping[str, float]) -> BacktestMetrics:
    trades = _finite(values.get("n_trades"))
    return BacktestMetrics(
        sharpe=_finite(values.get("sharpe")),
        sortino=_finite(values.get("sortino")),
        max_drawdown=_finite(values.get("max_drawdown")),
        annual_return=_finite(values.get("cagr")),
        total_return=_finite(values.get("total_return")),
        volatility=_finite(values.get("volatility")),
        win_rate=_finite(values.get("win_rate_days")),
        win_rate_trades=_finite(values.get("win_rate_trades")),
        profit_factor=_finite(values.get("profit_factor")),
        exposure=_finite(values.get("exposure")),
        trades=None if trades is None else int(trades),
        turnover=_finite(values.get("turnover")),
        total_costs=_finite(values.get("total_costs")),
    )


def _curve(returns: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Equity from 1.0 (one point before the first return) and its drawdown from the running peak."""
    equity = np.concatenate([[1.0], np.cumprod(1.0 + returns.to_numpy(dtype=np.float64))])
    return equity, equity / np.maximum.accumulate(equity) - 1.0


def equity_points(result: BacktestResult, bars: pd.DataFrame) -> list[EquityPoint]:
    """Strategy and buy-and-hold equity, both 1.0 on the bar before the first fill (the first signal's bar)."""
    earlier = bars["date"][bars["date"] < result.returns.index[0]]
    days = [earlier.max(), *result.returns.index]  # the engine's first fill always follows a stored bar
    (strategy, strategy_dd), (hold, hold_dd) = _curve(result.returns), _curve(result.benchmark_returns)
    return [
        EquityPoint(
            date=pd.Timestamp(d).date(), strategy=s, buy_and_hold=b, strategy_drawdown=sd, buy_and_hold_drawdown=bd
        )
        for d, s, b, sd, bd in zip(days, strategy, hold, strategy_dd, hold_dd, strict=True)
    ]


def backtest(
    bundle: ModelBundle,
    evaluation: Evaluation,
    store: BarStore,
    ticker: str,
    start: date | None,
    end: date | None,
) -> BacktestPublic:
    """The engine (after costs, next-bar execution, its look-ahead check) on the ticker's out-of-sample predictions
    dated in [start, end] and its stored bars."""
    config = backtest_config(bundle, evaluation.report)
    rows = _between(ticker_rows(evaluation, ticker), start, end)
    answer = {
        "ticker": ticker,
        "model_type": bundle.model.name,
        "execution": config.execution,
        "costs_bps": config.commission_bps + config.slippage_bps,
    }
    if rows.empty:
        empty = _metrics({})
        return BacktestPublic(
            **answer, equity=[], metrics=BacktestMetricsPair(strategy=empty, buy_and_hold=empty), count=0
        )
    bars = store.load([ticker])
    result = run_backtest(rows, bars, config)
    equity = equity_points(result, bars)
    pair = BacktestMetricsPair(
        strategy=_metrics(result.metrics["strategy"]), buy_and_hold=_metrics(result.metrics["benchmark"])
    )
    return BacktestPublic(**answer, entry_rule=result.entry.describe(), equity=equity, metrics=pair, count=len(equity))


# -- the model card ---------------------------------------------------------------------------------------------------
def _name(kind: str) -> str:
    return DISPLAY.get(kind, kind)


def _interval(value: float, ci: tuple[float, float] | None) -> Interval:
    low, high = ci if ci is not None else (math.nan, math.nan)
    return Interval(value=_finite(value), low=_finite(low), high=_finite(high))


def score_rows(report: TrainingReport, served: str) -> list[ModelScorePublic]:
    """Every evaluated model's pooled scores: the served kind first, then by AUC (highest first)."""
    scores = sorted(
        report.models.values(), key=lambda s: (s.name != served, -(s.auc if math.isfinite(s.auc) else -1.0))
    )
    return [
        ModelScorePublic(
            model=s.name,
            served=s.name == served,
            accuracy=_interval(s.accuracy, s.accuracy_ci),
            auc=_interval(s.auc, s.auc_ci),
            log_loss=_interval(s.log_loss, None),
            n=s.n_samples,
        )
        for s in scores
    ]


def _gates(raw: Any) -> list[GatePublic]:
    gates = json.loads(raw) if isinstance(raw, str) else raw or []
    return [
        GatePublic(name=str(g.get("name")), passed=bool(g.get("passed")), detail=str(g.get("reason", "")))
        for g in gates
        if isinstance(g, Mapping)
    ]


def decision_of(bundle: ModelBundle, report: Mapping[str, Any] | None) -> DecisionPublic | None:
    """The registry version's decision tags (they follow promotions and rollbacks), else the report's decision."""
    tags = bundle.tags
    if f"{TAG}decision" in tags:
        try:
            gates = _gates(tags.get(f"{TAG}gates"))
        except json.JSONDecodeError:  # a tag cut at MLflow's length limit
            gates = []
        promoted = tags[f"{TAG}decision"] in ("promoted", "rolled back to")
        return DecisionPublic(promoted=promoted, reason=tags.get(f"{TAG}reason", ""), gates=gates)
    recorded = (report or {}).get("decision")
    if not isinstance(recorded, Mapping):
        return None
    return DecisionPublic(
        promoted=bool(recorded.get("promoted")), reason=str(recorded.get("reason", "")), gates=_gates(recorded["gates"])
    )


def _skill_gate(decision: DecisionPublic | None, report: Mapping[str, Any] | None, served: str) -> GatePublic | None:
    """The skill gate of the decision, when that decision judged the served kind."""
    challenger = ((report or {}).get("decision") or {}).get("challenger") or {}
    if decision is None or (challenger and challenger.get("model") != served):
        return None
    return next((g for g in decision.gates if g.name == "skill"), None)


def _auc(score: ModelScore) -> str:
    low, high = score.auc_ci
    interval = f" [{low:.3f}, {high:.3f}]" if math.isfinite(low) and math.isfinite(high) else ""
    return f"AUC {score.auc:.3f}{interval}"


def verdict_of(scores: Mapping[str, ModelScore], served: str, skill: GatePublic | None) -> tuple[str, str]:
    """(verdict, statement) by the rule in the module docstring."""
    mine = scores.get(served)
    baselines = {n: s for n, s in scores.items() if n in BASELINE_KINDS - {served} and math.isfinite(s.auc)}
    if mine is None or not math.isfinite(mine.auc) or not baselines:
        return "unknown", (
            f"No out-of-sample scores of {_name(served)} and the baselines were saved with this model, so whether it "
            "beats them is unknown; retrain with this version of trendcast to save them."
        )
    best = max(baselines.values(), key=lambda s: s.auc)
    head = f"{_name(served)} ({_auc(mine)})"
    if mine.auc <= best.auc:
        return "not_better", (
            f"{head} is not better than {_name(best.name)}: {_name(best.name)} scored AUC {best.auc:.3f} on the same "
            "out-of-sample days."
        )
    if skill is not None and not skill.passed:
        return "not_better", (
            f"{head} is not better than {_name(best.name)}: its lead over {_name(best.name)}'s {best.auc:.3f} did "
            f"not pass the skill gate ({skill.detail})."
        )
    if not mine.auc_ci[0] > best.auc:
        return "not_better", (
            f"{head} is not clearly better than {_name(best.name)}: {_name(best.name)}'s AUC {best.auc:.3f} is "
            "inside its 95% interval, so the lead may be noise."
        )
    others = ", ".join(_name(n) for n in sorted(baselines))
    return "better", (
        f"{head} is better than every baseline evaluated ({others}); the best baseline, {_name(best.name)}, "
        f"scored {best.auc:.3f}."
    )


def _parsed(report: dict[str, Any] | None) -> TrainingReport | None:
    """The typed report, or None for a missing or hand-made one without the fields the scores need."""
    if not report or not report.get("models"):
        return None
    try:
        return TrainingReport.from_json(report)
    except (KeyError, TypeError, ValueError):
        return None


def model_card(bundle: ModelBundle, report: dict[str, Any] | None) -> ModelCardPublic:
    model = bundle.model
    decision = decision_of(bundle, report)
    parsed = _parsed(report)
    scores = {n: s for n, s in (parsed.models if parsed else {}).items() if n != CHAMPION_KEY}
    verdict, statement = verdict_of(scores, model.name, _skill_gate(decision, report, model.name))
    return ModelCardPublic(
        name=bundle.name,
        version=bundle.version,
        alias=bundle.alias,
        model_type=model.name,
        run_id=bundle.run_id,
        trained_through=model.trained_through.date() if model.trained_through is not None else None,
        horizon=model.horizon,
        window=model.window,
        label_mode=model.config.labels.mode,
        primary_metric="auc",
        scores=score_rows(parsed, model.name) if parsed else [],
        decision=decision,
        verdict=verdict,
        statement=statement,
    )
