"""Metrics for out-of-sample direction forecasts, with confidence intervals from a bootstrap over whole days.

Inputs: `y_true` (n,) class ids 0 = Down, 1 = Neutral, 2 = Up; `proba` (n, 3) probabilities in that column order
(a row whose sum is off 1 by more than 1e-4 is renormalised, with a warning; smaller gaps such as float32
softmax rounding are left alone, so that tied scores stay tied); `dates` (n,) the signal date of each sample, of
any sortable type (datetime64 in practice). The predicted class is `argmax(proba)`, with ties going to the lower
class id (NumPy's rule).

What each stored number means (`classification_metrics`)

    accuracy             share of predictions equal to the label
    balanced_accuracy    mean recall over the classes present in y_true (scikit-learn's definition)
    precision_<c>,       per class, and their plain mean over the classes of the label set (`*_macro`). A ratio
    recall_<c>, f1_<c>   whose denominator is zero (a class never predicted, or never true) counts as 0
                         (scikit-learn's zero_division=0), so a baseline that never says Down is not flattered.
                         A class is outside the label set when no label is that class AND every probability of
                         it is exactly 0: Neutral with cross_sectional (binary) labels, where the label set is
                         Down and Up. Its per-class values are NaN and no macro average counts it
    auc_<c>              one-vs-rest ROC AUC of proba[:, c] for "label == c", ties counted as half; NaN when class
                         c is absent from y_true (the AUC is undefined without positives)
    auc_macro_ovr        mean of auc_<c> over the classes present in y_true. With all three present this equals
                         roc_auc_score(multi_class="ovr", average="macro"), which raises otherwise; NaN with fewer
                         than two classes present
    log_loss             mean of -ln p[i, y_i], probabilities clipped to [1e-15, 1] and renormalised per row
    brier                mean over samples of the sum over classes of (p_ic - onehot_ic)^2: the original
                         multi-class Brier (1950) score, in [0, 2], NOT halved (scikit-learn's brier_score_loss
                         with scale_by_half=False gives the same number). Uniform 1/3 scores 2/3
    confusion_matrix     3 x 3 counts, rows = true class, columns = predicted class, order Down, Neutral, Up
    share_<c>            share of samples whose label is c; pred_share_<c> the share predicted as c

Bootstrap over days

Samples of one day are not independent (one market move hits every ticker), nor are neighbouring days
(overlapping label horizons, volatility clusters). Intervals therefore resample whole days in blocks of
consecutive days: the circular block bootstrap (Politis & Romano 1992). A resample draws ceil(n_days / block_days)
blocks starting at uniformly drawn days, wraps past the last day to the first, and keeps the first n_days days;
every drawn day brings all of its samples. Intervals are percentiles at alpha/2 and 1 - alpha/2 of the
resampled values (NaN values, e.g. an AUC in a resample left with one class, are dropped). `default_block_days`
is round(n_days ** (1/3)), the usual rate for block-bootstrap intervals (Hall, Horowitz & Jing 1995), and at
least the label horizon when one is given: labels that look h days ahead overlap for h days.

Named metrics ("accuracy", "balanced_accuracy", "f1_macro", "log_loss", "brier", "auc_macro_ovr") are resampled
fast: confusion-matrix metrics and mean losses from per-day aggregates (a count matrix times per-day sums), AUC by
re-weighting presorted scores with the number of times each day was drawn. On one core, 1000 resamples of 50,000
samples over 1,000 days take well under a second for accuracy and a few seconds for AUC, which is why
`summarise_model` defaults to `n_boot_auc=200`. Any other callable `metric(y_true, proba) -> float` works too, by
plain recomputation on each resample (slower). `paired_bootstrap` scores two models on the same resampled days
and tests "a is better than b" from the differences.

Chance level

`permutation_accuracy_null` rotates the date-ordered predictions against the labels by at least a block of days:
every rotation keeps both series' structure (class shares, same-day clustering, serial dependence) and has no
skill by construction, so its quantiles are the interval of accuracy a no-skill model with these very predictions
reaches. Leakage guards ask whether a model's accuracy on random-walk data lies inside it.

Information coefficients (Qlib's measures)

For a multi-ticker universe the score is P(Up) - P(Down). Per day, IC is the Pearson and Rank IC the Spearman
correlation between score and forward return across the tickers of that day; days with fewer than `min_tickers`
usable tickers, or with a constant score or return, are skipped. ICIR = mean / std of the daily series (sample
std, ddof=1), NOT annualised, as Qlib reports it; NaN with fewer than two days or a zero std.

Nothing is rounded: floats are returned as Python floats and NaN marks an undefined value (the JSON writer
turns NaN into null).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support, roc_auc_score

CLASS_KEYS: tuple[str, str, str] = ("down", "neutral", "up")
LABELS: tuple[int, int, int] = (0, 1, 2)
PROBA_CLIP = 1e-15  # log loss floor for a probability
_SUM_TOLERANCE = 1e-4  # rows further than this from summing to 1 are renormalised, with a warning
_CHUNK_ELEMENTS = 2_000_000  # resamples x samples per chunk of the AUC bootstrap (about 16 MB per array)

MetricName = Literal["accuracy", "balanced_accuracy", "f1_macro", "log_loss", "brier", "auc_macro_ovr"]
MetricFn = Callable[[np.ndarray, np.ndarray], float]
Metric = MetricName | MetricFn
METRIC_NAMES: tuple[str, ...] = get_args(MetricName)
LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss", "brier"})
_CONFUSION_METRICS = frozenset({"accuracy", "balanced_accuracy", "f1_macro"})


# -- input checks ---------------------------------------------------------------------------------------------------
def _check_labels(y_true: npt.ArrayLike) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y_true must be a non-empty 1-d array of class ids, got shape {y.shape}.")
    if not np.isin(y, LABELS).all():
        raise ValueError(
            "y_true must hold class ids 0 (Down), 1 (Neutral), 2 (Up) only; drop unlabelled samples (label -1) "
            "first, e.g. `ws.take(ws.labels >= 0)`."
        )
    return y.astype(np.int64)


def _check_proba(proba: npt.ArrayLike, n: int) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.shape != (n, 3):
        raise ValueError(f"proba must have shape ({n}, 3) (columns P(Down), P(Neutral), P(Up)), got {p.shape}.")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("proba must be finite and non-negative; check the model's softmax output for NaN.")
    sums = p.sum(axis=1)
    if (sums <= 0).any():
        raise ValueError("a proba row sums to 0; every row needs a positive total (probabilities summing to 1).")
    off = np.abs(sums - 1.0) > _SUM_TOLERANCE
    if off.any():
        warnings.warn(
            f"{int(off.sum())} proba rows do not sum to 1 (largest gap {np.abs(sums - 1).max():.3g}); they were "
            "renormalised. Pass probabilities, e.g. a softmax output.",
            stacklevel=3,
        )
        p = p.copy()  # never modify the caller's array
        p[off] /= sums[off, None]
    return p


def _day_index(dates: npt.ArrayLike, n: int) -> tuple[np.ndarray, int]:
    """(n,) index of each sample's day in sorted order of the unique dates, and the number of days."""
    d = np.asarray(dates)
    if d.shape != (n,):
        raise ValueError(f"dates must be a 1-d array with one date per sample ({n}), got shape {d.shape}.")
    if pd.isna(d).any():
        raise ValueError("dates contain missing values; every sample needs its signal date.")
    unique, inverse = np.unique(d, return_inverse=True)
    return inverse.astype(np.int64).ravel(), len(unique)


