"""The jobs that keep the best model serving: retrain (ingest -> train -> gates) and drift (reference vs recent days).

`retrain_job` is what `trendcast retrain` and the scheduler run. It names the step that failed (`RetrainError`),
and because aliases move only after a version is fully registered, a failure at any step leaves the champion, and
the service that follows it, as they were. `store_drift` compares the champion's drift reference with the feature
rows of the last N stored days.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trendcast.config import ExperimentConfig, Settings
from trendcast.errors import DataError, ModelNotReadyError, TrendcastError
from trendcast.models.bundle import ModelBundle


class RetrainError(TrendcastError):
    """A retrain step failed; the champion and the service are unchanged."""

    def __init__(self, step: str, cause: BaseException, champion: str | None) -> None:
        kept = f"champion version {champion} unchanged" if champion else "no champion was changed"
        super().__init__(f"retrain failed at {step}: {type(cause).__name__}: {cause} ({kept})")
        self.step = step


@dataclass
class RetrainResult:
    decision: dict[str, Any]
    ingested_rows: int
    run_id: str | None
    registered: dict[str, str] | None
    report_path: Path | None


def retrain_job(
    settings: Settings,
    config: ExperimentConfig,
    *,
    source: str | None = None,
    path: str | None = None,
    dry_run: bool = False,
    progress: bool = True,
    report_path: Path | None = None,
) -> RetrainResult:
    """Ingest new bars (when a source is given), evaluate every candidate and the champion's configuration on the
    same folds, and promote the challenger only if the gates pass (`dry_run`: decide, register nothing)."""
    from trendcast import tracking
    from trendcast.pipelines.train import run_training

    try:
        champion = tracking.alias_version(settings, tracking.CHAMPION)
    except Exception as exc:  # the registry is unreachable: nothing can be decided
        raise RetrainError("registry", exc, None) from exc
    rows = _ingest(settings, source, path, champion) if source else 0
    try:
        outcome = run_training(
            settings, config, config.candidates[0], register=not dry_run, report_path=report_path, progress=progress
        )
    except Exception as exc:
        raise RetrainError("training", exc, champion) from exc
    return RetrainResult(
        outcome.report["decision"], rows, outcome.run_id, outcome.report.get("registered"), report_path
    )


def _ingest(settings: Settings, source: str, path: str | None, champion: str | None) -> int:
    from trendcast.data.sources import make_source
    from trendcast.data.store import open_store
    from trendcast.pipelines.ingest import ingest

    try:
        src = make_source(source, path=path, timeout_s=settings.yahoo_timeout_s)
        with open_store(settings.resolved_database_url) as store:
            return ingest(src, store).rows
    except Exception as exc:
        raise RetrainError("data", exc, champion) from exc


# -- drift on stored days ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecentRows:
    rows: np.ndarray  # (n, n_features) scaled feature rows of the recent days
    proba: np.ndarray  # (n, 3) the model's probabilities for the windows ending on those days
    first: pd.Timestamp
    last: pd.Timestamp


def recent_rows(settings: Settings, bundle: ModelBundle, days: int) -> RecentRows:
    """The model's scaled inputs for every stored ticker over the last `days` stored trading days."""
    from trendcast.config import LabelConfig
    from trendcast.data.store import open_store
    from trendcast.features.windows import build_window_set

    model = bundle.model
    with open_store(settings.resolved_database_url) as store:
        bars = store.load(None)
    if bars.empty:
        raise DataError("the store holds no bars; run `trendcast data ingest` first")
    labels = LabelConfig(horizon=model.horizon)
    ws = build_window_set(
        bars, window=model.window, labels=labels, features=list(model.feature_names), require_label=False
    )
    calendar = np.unique(ws.dates)
    if len(calendar) == 0:
        raise DataError(f"no stored ticker has {model.window} days of finite features yet")
    cutoff = calendar[max(0, len(calendar) - days)]
    recent = ws.take(np.flatnonzero(ws.dates >= cutoff))
    rows = model.scale_rows(recent.last_step())
    return RecentRows(rows, model.predict_proba(recent), pd.Timestamp(cutoff), pd.Timestamp(calendar[-1]))


def store_drift(settings: Settings, bundle: ModelBundle, days: int) -> dict[str, Any]:
    """Drift of the last `days` stored days against the model's reference, as JSON (see monitoring.drift)."""
    from trendcast.monitoring.drift import compare

    reference = bundle.drift_reference()
    if reference is None:
        raise ModelNotReadyError(
            f"model version {bundle.version} was saved without a drift reference; retrain it (`trendcast retrain`)"
        )
    recent = recent_rows(settings, bundle, days)
    report = compare(
        reference,
        recent.rows,
        recent.proba,
        psi_warn=settings.drift_psi_warn,
        psi_alert=settings.drift_psi_alert,
        alpha=settings.drift_alpha,
    )
    out = report.to_json()
    out["window"] = {"days": days, "first": str(recent.first.date()), "last": str(recent.last.date())}
    out["model"] = {"name": bundle.name, "version": bundle.version, "kind": bundle.model.name}
    return out


def drift_alert(report: dict[str, Any]) -> bool:
    """Over the alert threshold: a feature drifted, or the predicted-class mix did."""
    mix = report.get("class_mix") or {}
    return bool(report.get("drifted")) or bool(mix.get("drifted"))
