"""Global feature importance over a test fold: mean |attribution| per feature, and per indicator group.

Each sampled prediction is explained towards its own predicted class with the model's method (`shap_values`), the
per-day attributions are summed per feature, and the absolute values are averaged over the samples. So a feature
ranks high when it moves many predictions a lot, whichever direction. `group_mean_abs` sums the features of each
indicator group (trend, momentum, volatility, volume, returns).

Cost for the Bi-LSTM: each sample costs n_baselines x n_steps forward/backward passes, so the default here is a
cheaper `GLOBAL_IG` (4 x 8) than for single explanations; averages over many samples need less precision each.

Examples:
    table = global_importance(model, test, max_samples=200, background=background)
    mlflow.log_table(table, "importance.json"); mlflow.log_metrics(importance_metrics(table))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendcast.errors import ModelError
from trendcast.explain.shap_values import AttributionBatch, IGConfig, attribute
from trendcast.features.indicators import BY_NAME
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel

GLOBAL_IG = IGConfig(n_baselines=4, n_steps=8)


@dataclass(frozen=True)
class SampleAttributions:
    """Attributions for a set of samples, with the raw feature values they were computed at (for beeswarm plots)."""

    batch: AttributionBatch
    values: np.ndarray  # (n, n_features) raw (unscaled) features on each signal date
    feature_names: tuple[str, ...]
    tickers: np.ndarray  # (n,)
    dates: np.ndarray  # (n,) signal dates


def sample_index(n: int, max_samples: int, seed: int) -> np.ndarray:
    """Sorted positions of up to `max_samples` of `n` samples, drawn without replacement."""
    if n == 0:
        raise ModelError("no samples to explain; the test fold is empty")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(max_samples, n), replace=False))


def compute_attributions(
    model: DirectionModel,
    data: WindowSet,
    *,
    max_samples: int = 200,
    background: np.ndarray | None = None,
    seed: int = 0,
    config: IGConfig | None = None,
    target: int | None = None,
) -> SampleAttributions:
    """Attribute up to `max_samples` samples of an unscaled WindowSet, each towards its predicted class, or all
    towards class `target` (e.g. 2 = Up, for a beeswarm where the sign means the same thing on every row)."""
    if data.feature_names != model.feature_names or data.window != model.window:
        raise ModelError(f"{model.name}: the samples have other features or window than the model was trained on")
    index = sample_index(len(data), max_samples, seed)
    raw = data.windows(index)  # (k, window, F)
    scaled = model.scale_rows(raw.reshape(-1, data.n_features)).reshape(raw.shape)
    targets = None if target is None else np.full(len(index), target, dtype=np.int64)
    batch = attribute(model, scaled, targets=targets, background=background, config=config or GLOBAL_IG)
    return SampleAttributions(
        batch=batch,
        values=raw[:, -1, :].astype(np.float64),
        feature_names=data.feature_names,
        tickers=data.tickers[index],
        dates=data.dates[index],
    )


def importance_table(attributions: SampleAttributions) -> pd.DataFrame:
    """One row per feature, largest mean |attribution| first: feature, label, group, mean_abs, mean_signed, share,
    group_mean_abs, group_share, rank."""
    names = attributions.feature_names
    contributions = attributions.batch.features
    table = pd.DataFrame(
        {
            "feature": list(names),
            "label": [BY_NAME[n].label if n in BY_NAME else n for n in names],
            "group": [BY_NAME[n].group if n in BY_NAME else "other" for n in names],
            "mean_abs": np.abs(contributions).mean(axis=0),
            "mean_signed": contributions.mean(axis=0),
        }
    )
    total = float(table["mean_abs"].sum())
    table["share"] = table["mean_abs"] / total if total > 0 else 0.0
    table["group_mean_abs"] = table.groupby("group")["mean_abs"].transform("sum")
    table["group_share"] = table["group_mean_abs"] / total if total > 0 else 0.0
    table = table.sort_values("mean_abs", ascending=False, kind="stable").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table


def group_importance(table: pd.DataFrame) -> pd.DataFrame:
    """One row per indicator group: group, mean_abs (sum over its features), share, features; largest first."""
    grouped = table.groupby("group").agg(
        mean_abs=("mean_abs", "sum"), share=("share", "sum"), features=("feature", "count")
    )
    return grouped.sort_values("mean_abs", ascending=False).reset_index()


def global_importance(
    model: DirectionModel,
    data: WindowSet,
    max_samples: int = 200,
    background: np.ndarray | None = None,
    *,
    seed: int = 0,
    config: IGConfig | None = None,
) -> pd.DataFrame:
    """Mean |attribution| per feature over up to `max_samples` samples of a test fold (see `importance_table`)."""
    return importance_table(
        compute_attributions(model, data, max_samples=max_samples, background=background, seed=seed, config=config)
    )


def importance_metrics(table: pd.DataFrame, prefix: str = "importance") -> dict[str, float]:
    """Flat {"importance.<feature>": share, "importance_group.<group>": share} for mlflow.log_metrics."""
    groups = group_importance(table)
    metrics = {f"{prefix}.{name}": float(share) for name, share in zip(table["feature"], table["share"], strict=True)}
    for name, share in zip(groups["group"], groups["share"], strict=True):
        metrics[f"{prefix}_group.{name}"] = float(share)
    return metrics