def _check_metric(metric: Metric) -> None:
    if callable(metric) or metric in METRIC_NAMES:
        return
    close = difflib.get_close_matches(str(metric), METRIC_NAMES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown metric {metric!r}.{hint} Use one of {', '.join(METRIC_NAMES)} or a callable.")


@dataclass(frozen=True)
class _Sample:
    y: np.ndarray  # (n,) int64 class ids
    proba: np.ndarray  # (n, 3) float64, rows sum to 1 within 1e-4
    day: np.ndarray  # (n,) int64 day index in 0..n_days-1
    n_days: int


def _prepare(y_true: npt.ArrayLike, proba: npt.ArrayLike, dates: npt.ArrayLike) -> _Sample:
    y = _check_labels(y_true)
    day, n_days = _day_index(dates, len(y))
    return _Sample(y, _check_proba(proba, len(y)), day, n_days)


def _ratio(num: np.ndarray, den: np.ndarray, fill: float) -> np.ndarray:
    """num / den elementwise, `fill` where den is 0."""
    out = np.full(np.broadcast(num, den).shape, fill, dtype=np.float64)
    return np.asarray(np.divide(num, den, out=out, where=den > 0))


# -- point metrics --------------------------------------------------------------------------------------------------
def _per_class_auc(y: np.ndarray, proba: np.ndarray) -> list[float]:
    present = set(np.unique(y).tolist())
    if len(present) < 2:
        return [float("nan")] * 3
    return [float(roc_auc_score(y == c, proba[:, c])) if c in present else float("nan") for c in LABELS]


def brier_score(y_true: npt.ArrayLike, proba: npt.ArrayLike) -> float:
    """Multi-class Brier score: mean over samples of sum over classes (p_ic - onehot_ic)^2, in [0, 2].

    Examples:
        >>> brier_score([2, 0], [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])  # (0.25 + 0.25 + 0) / 2
        0.25
    """
    y = _check_labels(y_true)
    p = _check_proba(proba, len(y))
    return float(_brier_per_sample(y, p).mean())


def _brier_per_sample(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    onehot = np.eye(3)[y]  # (n, 3)
    return np.asarray(((proba - onehot) ** 2).sum(axis=1))


def _clip_proba(proba: np.ndarray) -> np.ndarray:
    """Probabilities clipped to [PROBA_CLIP, 1] and renormalised per row (the log loss input)."""
    clipped = np.clip(proba, PROBA_CLIP, 1.0)
    return np.asarray(clipped / clipped.sum(axis=1, keepdims=True))


def _log_loss_per_sample(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    return np.asarray(-np.log(_clip_proba(proba)[np.arange(len(y)), y]))


def classification_metrics(y_true: npt.ArrayLike, proba: npt.ArrayLike) -> dict[str, Any]:
    """Every point metric of the module docstring for one set of predictions (a fold, or all folds pooled).

    Keys: accuracy, balanced_accuracy, precision_/recall_/f1_{down,neutral,up,macro}, auc_{down,neutral,up},
    auc_macro_ovr, log_loss, brier, confusion_matrix (3x3 list of ints), n_samples, share_{down,neutral,up},
    pred_share_{down,neutral,up}. Values are Python floats (NaN where undefined) or ints.

    Examples:
        >>> m = classification_metrics([0, 1, 2, 2], [[.6, .3, .1], [.2, .5, .3], [.1, .2, .7], [.5, .3, .2]])
        >>> m["accuracy"], m["confusion_matrix"][2]
        (0.75, [1, 0, 1])
    """
    y = _check_labels(y_true)
    return _classification_metrics(y, _check_proba(proba, len(y)))


def label_set(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """(3,) bool: the classes of the label set. A class is left out only when no label is that class and every
    probability of it is exactly 0, which is how binary (cross_sectional) labels show: Neutral never occurs and
    every model gives it probability 0. With absolute labels every class is in."""
    return np.asarray([(y == c).any() or (proba[:, c] != 0).any() for c in LABELS])


def _classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    pred = p.argmax(axis=1)
    classes = label_set(y, p)
    cm = confusion_matrix(y, pred, labels=list(LABELS))
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, pred, labels=list(LABELS), average=None, zero_division=0.0
    )
    aucs = _per_class_auc(y, p)
    out: dict[str, Any] = {
        "accuracy": float(np.mean(pred == y)),
        "balanced_accuracy": float(_from_confusion(cm[None].astype(np.float64), "balanced_accuracy")[0]),
    }
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1), ("auc", aucs)):
        if name != "auc":
            values = np.where(classes, values, np.nan)  # a class outside the label set has no value, not 0
            out[f"{name}_macro"] = float(np.sum(values[classes]) / np.sum(classes))
        out.update({f"{name}_{key}": float(v) for key, v in zip(CLASS_KEYS, values, strict=True)})
    present = [a for a in aucs if not np.isnan(a)]
    out["auc_macro_ovr"] = float(np.mean(present)) if len(present) >= 2 else float("nan")
    out["log_loss"] = float(log_loss(y, _clip_proba(p), labels=list(LABELS)))
    out["brier"] = float(_brier_per_sample(y, p).mean())
    out["confusion_matrix"] = [[int(v) for v in row] for row in cm]
    out["n_samples"] = len(y)
    true_share, pred_share = np.bincount(y, minlength=3) / len(y), np.bincount(pred, minlength=3) / len(y)
    out.update({f"share_{key}": float(v) for key, v in zip(CLASS_KEYS, true_share, strict=True)})
    out.update({f"pred_share_{key}": float(v) for key, v in zip(CLASS_KEYS, pred_share, strict=True)})
    return out


# -- resampled metrics ----------------------------------------------------------------------------------------------
def _from_confusion(cm: np.ndarray, name: str, classes: np.ndarray | None = None) -> np.ndarray:
    """A confusion-matrix metric for a stack of (k, 3, 3) float matrices (rows true, columns predicted) -> (k,).
    `classes` (3,) or (k, 3) bool: the label set (`label_set`) that f1_macro averages over; all three when None."""
    tp = np.diagonal(cm, axis1=1, axis2=2)  # (k, 3)
    true_n, pred_n = cm.sum(axis=2), cm.sum(axis=1)  # (k, 3) each
    if name == "accuracy":
        return _ratio(tp.sum(axis=1), true_n.sum(axis=1), np.nan)
    if name == "balanced_accuracy":
        recall = _ratio(tp, true_n, 0.0)
        return _ratio(recall.sum(axis=1), (true_n > 0).sum(axis=1).astype(np.float64), np.nan)
    f1 = _ratio(2 * tp, true_n + pred_n, 0.0)  # f1_macro: per-class 2tp / (2tp + fp + fn)
    weight = np.ones_like(f1) if classes is None else np.broadcast_to(classes, f1.shape).astype(np.float64)
    return _ratio((f1 * weight).sum(axis=1), weight.sum(axis=1), np.nan)


@dataclass(frozen=True)
class _RankedClass:
    """One class's samples in ascending order of its probability, for weighted one-vs-rest AUC."""

    day: np.ndarray  # (n,) day of each sample, in score order
    positive: np.ndarray  # (n,) float64, 1.0 where the label is this class, in score order
    day_positives: np.ndarray  # (n_days,) float64, positives per day
    day_negatives: np.ndarray  # (n_days,) float64, negatives per day
    tie_starts: np.ndarray | None  # first position of each run of equal scores; None when all scores differ


def _rank_classes(s: _Sample) -> list[_RankedClass]:
    ranked = []
    for c in np.unique(s.y):
        order = np.argsort(s.proba[:, c], kind="stable")
        scores = s.proba[order, c]
        starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])
        day_pos = np.bincount(s.day, weights=(s.y == c).astype(np.float64), minlength=s.n_days)
        day_all = np.bincount(s.day, minlength=s.n_days).astype(np.float64)
        positive = (s.y[order] == c).astype(np.float64)
        ties = None if len(starts) == len(scores) else starts
        ranked.append(_RankedClass(s.day[order], positive, day_pos, day_all - day_pos, ties))
    return ranked


