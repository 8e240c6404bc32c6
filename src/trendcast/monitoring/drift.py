"""Feature and prediction drift: do today's feature rows still look like the ones the model was trained on?

A `DriftReference` is kept from training: per feature, the interior quantile cut points of the training rows
(`n_bins` equal-count bins), a seeded random sample of the rows, and the mix of predicted classes. `compare` puts
current feature rows (one per ticker-day, columns in the reference's feature order) beside it, feature by feature.

What the two numbers mean here

    PSI   population stability index on the reference's quantile bins: sum over bins of (c - r) * ln(c / r),
          r and c the reference and current shares of the bin, each clipped at `eps` so an empty bin stays
          finite. 0 when the shares agree; it grows with any change of shape, location or spread.
    KS    two-sample Kolmogorov-Smirnov test of the reference sample against the current rows: the statistic is
          the largest gap between the two empirical CDFs, its p-value the chance of a gap that large if both
          came from one distribution. The p-values are Holm-Bonferroni adjusted over all features, so `alpha`
          bounds the chance of calling any feature drifted by luck alone.

PSI bands: below 0.1 stable ("ok"), 0.1 to 0.25 worth watching ("warn"), 0.25 and above a real shift ("alert").
The bands are a credit-scoring convention, not theory; they carry no error rate.

Why `drifted` needs both: PSI alone has no sense of sampling noise, and KS alone is far too eager here. Rolling
features (a 60-day volatility, a 50-day moving-average ratio) are strongly autocorrelated, so a few hundred
rows hold far fewer independent observations than the KS test assumes and its p-values look smaller than they
are; with many rows KS also flags shifts too small to matter. A feature is drifted only when its PSI reaches the
alert band AND its adjusted KS p-value is below `alpha`.

Sample size: with no drift at all, PSI is biased upward by about (bins - 1) / n_current (plus (bins - 1) / m for
the reference sample of m rows): 0.03 for 300 current rows and 10 bins, 0.1, the warn band, for 90 rows.
Compare at least a few hundred rows (e.g. several tickers over a few weeks).

Rows with any non-finite value (indicator warm-up) are dropped on both sides. Current rows are compared in
float32, like the stored sample, so a value lying on a quantile edge falls in the same bin on both sides.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from trendcast.config import CLASS_NAMES
from trendcast.errors import DataError

REFERENCE_FILE = "drift_reference.npz"


@dataclass(frozen=True)
class DriftReference:
    """What drift is measured against, kept from the training rows."""

    feature_names: tuple[str, ...]
    edges: np.ndarray  # (n_features, n_bins - 1) interior quantile cut points of the training rows
    sample: np.ndarray  # (m, n_features) float32, seeded random sample of the training rows, m <= sample_size
    class_mix: np.ndarray  # (3,) share of predicted Down/Neutral/Up on the training rows; NaN when not given
    n_rows: int  # finite training rows it was built from


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature."""

    name: str
    psi: float
    ks_stat: float
    ks_p: float  # KS p-value, Holm-Bonferroni adjusted over all features
    level: str  # "ok" | "warn" | "alert", by PSI band
    drifted: bool  # psi >= alert and ks_p < alpha


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift, the predicted class mix, and the thresholds that judged them."""

    features: list[FeatureDrift]
    class_mix: dict[str, Any]  # {"reference", "current", "psi", "level", "drifted"}; {} without current predictions
    n_reference: int
    n_current: int
    thresholds: dict[str, float]  # psi_warn, psi_alert, alpha

    @property
    def drifted(self) -> list[str]:
        """Names of the drifted features, in feature order."""
        return [f.name for f in self.features if f.drifted]

    def to_json(self) -> dict[str, Any]:
        """The report as strict-JSON-safe builtins (finite floats only)."""
        features = [
            {
                "name": f.name,
                "psi": _json_float(f.psi),
                "ks_p": _json_float(f.ks_p),
                "ks_stat": _json_float(f.ks_stat),
                "level": f.level,
                "drifted": f.drifted,
            }
            for f in self.features
        ]
        return {
            "features": features,
            "class_mix": self.class_mix,
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "thresholds": {k: _json_float(v) for k, v in self.thresholds.items()},
        }


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# --- building, saving and loading the reference ---------------------------------------------------------------


def _finite_rows(rows: np.ndarray, names: tuple[str, ...], what: str) -> np.ndarray:
    """The rows whose every value is finite, as float32; DataError for a wrong shape or no usable row."""
    matrix = np.asarray(rows, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise DataError(
            f"{what} have shape {matrix.shape}; expected (rows, {len(names)}), one column per feature in the "
            f"reference's order ({shown}). Compute them with the same indicator list that built the reference."
        )
    if matrix.shape[0] == 0:
        raise DataError(f"{what} have no rows; pass at least a few hundred feature rows.")
    with np.errstate(over="ignore"):
        matrix = matrix.astype(np.float32)
    finite = matrix[np.isfinite(matrix).all(axis=1)]
    if finite.shape[0] == 0:
        raise DataError(
            f"none of the {matrix.shape[0]} {what} is finite in every feature; drop the indicators' warm-up rows "
            "or pass more history per ticker."
        )
    return finite


def _class_mix(proba: np.ndarray, what: str) -> np.ndarray:
    """Share of rows whose argmax is Down, Neutral, Up."""
    matrix = np.asarray(proba, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(CLASS_NAMES):
        raise DataError(
            f"{what} has shape {matrix.shape}; expected (rows, 3) probabilities of {', '.join(CLASS_NAMES)}."
        )
    finite = matrix[np.isfinite(matrix).all(axis=1)]
    if finite.shape[0] == 0:
        raise DataError(f"{what} has no row of finite probabilities; pass the model's predict_proba output.")
    counts = np.bincount(np.argmax(finite, axis=1), minlength=len(CLASS_NAMES))
    return np.asarray(counts / counts.sum(), dtype=np.float64)


def build_reference(
    rows: np.ndarray,
    feature_names: Sequence[str],
    predicted_proba: np.ndarray | None = None,
    *,
    n_bins: int = 10,
    sample_size: int = 2000,
    seed: int = 0,
) -> DriftReference:
    """Reference from the training feature rows (rows, features) and, optionally, the model's probabilities on
    them (rows, 3). Rows with a non-finite value are left out; the sample is drawn without replacement."""
    if n_bins < 2 or sample_size < 1:
        raise ValueError(f"n_bins must be >= 2 and sample_size >= 1, got {n_bins} and {sample_size}.")
    names = tuple(str(name) for name in feature_names)
    finite = _finite_rows(rows, names, "training rows")
    edges = np.quantile(finite, np.arange(1, n_bins) / n_bins, axis=0).T  # (n_features, n_bins - 1)
    n = finite.shape[0]
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(n, size=sample_size, replace=False)) if n > sample_size else np.arange(n)
    mix = _class_mix(predicted_proba, "predicted_proba") if predicted_proba is not None else np.full(3, np.nan)
    return DriftReference(names, np.ascontiguousarray(edges, dtype=np.float64), finite[picked], mix, n)


def save_reference(folder: str | Path, reference: DriftReference) -> Path:
    """Write the reference to folder/drift_reference.npz (replacing it whole, never half-written); its path."""
    path = Path(folder) / REFERENCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{REFERENCE_FILE}.{os.getpid()}.tmp")
    with staging.open("wb") as handle:
        np.savez(
            handle,
            feature_names=np.array(reference.feature_names, dtype=str),
            edges=reference.edges,
            sample=reference.sample,
            class_mix=reference.class_mix,
            n_rows=np.array(reference.n_rows),
        )
    os.replace(staging, path)
    return path


def load_reference(folder: str | Path) -> DriftReference | None:
    """The reference saved in folder, or None when there is none."""
    path = Path(folder) / REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return DriftReference(
                feature_names=tuple(str(name) for name in data["feature_names"]),
                edges=data["edges"],
                sample=data["sample"],
                class_mix=data["class_mix"],
                n_rows=int(data["n_rows"]),
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path} is not a readable drift reference ({exc}); delete it and retrain to rebuild it."
        ) from exc


# --- statistics --------------------------------------------------------------------------------------------------


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values in each of len(edges) + 1 bins; bin i holds edges[i-1] <= v < edges[i], so a value on an
    edge goes up. Repeated edges (a constant feature) leave empty bins between them."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 0:
        raise ValueError("bin_shares needs at least one value.")
    counts = np.bincount(np.searchsorted(edges, flat, side="right"), minlength=len(edges) + 1)
    return counts / flat.size


def psi(reference_share: np.ndarray, current_share: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index sum((c - r) * ln(c / r)), shares clipped below at eps."""
    ref = np.clip(np.asarray(reference_share, dtype=np.float64), eps, None)
    cur = np.clip(np.asarray(current_share, dtype=np.float64), eps, None)
    if ref.shape != cur.shape:
        raise ValueError(f"share vectors differ in shape: {ref.shape} vs {cur.shape}; bin both with the same edges.")
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def holm_adjust(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order: the i-th smallest is multiplied by (m - i + 1),
    made non-decreasing in rank order, and capped at 1."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    order = np.argsort(p, kind="stable")
    scaled = (p.size - np.arange(p.size)) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def _ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        # scipy may fall back from the exact to the asymptotic p-value on large samples, with a RuntimeWarning;
        # at those sizes the asymptotic value is accurate
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def _level(value: float, psi_warn: float, psi_alert: float) -> str:
    return "alert" if value >= psi_alert else "warn" if value >= psi_warn else "ok"


# --- comparing ---------------------------------------------------------------------------------------------------


def _class_mix_drift(
    reference_mix: np.ndarray, current_proba: np.ndarray | None, psi_warn: float, psi_alert: float
) -> dict[str, Any]:
    """Class-mix part of the report; {} without current predictions or a reference built without them."""
    if current_proba is None or not np.isfinite(reference_mix).all():
        return {}
    current_mix = _class_mix(current_proba, "current_proba")
    value = psi(reference_mix, current_mix)
    return {
        "reference": {name: float(share) for name, share in zip(CLASS_NAMES, reference_mix, strict=True)},
        "current": {name: float(share) for name, share in zip(CLASS_NAMES, current_mix, strict=True)},
        "psi": value,
        "level": _level(value, psi_warn, psi_alert),
        "drifted": value >= psi_alert,
    }


def compare(
    reference: DriftReference,
    current: np.ndarray,
    current_proba: np.ndarray | None = None,
    *,
    psi_warn: float = 0.1,
    psi_alert: float = 0.25,
    alpha: float = 0.05,
) -> DriftReport:
    """Drift of current feature rows (rows, features) and, optionally, of the model's current probabilities
    (rows, 3) against the reference.

    Examples
    --------
    >>> report = compare(load_reference("models/champion"), todays_rows)  # doctest: +SKIP
    >>> report.drifted  # doctest: +SKIP
    ['volatility_20', 'atr_ratio_14']
    """
    if not 0.0 <= psi_warn <= psi_alert or not 0.0 < alpha < 1.0:
        raise ValueError(f"need 0 <= psi_warn <= psi_alert and 0 < alpha < 1, got {psi_warn}, {psi_alert}, {alpha}.")
    rows = _finite_rows(current, reference.feature_names, "current rows")
    psis, ks = [], []
    for j, edges in enumerate(reference.edges):
        psis.append(psi(bin_shares(reference.sample[:, j], edges), bin_shares(rows[:, j], edges)))
        ks.append(_ks(reference.sample[:, j], rows[:, j]))
    adjusted = holm_adjust(np.array([p for _, p in ks]))
    features = [
        FeatureDrift(
            name, value, stat, float(p), _level(value, psi_warn, psi_alert), bool(value >= psi_alert and p < alpha)
        )
        for name, value, (stat, _), p in zip(reference.feature_names, psis, ks, adjusted, strict=True)
    ]
    return DriftReport(
        features=features,
        class_mix=_class_mix_drift(reference.class_mix, current_proba, psi_warn, psi_alert),
        n_reference=reference.n_rows,
        n_current=rows.shape[0],
        thresholds={"psi_warn": psi_warn, "psi_alert": psi_alert, "alpha": alpha},
    )
