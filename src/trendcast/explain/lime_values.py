"""LIME for one prediction: a weighted linear model fitted to the model's answers on perturbed copies of the window.

`lime_attribute(model, x, target, background)` returns the same `AttributionBatch` as the other methods
(`shap_values.attribute`), so `explain_window(..., method="lime")` builds the same `Explanation`:

    model            explainer (lime package)                    what is perturbed
    bilstm           lime_tabular.RecurrentTabularExplainer      every (day, feature) cell of the scaled window
    lightgbm,        lime_tabular.LimeTabularExplainer           the signal date's scaled features (the only row
    logreg, ...                                                  these models read; the other days stay as they are)

The explainer's statistics come from the model's saved background (scaled training windows, `bundle.background()`).
LIME's default discretisation is kept: each input becomes "in the same quartile bin as the explained value" (1) or
not (0), samples are drawn bin by bin from the background, and a ridge regression weighted by closeness to the
window is fitted to P(target class). The Bi-LSTM's window has more cells (60 x 51 = 3060) than LIME draws samples,
and a ridge fit on all of them interpolates (R^2 = 1 and no error, meaning nothing), so LIME's `highest_weights`
selection keeps the SEQUENCE_FEATURES strongest cells and the local model is refitted on those; last-step models
keep every feature. At the explained window every indicator is 1, so

    intercept + sum(weights) = the local model's prediction at the window          (exact)
    contributions = the weights (per feature; for the Bi-LSTM the kept cells summed over the window's days,
                    `steps` per cell, 0 for the cells not kept)
    base_value = intercept: the local model's P(target) with no input in the window's own bins
    additivity_error = intercept + sum(weights) - P(target | window) = how far the local model misses the model

Unlike Integrated Gradients or TreeSHAP, LIME promises no additivity: the error is the surrogate's miss at the very
point it explains, and `method_details.score` is its weighted R^2 on the perturbed samples (in-sample, so it is
only meaningful with far fewer kept inputs than samples: hence the cell selection above). Read LIME's contributions
as a ranking from a sampled local fit that changes with the seed and the budget, not as shares.

Cost (docs/api.md): the explainer (the quartile bins of every input) is built once per model and background and
cached; each explanation draws `num_samples` perturbed windows, runs the model on them and fits the ridge
regression (twice with a selection: on every input to rank them, then on the kept ones). `_FastQuartileDiscretizer` draws the perturbed values of all inputs in one vectorised call instead of
LIME's one scipy call per input (3060 calls for a 60 x 51 window, most of an explanation's time). Explanations are
deterministic given `LimeConfig.seed`: the cached explainer's random state is reseeded under a lock for each one.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from lime.discretize import QuartileDiscretizer
from lime.lime_tabular import LimeTabularExplainer, RecurrentTabularExplainer
from scipy.special import ndtr, ndtri
from threadpoolctl import threadpool_limits

from trendcast.errors import ModelError
from trendcast.explain.shap_values import AttributionBatch
from trendcast.models.base import DirectionModel

SEQUENCE_SAMPLES = 500  # default budget for sequence models: 0.4-0.7 s for the default Bi-LSTM (docs/api.md)
SEQUENCE_FEATURES = 100  # (day, feature) cells kept in a sequence model's local fit: well below SEQUENCE_SAMPLES
TABULAR_SAMPLES = 2000  # default budget for last-step models: ~0.1 s (LightGBM, 51 features, all kept)


@dataclass(frozen=True)
class LimeConfig:
    """LIME's budget. Cost grows with num_samples (model passes on perturbed windows, the ridge fit)."""

    num_samples: int | None = None  # perturbed samples; None: SEQUENCE_SAMPLES or TABULAR_SAMPLES by model type
    num_features: int | None = None  # inputs kept in the local fit; None: SEQUENCE_FEATURES cells or every feature
    seed: int = 0  # the random state of the sampling: the same seed gives the same explanation

    def __post_init__(self) -> None:
        if (self.num_samples is not None and self.num_samples < 10) or (
            self.num_features is not None and self.num_features < 1
        ):
            raise ModelError("LimeConfig needs num_samples >= 10 and num_features >= 1 (or None for the default)")

    def samples_for(self, model: DirectionModel) -> int:
        if self.num_samples is not None:
            return self.num_samples
        return SEQUENCE_SAMPLES if model.uses_sequence else TABULAR_SAMPLES

    def features_for(self, model: DirectionModel, n_inputs: int) -> int:
        """Inputs in the local fit: a sequence model's window has more cells (60 x 51) than LIME draws samples, and a
        ridge fit on all of them interpolates (R^2 = 1, no error, no meaning), so LIME's highest_weights keeps the
        strongest SEQUENCE_FEATURES cells and refits on those; last-step models keep every feature."""
        wanted = self.num_features or (SEQUENCE_FEATURES if model.uses_sequence else n_inputs)
        return min(wanted, n_inputs)