def _weighted_auc(ranked: _RankedClass, day_weights: np.ndarray) -> np.ndarray:
    """(k,) AUCs when every sample of day d counts day_weights[:, d] times (Mann-Whitney form, ties count half)."""
    weights = day_weights[:, ranked.day]  # (k, n) in score order
    if ranked.tie_starts is None:  # each positive wins against the negatives before it
        neg_up_to = np.cumsum(weights * (1.0 - ranked.positive), axis=1)
        wins = (weights * neg_up_to) @ ranked.positive
    else:  # per run of equal scores: wins against lower runs, half against negatives in the same run
        pos = np.add.reduceat(weights * ranked.positive, ranked.tie_starts, axis=1)  # (k, n_distinct_scores)
        neg = np.add.reduceat(weights * (1.0 - ranked.positive), ranked.tie_starts, axis=1)
        wins = (pos * (np.cumsum(neg, axis=1) - 0.5 * neg)).sum(axis=1)
    pairs = (day_weights @ ranked.day_positives) * (day_weights @ ranked.day_negatives)
    return _ratio(wins, pairs, np.nan)


def _auc_from_counts(s: _Sample, counts: np.ndarray) -> np.ndarray:
    ranked = _rank_classes(s)
    if len(ranked) < 2:
        return np.full(len(counts), np.nan)
    step = max(1, _CHUNK_ELEMENTS // len(s.y))
    out = []
    for lo in range(0, len(counts), step):
        per_class = np.stack([_weighted_auc(r, counts[lo : lo + step]) for r in ranked])  # (n_classes, k)
        defined = np.isfinite(per_class)
        total = np.where(defined, per_class, 0.0).sum(axis=0)
        out.append(_ratio(total, defined.sum(axis=0).astype(np.float64), np.nan))
    return np.concatenate(out)


def _named_from_counts(s: _Sample, name: str, counts: np.ndarray) -> np.ndarray:
    """(k,) values of a named metric when day d is drawn counts[:, d] times (counts: (k, n_days) float)."""
    if name in _CONFUSION_METRICS:
        cell = s.y * 3 + s.proba.argmax(axis=1)
        day_cm = np.bincount(s.day * 9 + cell, minlength=s.n_days * 9).reshape(s.n_days, 9)
        return _from_confusion((counts @ day_cm).reshape(-1, 3, 3), name, _resampled_label_sets(s, counts))
    if name == "auc_macro_ovr":
        return _auc_from_counts(s, counts)
    loss = _log_loss_per_sample(s.y, s.proba) if name == "log_loss" else _brier_per_sample(s.y, s.proba)
    day_sum = np.bincount(s.day, weights=loss, minlength=s.n_days)
    day_n = np.bincount(s.day, minlength=s.n_days).astype(np.float64)
    return _ratio(counts @ day_sum, counts @ day_n, np.nan)


def _resampled_label_sets(s: _Sample, counts: np.ndarray) -> np.ndarray:
    """(k, 3) bool: `label_set` of each resample (counts: (k, n_days)), from which days show each class."""
    shows = (s.y[:, None] == np.arange(3)) | (s.proba != 0)  # (n, 3): the sample puts the class in the label set
    day_shows = np.stack([np.bincount(s.day, weights=shows[:, c], minlength=s.n_days) for c in LABELS], axis=1)
    return np.asarray((counts @ day_shows) > 0)


def _concat_ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Indices starts[0]..starts[0]+sizes[0]-1, then starts[1].., concatenated."""
    ends = np.cumsum(sizes)
    return np.repeat(starts - (ends - sizes), sizes) + np.arange(ends[-1])


def _callable_over_days(s: _Sample, metric: MetricFn, days: np.ndarray) -> np.ndarray:
    order = np.argsort(s.day, kind="stable")
    y, proba = s.y[order], s.proba[order]
    sizes = np.bincount(s.day, minlength=s.n_days)
    starts = np.cumsum(sizes) - sizes  # day d occupies starts[d] : starts[d] + sizes[d] in day order
    values = np.empty(len(days))
    for b, drawn in enumerate(days):
        idx = _concat_ranges(starts[drawn], sizes[drawn])
        values[b] = float(metric(y[idx], proba[idx]))
    return values


def _point(s: _Sample, metric: Metric) -> float:
    if callable(metric):
        return float(metric(s.y, s.proba))
    return float(_named_from_counts(s, metric, np.ones((1, s.n_days)))[0])


def _resampled(s: _Sample, metric: Metric, days: np.ndarray) -> np.ndarray:
    """(n_boot,) metric values, one per row of drawn day indices `days` (n_boot, n_days)."""
    if callable(metric):
        return _callable_over_days(s, metric, days)
    n_boot = len(days)
    flat = (days + s.n_days * np.arange(n_boot)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n_boot * s.n_days).reshape(n_boot, s.n_days).astype(np.float64)
    return _named_from_counts(s, metric, counts)


# -- block bootstrap ------------------------------------------------------------------------------------------------
def default_block_days(n_days: int, horizon: int = 1) -> int:
    """Block length in days: round(n_days ** (1/3)), at least the label horizon and at least 1.

    Examples:
        >>> default_block_days(1000), default_block_days(250, horizon=10)
        (10, 10)
    """
    return max(1, horizon, int(np.rint(np.cbrt(n_days))))


def _block_length(n_days: int, block_days: int | None) -> int:
    if block_days is None:
        return default_block_days(n_days)
    if block_days < 1:
        raise ValueError(f"block_days must be at least 1, got {block_days}; use None for the default.")
    return min(block_days, n_days)


def _draw_days(n_days: int, n_boot: int, block_days: int, seed: int) -> np.ndarray:
    """(n_boot, n_days) day indices of circular block-bootstrap resamples."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}.")
    rng = np.random.default_rng(seed)
    n_blocks = -(-n_days // block_days)
    starts = rng.integers(0, n_days, size=(n_boot, n_blocks))
    days = (starts[:, :, None] + np.arange(block_days)) % n_days  # (n_boot, n_blocks, block_days)
    return days.reshape(n_boot, -1)[:, :n_days]


def _percentile_interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), e.g. 0.05 for a 95% interval; got {alpha}.")
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def block_bootstrap_ci(
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    dates: npt.ArrayLike,
    metric_fn: Metric = "accuracy",
    n_boot: int = 1000,
    block_days: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval (level 1 - alpha) of a metric under the circular block bootstrap over days.

    `metric_fn` is a metric name (fast, see the module docstring) or any `f(y_true, proba) -> float`.
    `block_days=None` uses `default_block_days(n_days)`; pass at least the label horizon when labels overlap.
    Returns (nan, nan) when the metric is undefined on every resample.

    Examples:
        >>> low, high = block_bootstrap_ci(y, proba, dates, "auc_macro_ovr", n_boot=200)  # doctest: +SKIP
    """
    _check_metric(metric_fn)
    s = _prepare(y_true, proba, dates)
    days = _draw_days(s.n_days, n_boot, _block_length(s.n_days, block_days), seed)
    return _percentile_interval(_resampled(s, metric_fn, days), alpha)


def paired_bootstrap(
    y_true: npt.ArrayLike,
    proba_a: npt.ArrayLike,
    proba_b: npt.ArrayLike,
    dates: npt.ArrayLike,
    metric: Metric = "accuracy",
    n_boot: int = 1000,
    block_days: int | None = None,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    higher_is_better: bool | None = None,
) -> dict[str, float | int]:
    """Is model a better than model b? The difference metric(a) - metric(b), both scored on the same resampled days.

    Keys: metric_a, metric_b, diff (on the data as given), ci_low, ci_high (percentile interval of the resampled
    differences), p_value, p_value_two_sided, n_boot, block_days.

    p_value is one-sided for "a better than b": the share of resampled differences on the wrong side of 0 (<= 0,
    or >= 0 for the losses log_loss and brier), with the +1 correction: (1 + count) / (1 + n_boot), so it is
    never 0. p_value_two_sided = min(1, 2 * min(p_le, p_ge)) of the two one-sided values. Bootstrap p-values like
    these are approximate (they invert the percentile interval). Identical predictions give diff 0 and p_value 1.
    `higher_is_better` is inferred for named metrics and defaults to True for callables.
    """
    _check_metric(metric)
    a = _prepare(y_true, proba_a, dates)
    b = replace(a, proba=_check_proba(proba_b, len(a.y)))
    block = _block_length(a.n_days, block_days)
    days = _draw_days(a.n_days, n_boot, block, seed)
    diffs = _resampled(a, metric, days) - _resampled(b, metric, days)
    diffs = diffs[np.isfinite(diffs)]
    p_le = (1 + int((diffs <= 0).sum())) / (1 + len(diffs))
    p_ge = (1 + int((diffs >= 0).sum())) / (1 + len(diffs))
    if higher_is_better is None:
        higher_is_better = callable(metric) or metric not in LOWER_IS_BETTER
    low, high = _percentile_interval(diffs, alpha)
    metric_a, metric_b = _point(a, metric), _point(b, metric)
    return {
        "metric_a": metric_a,
        "metric_b": metric_b,
        "diff": metric_a - metric_b,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_le if higher_is_better else p_ge,
        "p_value_two_sided": min(1.0, 2 * min(p_le, p_ge)),
        "n_boot": n_boot,
        "block_days": block,
    }


def compare_to_best_baseline(
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    baselines: Mapping[str, npt.ArrayLike],
    dates: npt.ArrayLike,
    metric: MetricName = "accuracy",
    n_boot: int = 1000,
    block_days: int | None = None,
    seed: int = 0,
) -> dict[str, float | int | str]:
    """`paired_bootstrap` of the model against the baseline that scores best on `metric` on these same samples.

    Picking the best baseline on the test data itself favours the baselines, so the comparison errs against the
    model. Returns the paired keys plus `baseline` (its name).
    """
    if not baselines:
        raise ValueError("baselines is empty; pass {name: (n, 3) probabilities} for at least one baseline.")
    _check_metric(metric)
    y = _check_labels(y_true)
    day, n_days = _day_index(dates, len(y))
    scores = {name: _point(_Sample(y, _check_proba(p, len(y)), day, n_days), metric) for name, p in baselines.items()}
    pick = min if metric in LOWER_IS_BETTER else max
    best = pick(scores, key=lambda name: scores[name])
    paired = paired_bootstrap(y, proba, baselines[best], dates, metric, n_boot, block_days, seed)
    return {"baseline": best, **paired}


# -- chance level ---------------------------------------------------------------------------------------------------
def _as_predictions(y_pred: npt.ArrayLike, n: int) -> np.ndarray:
    pred = np.asarray(y_pred)
    if pred.ndim == 2:
        return np.asarray(_check_proba(pred, n).argmax(axis=1))
    if pred.shape != (n,):
        raise ValueError(f"y_pred must be (n,) class ids or (n, 3) probabilities for n={n}, got {pred.shape}.")
    return _check_labels(pred)


def permutation_accuracy_null(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    dates: npt.ArrayLike,
    *,
    n_perm: int = 200,
    block_days: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float | int | bool]:
    """The accuracy these predictions would get by chance: a circular-shift (rotation) null.

    Samples are put in date order and the predictions are rotated against the labels by a random offset of at
    least `block_days` days' worth of samples (and at most n minus that), `n_perm` distinct offsets. Each rotation
    keeps the label series and the prediction series intact (class shares, same-day clustering, serial
    dependence) but pairs every prediction with the label of another period, so it has no skill by construction.
    `y_pred` is (n,) class ids or (n, 3) probabilities (argmax is taken).

    Keys: accuracy (observed), null_mean, null_low, null_high (the alpha/2 and 1 - alpha/2 null quantiles),
    p_value (one-sided, observed above chance: (1 + #null >= observed) / (1 + n_perm)), inside (null_low <=
    accuracy <= null_high), expected_chance (sum over classes of label share x prediction share), majority_rate
    (share of the most common label), n_perm (offsets used), min_shift (in samples).
    """
    y = _check_labels(y_true)
    pred = _as_predictions(y_pred, len(y))
    day, n_days = _day_index(dates, len(y))
    order = np.argsort(day, kind="stable")
    y, pred = y[order], pred[order]
    shifts, min_shift = _rotation_offsets(len(y), n_days, _block_length(n_days, block_days), n_perm, seed)
    null = np.array([np.mean(y == np.roll(pred, int(k))) for k in shifts])
    observed = float(np.mean(y == pred))
    low, high = _percentile_interval(null, alpha)
    true_share, pred_share = np.bincount(y, minlength=3) / len(y), np.bincount(pred, minlength=3) / len(y)
    return {
        "accuracy": observed,
        "null_mean": float(null.mean()),
        "null_low": low,
        "null_high": high,
        "p_value": (1 + int((null >= observed).sum())) / (1 + len(null)),
        "inside": bool(low <= observed <= high),
        "expected_chance": float(true_share @ pred_share),
        "majority_rate": float(true_share.max()),
        "n_perm": len(null),
        "min_shift": min_shift,
    }


def _rotation_offsets(n: int, n_days: int, block_days: int, n_perm: int, seed: int) -> tuple[np.ndarray, int]:
    """Distinct rotation offsets in [min_shift, n - min_shift], min_shift ~ block_days days of samples."""
    if n < 2 or n_perm < 1:
        raise ValueError(f"a permutation null needs at least 2 samples and n_perm >= 1 (got n={n}, n_perm={n_perm}).")
    min_shift = max(1, int(np.ceil(block_days * n / n_days)))
    if 2 * min_shift > n:
        min_shift = 1  # too few days to keep a block apart; any non-zero rotation
    candidates = np.arange(min_shift, n - min_shift + 1)
    rng = np.random.default_rng(seed)
    return rng.choice(candidates, size=min(n_perm, len(candidates)), replace=False), min_shift


def chance_accuracy_interval(
    y_true: npt.ArrayLike,
    dates: npt.ArrayLike,
    y_pred: npt.ArrayLike | None = None,
    *,
    n_boot: int = 200,
    block_days: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """The (low, high) interval of accuracy a no-skill classifier gets on these labels.

    With `y_pred`: the rotation null of those very predictions (`permutation_accuracy_null`, n_perm=n_boot),
    which is what a leakage guard wants ("is the model's accuracy inside chance's interval?"). Without: always
    predicting the overall majority class of y_true, with its circular block-bootstrap interval over days.
    """
    if y_pred is not None:
        null = permutation_accuracy_null(
            y_true, y_pred, dates, n_perm=n_boot, block_days=block_days, alpha=alpha, seed=seed
        )
        return float(null["null_low"]), float(null["null_high"])
    y = _check_labels(y_true)
    majority = np.eye(3)[np.bincount(y, minlength=3).argmax()]
    return block_bootstrap_ci(y, np.tile(majority, (len(y), 1)), dates, "accuracy", n_boot, block_days, alpha, seed)


# -- information coefficients ---------------------------------------------------------------------------------------
def direction_score(proba: npt.ArrayLike) -> np.ndarray:
    """P(Up) - P(Down) per sample, the score ranked by the information coefficients."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"proba must have shape (n, 3) (columns P(Down), P(Neutral), P(Up)), got {p.shape}.")
    return p[:, 2] - p[:, 0]


def _grouped_pearson(frame: pd.DataFrame, x: str, y: str) -> pd.Series:
    """Per-date Pearson correlation of columns x and y (two-pass: demean within the date, then correlate)."""
    by_date = frame.groupby("date", sort=True)
    dx = frame[x] - by_date[x].transform("mean")
    dy = frame[y] - by_date[y].transform("mean")
    parts = pd.DataFrame({"date": frame["date"], "xy": dx * dy, "xx": dx * dx, "yy": dy * dy})
    sums = parts.groupby("date", sort=True).sum()
    return sums["xy"] / np.sqrt(sums["xx"] * sums["yy"])


def daily_information_coefficients(
    dates: npt.ArrayLike, scores: npt.ArrayLike, forward_returns: npt.ArrayLike, *, min_tickers: int = 2
) -> pd.DataFrame:
    """Per date: ic (Pearson), rank_ic (Spearman, average ranks for ties) and n_tickers, over the cross-section.

    Samples with a non-finite score or return are dropped; then dates with fewer than `min_tickers` samples or a
    constant score or return are left out. The frame is indexed by date, ascending.
    """
    frame = pd.DataFrame(
        {
            "date": np.asarray(dates),
            "score": np.asarray(scores, dtype=np.float64),
            "ret": np.asarray(forward_returns, dtype=np.float64),
        }
    )
    frame = frame[np.isfinite(frame["score"]) & np.isfinite(frame["ret"])].reset_index(drop=True)
    by_date = frame.groupby("date", sort=True)
    frame["score_rank"] = by_date["score"].rank(method="average")
    frame["ret_rank"] = by_date["ret"].rank(method="average")
    spread = by_date[["score", "ret"]].agg(["min", "max", "size"])
    usable = (
        (spread[("score", "size")] >= min_tickers)
        & (spread[("score", "max")] > spread[("score", "min")])
        & (spread[("ret", "max")] > spread[("ret", "min")])
    )
    daily = pd.DataFrame(
        {
            "ic": _grouped_pearson(frame, "score", "ret"),
            "rank_ic": _grouped_pearson(frame, "score_rank", "ret_rank"),
            "n_tickers": spread[("score", "size")],
        }
    )
    result: pd.DataFrame = daily.loc[usable]
    return result


def _ir_stats(series: pd.Series, prefix: str) -> dict[str, float]:
    mean = float(series.mean()) if len(series) else float("nan")
    std = float(series.std(ddof=1)) if len(series) > 1 else float("nan")
    return {f"{prefix}_mean": mean, f"{prefix}_std": std, f"{prefix}ir": mean / std if std > 0 else float("nan")}


def information_coefficients(
    dates: npt.ArrayLike,
    scores: npt.ArrayLike,
    forward_returns: npt.ArrayLike,
    *,
    daily: bool = False,
    min_tickers: int = 2,
) -> dict[str, Any]:
    """Qlib's IC, ICIR, Rank IC and Rank ICIR of `scores` against `forward_returns` (see the module docstring).

    Keys: ic_mean, ic_std, icir, rank_ic_mean, rank_ic_std, rank_icir (floats, NaN when undefined) and n_days
    (int, days that had a usable cross-section). With `daily=True` also daily_ic and daily_rank_ic, pandas Series
    indexed by date (not JSON-serialisable; leave them out of stored summaries).

    Examples:
        >>> ic = information_coefficients(ws.dates, direction_score(proba), ws.forward_returns)  # doctest: +SKIP
    """
    frame = daily_information_coefficients(dates, scores, forward_returns, min_tickers=min_tickers)
    out: dict[str, Any] = {**_ir_stats(frame["ic"], "ic"), **_ir_stats(frame["rank_ic"], "rank_ic")}
    out["n_days"] = len(frame)
    if daily:
        out["daily_ic"] = frame["ic"]
        out["daily_rank_ic"] = frame["rank_ic"]
    return out


def information_coefficient_intervals(
    dates: npt.ArrayLike,
    scores: npt.ArrayLike,
    forward_returns: npt.ArrayLike,
    *,
    n_boot: int = 1000,
    block_days: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    min_tickers: int = 2,
) -> dict[str, Any]:
    """`information_coefficients` plus percentile intervals of the mean IC and the mean Rank IC.

    The daily IC series is resampled with the module's circular block bootstrap over days (blocks of
    `default_block_days` when `block_days` is None): serial dependence between days is kept within a block.
    Extra keys: ic_mean_ci, rank_ic_mean_ci ([low, high], NaN when no day is usable), n_boot, block_days.

    Examples:
        >>> ic = information_coefficient_intervals(ws.dates, score, ws.forward_returns, n_boot=1000)  # doctest: +SKIP
        >>> ic["ic_mean"], ic["ic_mean_ci"]  # doctest: +SKIP
    """
    frame = daily_information_coefficients(dates, scores, forward_returns, min_tickers=min_tickers)
    out: dict[str, Any] = {**_ir_stats(frame["ic"], "ic"), **_ir_stats(frame["rank_ic"], "rank_ic")}
    out["n_days"] = len(frame)
    block = _block_length(len(frame), block_days) if len(frame) else 1
    for key in ("ic", "rank_ic"):
        interval = (float("nan"), float("nan"))
        if len(frame):
            daily = frame[key].to_numpy(dtype=np.float64)
            interval = _percentile_interval(daily[_draw_days(len(daily), n_boot, block, seed)].mean(axis=1), alpha)
        out[f"{key}_mean_ci"] = list(interval)
    out.update({"n_boot": n_boot, "block_days": block})
    return out


# -- one summary per model ------------------------------------------------------------------------------------------
def summarise_model(
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    dates: npt.ArrayLike,
    tickers: npt.ArrayLike | None = None,
    forward_returns: npt.ArrayLike | None = None,
    *,
    n_boot: int = 1000,
    n_boot_auc: int = 200,
    block_days: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything stored for one model (or baseline) on one fold or on all folds pooled; JSON-serialisable.

    Keys: metrics (`classification_metrics`), accuracy_ci and auc_ci ([low, high], n_boot and n_boot_auc
    resamples), ic (`information_coefficients` without the daily series when forward_returns are given and the
    universe has at least two tickers, else None), bootstrap (n_boot, n_boot_auc, block_days, alpha, seed, n_days).
    NaN marks undefined values (e.g. auc_ci when y_true holds a single class).
    """
    s = _prepare(y_true, proba, dates)
    metrics = _classification_metrics(s.y, s.proba)
    block = _block_length(s.n_days, block_days)
    accuracy_ci = _percentile_interval(_resampled(s, "accuracy", _draw_days(s.n_days, n_boot, block, seed)), alpha)
    auc_ci = (float("nan"), float("nan"))
    if np.isfinite(metrics["auc_macro_ovr"]):
        auc_days = _draw_days(s.n_days, n_boot_auc, block, seed)
        auc_ci = _percentile_interval(_resampled(s, "auc_macro_ovr", auc_days), alpha)
    ic = None
    if forward_returns is not None and (tickers is None or len(np.unique(np.asarray(tickers))) >= 2):
        ic = information_coefficients(dates, direction_score(s.proba), forward_returns)
    bootstrap = {"n_boot": n_boot, "n_boot_auc": n_boot_auc, "block_days": block, "alpha": alpha, "seed": seed}
    return {
        "metrics": metrics,
        "accuracy_ci": list(accuracy_ci),
        "auc_ci": list(auc_ci),
        "ic": ic,
        "bootstrap": {**bootstrap, "n_days": s.n_days},
    }


PROBA_COLUMNS: tuple[str, str, str] = ("p_down", "p_neutral", "p_up")


def summarise_predictions(
    frame: pd.DataFrame, *, n_boot: int = 1000, n_boot_auc: int = 200, block_days: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """`summarise_model` of a predictions frame, pooled and per fold: {"pooled": ..., "folds": {fold: ...}}.

    Needs columns date, label, p_down, p_neutral, p_up; uses ticker and forward_return for the ICs when present
    and groups by fold when a `fold` column exists ("folds" is {} otherwise; fold keys are strings for JSON).
    """
    missing = sorted({"date", "label", *PROBA_COLUMNS} - set(frame.columns))
    if missing:
        raise ValueError(f"predictions frame lacks columns {missing}; it needs date, label, p_down, p_neutral, p_up.")

    def one(part: pd.DataFrame) -> dict[str, Any]:
        return summarise_model(
            part["label"].to_numpy(),
            part[list(PROBA_COLUMNS)].to_numpy(),
            part["date"].to_numpy(),
            part["ticker"].to_numpy() if "ticker" in part else None,
            part["forward_return"].to_numpy() if "forward_return" in part else None,
            n_boot=n_boot,
            n_boot_auc=n_boot_auc,
            block_days=block_days,
            seed=seed,
        )

    folds = {str(k): one(part) for k, part in frame.groupby("fold", sort=True)} if "fold" in frame else {}
    return {"pooled": one(frame), "folds": folds}
