"""Attributions: how much each feature (and, for the Bi-LSTM, each day x feature) moved one prediction.

Every method returns an `AttributionBatch` whose contributions add up: for each sample,

    sum(contributions) + base_value = output_value   (up to `additivity_error`, which is measured, never assumed)

where `output_value` is the explained output for the target class (by default the predicted one) and `base_value`
its expectation over the baselines. Which method explains which model, and in what units:

    model      method                                   output explained             exactness
    bilstm     Integrated Gradients (Captum), averaged  P(target class)              quadrature error, measured
               over K baselines from the training                                    and reported (see below)
               background, Gauss-Legendre nodes
    lightgbm   SHAP TreeExplainer (path-dependent)      raw score (log-odds) of the  exact (float error)
               on the signal date's features            target class
    logreg     exact linear SHAP: coef * (x - mean)     the target class's logit     exact (float32 logits)
    momentum   everything on `ret_1`, the only input    P(target class)              exact
    majority   zero contributions (ignores its input)   P(target class)              exact

Why Integrated Gradients for the Bi-LSTM, not SHAP's PyTorch explainers: DeepExplainer does not support LSTMs
(measured here: additivity off by ~40% while its own check passed). GradientExplainer (expected gradients) samples
random baselines and path points, so completeness holds only in expectation: at the same budget of 128 gradient
evaluations it took 1.3-2.4 s per prediction here (IG: 0.8 s) with a ~15x larger additivity error (bench_explain.py
--weight-scale 3 --gradient-explainer 128). IG averaged over K fixed background baselines is the deterministic form of expected
gradients: each path is complete in the limit, Gauss-Legendre nodes converge fast where the network is smooth, and
all K x n_steps path points go through the network as one batched forward/backward pass.

Default `IGConfig()`: K=4 baselines x 32 nodes = 128 path points. On the default 128/64 model over 60 x 51 windows,
one CPU thread: ~0.45 s on a quiet core, 0.77-0.95 s (median) on this shared 2-core VM at load ~4.5; additivity
error ~4e-7 (untrained weights) to ~3e-4 median, 0.2% of output - base (weights x3, a confident network). The LSTM's
forward+backward pass over the 128 path points is ~85% of the time.

Known limit: a trained recurrent network can switch state abruptly somewhere along the straight path (attention
jumps from one set of days to another within 1/1000 of the path), and no affordable number of nodes integrates such
a jump. On tiny, sharply trained test networks the error was 5-25% of `output - base`; on a weakly trained 32/16
model of real-feature data it was ~0.3%. So every result carries its measured `additivity_errors` and
`relative_errors`; read contributions of a prediction with a large relative error as a ranking, not as exact shares.

Attributions are in *scaled* feature space (what the model sees); the explanation shows the raw indicator values.
The background is a small set of scaled training windows (`background_from_training`), saved beside the model
(`save_background` / `load_background`). Without one, the baseline is the all-zeros window: every feature at its
training median (the scaler's centre).
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from trendcast.errors import LeakageError, ModelError
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.baselines import LightGBMModel, LogisticModel, MajorityModel, MomentumModel
from trendcast.models.bilstm_attention import BiLSTMModel

BACKGROUND_FILE = "explain_background.npy"
OutputSpace = Literal["probability", "log_odds"]
SUPPORTED_MODELS = ("bilstm", "lightgbm", "logreg", "momentum", "majority")


# -- configuration and result ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IGConfig:
    """Integrated Gradients settings for sequence models. Cost: n_baselines x n_steps forward+backward passes."""

    n_baselines: int = 4  # first K windows of the background; the base value is their mean output
    n_steps: int = 32  # quadrature nodes per path
    method: str = "gausslegendre"  # Captum's quadrature: gausslegendre, riemann_trapezoid, ...
    max_batch: int = 512  # path points per forward/backward pass (memory bound for batches of samples)

    def __post_init__(self) -> None:
        if self.n_baselines < 1 or self.n_steps < 2 or self.max_batch < 1:
            raise ModelError("IGConfig needs n_baselines >= 1, n_steps >= 2 and max_batch >= 1")

    def as_dict(self) -> dict[str, Any]:
        return {"n_baselines": self.n_baselines, "n_steps": self.n_steps, "quadrature": self.method}


@dataclass(frozen=True)
class AttributionBatch:
    """Signed contributions for n samples, each towards its own target class."""

    features: np.ndarray  # (n, n_features) per feature, summed over the time steps
    steps: np.ndarray | None  # (n, window, n_features) per time step and feature; None for last-step models
    targets: np.ndarray  # (n,) the class each row explains
    base_values: np.ndarray  # (n,) expected output over the baselines
    output_values: np.ndarray  # (n,) the explained output at the sample
    method: str
    output_space: OutputSpace
    details: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def additivity_errors(self) -> np.ndarray:
        """(n,) sum(contributions) + base - output: 0 for an exact method."""
        return np.asarray(self.features.sum(axis=1) + self.base_values - self.output_values)

    @property
    def relative_errors(self) -> np.ndarray:
        """(n,) |additivity error| / |output - base|: the share of the change the contributions miss or overshoot."""
        change = np.abs(self.output_values - self.base_values)
        return np.asarray(np.abs(self.additivity_errors) / np.maximum(change, 1e-12))


# -- background ------------------------------------------------------------------------------------------------------
def background_from_training(model: DirectionModel, train: WindowSet, size: int = 32, seed: int = 0) -> np.ndarray:
    """(size, window, n_features) float32 *scaled* windows drawn from `train` samples dated on/before
    `model.trained_through`, in a seeded random order (so the first K of them are a random subset too).

    Examples:
        background = background_from_training(model, train, size=32, seed=config.seed)
        save_background(model_dir, background)
    """
    if model.trained_through is None:
        raise ModelError(f"{model.name}: the model is not fitted; fit it before drawing an explanation background")
    if train.feature_names != model.feature_names or train.window != model.window:
        raise ModelError(
            f"{model.name}: the background set has other features or window than the model; pass "
            "the model's own (unscaled) training WindowSet"
        )
    eligible = np.flatnonzero(train.dates <= np.datetime64(model.trained_through))
    if len(eligible) == 0:
        raise LeakageError(
            f"no training sample is dated on or before {model.trained_through.date()}; the background "
            "must come from the model's training data"
        )
    rng = np.random.default_rng(seed)
    picked = rng.choice(eligible, size=min(size, len(eligible)), replace=False)
    windows = train.windows(picked)  # (size, window, n_features), unscaled
    return model.scale_rows(windows.reshape(-1, windows.shape[2])).reshape(windows.shape)


def save_background(folder: str | Path, background: np.ndarray) -> Path:
    """Write the background as `explain_background.npy` in the model folder; returns the file."""
    _check_background_shape(background)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    path = out / BACKGROUND_FILE
    np.save(path, np.ascontiguousarray(background, dtype=np.float32), allow_pickle=False)
    return path


def load_background(folder: str | Path) -> np.ndarray | None:
    """The background saved beside a model, or None when there is none (explanations then use the median window)."""
    path = Path(folder) / BACKGROUND_FILE
    if not path.is_file():
        return None
    background = np.load(path, allow_pickle=False)
    _check_background_shape(background)
    return np.asarray(background, dtype=np.float32)


def _check_background_shape(background: np.ndarray) -> None:
    if background.ndim != 3 or len(background) == 0:
        raise ModelError(
            f"an explanation background must be (k >= 1, window, n_features) scaled windows, got "
            f"shape {background.shape}; build it with background_from_training()"
        )


def baselines_for(model: DirectionModel, background: np.ndarray | None, count: int | None = None) -> np.ndarray:
    """(k, window, n_features) baselines: the first `count` background windows, or the all-zeros (median) window."""
    shape = (model.window, len(model.feature_names))
    if background is None:
        return np.zeros((1, *shape), dtype=np.float32)
    if background.ndim != 3 or background.shape[1:] != shape:
        raise ModelError(
            f"{model.name}: the background has shape {background.shape[1:]} per window but the model "
            f"reads {shape}; rebuild it with background_from_training(model, train)"
        )
    return np.ascontiguousarray(background[:count], dtype=np.float32)


# -- dispatch --------------------------------------------------------------------------------------------------------
def attribute(
    model: DirectionModel,
    x: np.ndarray,
    *,
    targets: np.ndarray | None = None,
    background: np.ndarray | None = None,
    config: IGConfig | None = None,
) -> AttributionBatch:
    """Attributions for scaled windows `x` (n, window, n_features), each towards `targets` (default: the predicted
    class). The method follows the model type (table in the module docstring)."""
    expected = (model.window, len(model.feature_names))
    if x.ndim != 3 or x.shape[1:] != expected or len(x) == 0:
        raise ModelError(
            f"{model.name}: attributions need scaled windows of shape (n >= 1, {expected[0]}, "
            f"{expected[1]}), got {x.shape}; scale them with model.scale_rows"
        )
    x = np.ascontiguousarray(x, dtype=np.float32)
    chosen = np.asarray(model.predict_scaled(x).argmax(axis=1) if targets is None else targets, dtype=np.int64)
    if chosen.shape != (len(x),) or not np.isin(chosen, (0, 1, 2)).all():
        raise ModelError(f"targets must be one class id (0, 1 or 2) per window, got {chosen!r}")
    if isinstance(model, BiLSTMModel):
        return integrated_gradients(model, x, chosen, background, config or IGConfig())
    if isinstance(model, LightGBMModel):
        return tree_shap(model, x[:, -1, :], chosen)
    if isinstance(model, LogisticModel):
        return linear_shap(model, x[:, -1, :], chosen, baselines_for(model, background)[:, -1, :].mean(axis=0))
    if isinstance(model, MomentumModel):
        return single_feature(model, x, chosen, baselines_for(model, background))
    if isinstance(model, MajorityModel):
        return constant(model, x, chosen)
    raise ModelError(
        f"explanations support the models {', '.join(SUPPORTED_MODELS)}; {model.name!r} "
        f"({type(model).__name__}) has no explainer yet. Add one in trendcast.explain.shap_values."
    )


# -- Bi-LSTM: Integrated Gradients over background baselines ---------------------------------------------------------
def integrated_gradients(
    model: BiLSTMModel, x: np.ndarray, targets: np.ndarray, background: np.ndarray | None, config: IGConfig
) -> AttributionBatch:
    """IG on P(target) averaged over K baselines: steps[i] = mean_k IG(x_i; b_k), so
    sum(steps[i]) = P(target | x_i) - mean_k P(target | b_k) up to the quadrature error."""
    from captum.attr import IntegratedGradients

    network = model.network.eval()
    baselines = torch.from_numpy(baselines_for(model, background, config.n_baselines))  # (k, window, F)
    k = len(baselines)

    def target_probability(z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(network(z)[0], dim=1)  # (batch, 3); Captum picks the target column

    ig = IntegratedGradients(target_probability)
    per_chunk = max(1, config.max_batch // (k * config.n_steps))  # samples per forward/backward pass
    steps = np.zeros(x.shape, dtype=np.float64)
    for start in range(0, len(x), per_chunk):
        chunk = torch.from_numpy(x[start : start + per_chunk])  # (c, window, F)
        inputs = chunk.repeat_interleave(k, dim=0)  # (c * k, window, F): each sample once per baseline
        paths = ig.attribute(
            inputs,
            baselines=baselines.repeat(len(chunk), 1, 1),
            target=torch.from_numpy(targets[start : start + per_chunk]).repeat_interleave(k),
            n_steps=config.n_steps,
            method=config.method,
        )
        steps[start : start + len(chunk)] = paths.detach().double().reshape(len(chunk), k, *x.shape[1:]).mean(1).numpy()
    output, base = _probability_at(network, x, baselines, targets)
    details = {**config.as_dict(), "n_baselines": k, "baseline": "background" if background is not None else "median"}
    return AttributionBatch(
        features=steps.sum(axis=1),
        steps=steps,
        targets=targets,
        base_values=base,
        output_values=output,
        method="integrated_gradients",
        output_space="probability",
        details=details,
    )


def _probability_at(
    network: torch.nn.Module, x: np.ndarray, baselines: torch.Tensor, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """P(target | x_i) and mean_k P(target | b_k), in the same float32 network the gradients came from."""
    with torch.no_grad():
        p_x = torch.softmax(network(torch.from_numpy(x))[0], dim=1).double().numpy()  # (n, 3)
        p_b = torch.softmax(network(baselines)[0], dim=1).double().numpy().mean(axis=0)  # (3,)
    return p_x[np.arange(len(x)), targets], p_b[targets]


# -- tabular models --------------------------------------------------------------------------------------------------
def _import_shap() -> Any:
    """shap, imported with its matplotlib deprecation notice silenced (shap's own colormap code, not ours)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module="shap")
        warnings.filterwarnings("ignore", message=".*set_bad.*")
        import shap

    return shap


_TREE_EXPLAINERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _tree_explainer(booster: Any) -> Any:
    if booster not in _TREE_EXPLAINERS:
        _TREE_EXPLAINERS[booster] = _import_shap().TreeExplainer(booster)
    return _TREE_EXPLAINERS[booster]


def _class_columns(classes: np.ndarray, targets: np.ndarray, name: str) -> np.ndarray:
    lookup = {int(c): i for i, c in enumerate(classes)}
    missing = sorted({int(t) for t in targets} - set(lookup))
    if missing:
        raise ModelError(f"{name}: class {missing[0]} never occurred in training, so the model has no score for it")
    return np.array([lookup[int(t)] for t in targets], dtype=np.int64)


def tree_shap(model: LightGBMModel, last: np.ndarray, targets: np.ndarray) -> AttributionBatch:
    """SHAP TreeExplainer (exact, path-dependent) on the signal date's scaled features, in raw-score units."""
    if model.booster_ is None:
        raise ModelError(f"{model.name}: not fitted")
    explainer = _tree_explainer(model.booster_)
    with warnings.catch_warnings():  # binary boosters warn that the output format changed; we handle both
        warnings.filterwarnings("ignore", message=".*binary classifier.*", category=UserWarning)
        values = np.asarray(explainer.shap_values(last), dtype=np.float64)
    raw = np.asarray(model.booster_.predict(last, raw_score=True), dtype=np.float64)
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    columns = _class_columns(model.classes_, targets, model.name)
    rows = np.arange(len(last))
    if values.ndim == 2:  # binary booster: one score, for classes_[1]; classes_[0] is its negative
        sign = np.where(columns == 1, 1.0, -1.0)
        features, base, output = values * sign[:, None], expected[0] * sign, raw * sign
    else:  # (n, n_features, n_classes)
        features, base, output = values[rows, :, columns], expected[columns], raw[rows, columns]
    return AttributionBatch(
        features=features,
        steps=None,
        targets=targets,
        base_values=base,
        output_values=output,
        method="tree_shap",
        output_space="log_odds",
        details={"perturbation": "tree_path_dependent"},
    )


def linear_shap(model: LogisticModel, last: np.ndarray, targets: np.ndarray, mean: np.ndarray) -> AttributionBatch:
    """Exact SHAP of a linear logit with independent features: coef_c,j * (x_j - mean_j)."""
    estimator = model.estimator_
    if estimator is None:
        raise ModelError(f"{model.name}: not fitted")
    coef, intercept = np.asarray(estimator.coef_, np.float64), np.asarray(estimator.intercept_, np.float64)
    decision = np.asarray(estimator.decision_function(last), dtype=np.float64)
    columns = _class_columns(np.asarray(estimator.classes_), targets, model.name)
    if coef.shape[0] == 1:  # binary: one logit for classes_[1]; classes_[0]'s is its negative
        sign = np.where(columns == 1, 1.0, -1.0)
        coef, intercept = sign[:, None] * coef[0], sign * intercept[0]
        output = sign * decision
    else:
        coef, intercept = coef[columns], intercept[columns]
        output = decision[np.arange(len(last)), columns]
    features = coef * (last.astype(np.float64) - mean)
    base = (coef * mean).sum(axis=1) + intercept
    return AttributionBatch(
        features=features,
        steps=None,
        targets=targets,
        base_values=base,
        output_values=output,
        method="linear_shap",
        output_space="log_odds",
        details={"mean": "background last steps"},
    )


def single_feature(model: MomentumModel, x: np.ndarray, targets: np.ndarray, baselines: np.ndarray) -> AttributionBatch:
    """The momentum rule reads `ret_1` only, so its exact Shapley value is the whole change, on that feature."""
    rows = np.arange(len(x))
    output = model.predict_scaled(x)[rows, targets]
    base = model.predict_scaled(baselines).mean(axis=0)[targets]
    features = np.zeros((len(x), x.shape[2]))
    features[:, model.feature_names.index(model.feature)] = output - base
    return AttributionBatch(
        features=features,
        steps=None,
        targets=targets,
        base_values=base,
        output_values=output,
        method="single_feature",
        output_space="probability",
        details={"feature": model.feature},
    )


def constant(model: MajorityModel, x: np.ndarray, targets: np.ndarray) -> AttributionBatch:
    """The majority model ignores its input: every contribution is 0 and the base value is the output."""
    output = model.predict_scaled(x)[np.arange(len(x)), targets]
    return AttributionBatch(
        features=np.zeros((len(x), x.shape[2])),
        steps=None,
        targets=targets,
        base_values=output,
        output_values=output,
        method="constant",
        output_space="probability",
    )