class _FastQuartileDiscretizer(QuartileDiscretizer):  # type: ignore[misc]
    """LIME's quartile discretizer whose `undiscretize` draws every column at once (vectorised inverse-CDF draws of
    the same truncated normal per bin) instead of one scipy truncnorm call per column.

    A bin of zero width (or one no background value fell in) gives a point inside the bin, where LIME returns the
    bin's z-score instead of a value."""

    def __init__(self, data: np.ndarray, feature_names: list[str], random_state: np.random.RandomState) -> None:
        super().__init__(data, [], feature_names, random_state=random_state)
        self._columns = np.array(sorted(self.means), dtype=np.intp)
        low, high, mean, std = (
            _padded([getattr(self, name)[c] for c in self._columns]) for name in ("mins", "maxs", "means", "stds")
        )
        self._mean, self._std = mean, std  # (k, bins) per column and bin
        self._point = np.clip(mean, low, high)  # zero-width or empty bins: a point inside the bin
        self._wide = (high > low) & (std > 1e-10)
        safe = np.where(self._wide, std, 1.0)
        self._cdf_low, self._cdf_high = ndtr((low - mean) / safe), ndtr((high - mean) / safe)

    def undiscretize(self, data: np.ndarray) -> np.ndarray:
        """Perturbed values for bin numbers: Normal(bin mean, bin std) truncated to the bin, drawn by the inverse
        CDF (LIME's distribution; scipy's truncnorm is also exact far in the tails but ~10x slower, and a quartile
        bin of the background is never far in its own tail)."""
        out = np.array(data, dtype=np.float64, copy=True)
        bins = out[:, self._columns].astype(np.intp)  # (n, k) bin of each perturbed value
        rows = np.arange(len(self._columns))[None, :]
        drawn = self._point[rows, bins]
        wide = self._wide[rows, bins]
        low, high = self._cdf_low[rows, bins][wide], self._cdf_high[rows, bins][wide]
        u = np.clip(low + self.random_state.uniform(size=low.shape) * (high - low), 1e-16, 1 - 1e-16)
        drawn[wide] = self._mean[rows, bins][wide] + self._std[rows, bins][wide] * ndtri(u)
        out[:, self._columns] = drawn
        return out


def _padded(rows: list[list[float]]) -> np.ndarray:
    """(k, max bins) from ragged per-column lists (bins merge where quartiles coincide); pads repeat the last bin."""
    width = max(len(r) for r in rows)
    return np.array([list(r) + [r[-1]] * (width - len(r)) for r in rows], dtype=np.float64)


@dataclass
class _CachedExplainer:
    explainer: LimeTabularExplainer
    random_state: np.random.RandomState
    lock: threading.Lock


_EXPLAINERS: weakref.WeakKeyDictionary[DirectionModel, dict[str, _CachedExplainer]] = weakref.WeakKeyDictionary()
_EXPLAINERS_LOCK = threading.Lock()


def _training_data(model: DirectionModel, background: np.ndarray | None) -> np.ndarray:
    """The background the explainer's bins come from: scaled windows (k, window, F), or their last rows (k, F)."""
    shape = (model.window, len(model.feature_names))
    if background is None or background.ndim != 3 or background.shape[1:] != shape or len(background) < 2:
        raise ModelError(
            f"{model.name}: LIME draws its perturbations from the explainer background saved with the model "
            f"(at least 2 scaled windows of shape {shape}); this model has none. Retrain to save one, or use "
            "method='auto'."
        )
    values = np.asarray(background, dtype=np.float64)
    return values if model.uses_sequence else values[:, -1, :]


