"""The training report, typed: what the gates, the CLI and the service read from a walk-forward evaluation.

The JSON document (docs/report.md) stays the source of truth and keeps its fields; `TrainingReport.from_json`
reads the parts that decisions are made on into small frozen dataclasses, so readers name attributes that mypy
checks instead of string keys into `dict[str, Any]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

REPORT_VERSION = 2  # 2: `version` field, `decision` (the promotion gates), per-model backtest Sharpe


def _float(value: Any) -> float:
    """A JSON number or null -> float (null -> nan)."""
    return float(value) if value is not None else math.nan


def _pair(value: Any) -> tuple[float, float]:
    low, high = value if value is not None else (None, None)
    return _float(low), _float(high)


@dataclass(frozen=True)
class ModelScore:
    """Pooled out-of-sample scores of one model over all folds, with 95% block-bootstrap intervals."""

    name: str
    accuracy: float
    accuracy_ci: tuple[float, float]
    auc: float
    auc_ci: tuple[float, float]
    balanced_accuracy: float
    f1_macro: float
    log_loss: float
    brier: float
    n_samples: int
    ic: dict[str, float]

    @classmethod
    def from_summary(cls, name: str, summary: dict[str, Any]) -> ModelScore:
        pooled = summary["pooled"]
        m = pooled["metrics"]
        return cls(
            name=name,
            accuracy=_float(m["accuracy"]),
            accuracy_ci=_pair(pooled.get("accuracy_ci")),
            auc=_float(m["auc_macro_ovr"]),
            auc_ci=_pair(pooled.get("auc_ci")),
            balanced_accuracy=_float(m["balanced_accuracy"]),
            f1_macro=_float(m["f1_macro"]),
            log_loss=_float(m["log_loss"]),
            brier=_float(m["brier"]),
            n_samples=int(m.get("n_samples") or 0),
            ic={k: _float(v) for k, v in (pooled.get("ic") or {}).items()},
        )


@dataclass(frozen=True)
class Comparison:
    """The primary model against the best baseline on the same out-of-sample days (paired block bootstrap)."""

    model: str
    baseline: str
    metric: str
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Comparison:
        return cls(
            model=str(data["model"]),
            baseline=str(data["baseline"]),
            metric=str(data.get("metric", "accuracy")),
            diff=_float(data["diff"]),
            ci_low=_float(data.get("ci_low")),
            ci_high=_float(data.get("ci_high")),
            p_value=_float(data["p_value"]),
            verdict=str(data.get("verdict", "")),
        )


@dataclass(frozen=True)
class BacktestSummary:
    """The walk-forward backtest after costs: the primary model's strategy and buy-and-hold, and each model's
    net Sharpe on the same days and costs."""

    strategy: dict[str, float]
    benchmark: dict[str, float]
    sharpe_by_model: dict[str, float]
    report: str | None

    @property
    def sharpe(self) -> float:
        return self.strategy.get("sharpe", math.nan)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BacktestSummary:
        rows = data.get("comparison") or []
        return cls(
            strategy={k: _float(v) for k, v in (data.get("strategy") or {}).items()},
            benchmark={k: _float(v) for k, v in (data.get("benchmark") or {}).items()},
            sharpe_by_model={str(r["model"]): _float(r.get("sharpe")) for r in rows if "model" in r},
            report=data.get("report"),
        )


@dataclass(frozen=True)
class TrainingReport:
    """The parts of a report that decisions are made on; `raw` is the whole JSON document."""

    version: int
    primary_model: str
    models: dict[str, ModelScore]
    comparison: Comparison | None
    backtest: BacktestSummary | None
    n_folds: int
    tickers: tuple[str, ...]
    first_date: str
    last_date: str
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingReport:
        info = data["data"]
        return cls(
            version=int(data.get("version", data.get("report_version", 1))),
            primary_model=str(data["primary_model"]),
            models={name: ModelScore.from_summary(name, s) for name, s in data["models"].items()},
            comparison=Comparison.from_json(data["comparison"]) if data.get("comparison") else None,
            backtest=BacktestSummary.from_json(data["backtest"]) if data.get("backtest") else None,
            n_folds=len(data.get("folds", [])),
            tickers=tuple(info["tickers"]),
            first_date=str(info["first_date"]),
            last_date=str(info["last_date"]),
            raw=data,
        )