def _build(model: DirectionModel, training: np.ndarray) -> _CachedExplainer:
    random_state = np.random.RandomState(0)
    names = list(model.feature_names)
    if model.uses_sequence:
        n, steps, width = training.shape
        flat = np.transpose(training, (0, 2, 1)).reshape(n, width * steps)  # RecurrentTabularExplainer's order
        flat_names = [f"{name}_t-{steps - (i + 1)}" for name in names for i in range(steps)]
        discretizer = _FastQuartileDiscretizer(flat, flat_names, random_state)
        explainer: LimeTabularExplainer = RecurrentTabularExplainer(
            training, feature_names=names, discretizer=discretizer, random_state=random_state
        )
    else:
        discretizer = _FastQuartileDiscretizer(training, names, random_state)
        explainer = LimeTabularExplainer(
            training, feature_names=names, discretizer=discretizer, random_state=random_state
        )
    return _CachedExplainer(explainer, random_state, threading.Lock())


def _explainer(model: DirectionModel, training: np.ndarray) -> _CachedExplainer:
    """One explainer per (model, background), built on first use (the bins of every input) and kept with the model."""
    key = hashlib.blake2b(np.ascontiguousarray(training).tobytes(), digest_size=16).hexdigest()
    with _EXPLAINERS_LOCK:
        cached = _EXPLAINERS.setdefault(model, {}).get(key)
    if cached is None:
        with _quiet():
            cached = _build(model, training)
        with _EXPLAINERS_LOCK:
            cached = _EXPLAINERS[model].setdefault(key, cached)
    return cached


@contextmanager
def _quiet() -> Iterator[None]:
    """LIME and its scipy draws divide by zero-width bins of constant inputs (RuntimeWarning); nothing to act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _tabular_predict(model: DirectionModel, window: np.ndarray) -> Any:
    """Perturbed last rows (n, F) -> P for windows equal to `window` with the last row replaced."""

    def predict(rows: np.ndarray) -> np.ndarray:
        windows = np.repeat(window[None, :, :], len(rows), axis=0)
        windows[:, -1, :] = rows
        return model.predict_scaled(windows)

    return predict


def lime_attribute(
    model: DirectionModel,
    x: np.ndarray,
    target: int,
    background: np.ndarray | None,
    config: LimeConfig | None = None,
) -> AttributionBatch:
    """LIME contributions towards `target` for ONE scaled window `x` (1, window, n_features) (see the module doc)."""
    config = config or LimeConfig()
    if x.shape != (1, model.window, len(model.feature_names)):
        raise ModelError(f"LIME explains one scaled window of shape (1, {model.window}, {len(model.feature_names)})")
    cached = _explainer(model, _training_data(model, background))
    window = np.asarray(x[0], dtype=np.float64)
    n_inputs = window.size if model.uses_sequence else window.shape[1]
    kept = config.features_for(model, n_inputs)
    selection = "none" if kept == n_inputs else "highest_weights"  # not "auto": its forward selection is too slow
    with cached.lock, _quiet(), threadpool_limits(1):  # BLAS threads only fight over the small ridge solve
        cached.random_state.seed(config.seed)
        cached.explainer.feature_selection = selection
        explanation = cached.explainer.explain_instance(
            window if model.uses_sequence else window[-1],
            model.predict_scaled if model.uses_sequence else _tabular_predict(model, window),
            labels=(target,),
            num_features=kept,
            num_samples=config.samples_for(model),
        )
    weights = np.zeros(n_inputs)
    for column, weight in explanation.local_exp[target]:
        weights[int(column)] = float(weight)
    steps = weights.reshape(window.shape[1], window.shape[0]).T if model.uses_sequence else None  # (window, F)
    output = float(model.predict_scaled(x)[0, target])
    details = {
        "num_samples": config.samples_for(model),
        "num_features": kept,
        "seed": config.seed,
        "score": float(explanation.score),
        "local_prediction": float(np.ravel(explanation.local_pred)[0]),
        "perturbed": "window cells" if model.uses_sequence else "signal-date features",
    }
    return AttributionBatch(
        features=(steps.sum(axis=0) if steps is not None else weights)[None, :],
        steps=None if steps is None else steps[None],
        targets=np.array([target]),
        base_values=np.array([float(explanation.intercept[target])]),
        output_values=np.array([output]),
        method="lime",
        output_space="probability",
        details=details,
    )
