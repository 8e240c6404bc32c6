"""The `Explanation` of one prediction, and the plain-English sentence written from its numbers.

`explain_window(model, window_unscaled, dates, ticker)` scales the window with the model's own scaler, predicts (with
attention for the Bi-LSTM, from the same forward pass), attributes the predicted class with the model's method
(`shap_values.attribute`) and assembles:

- the predicted class and the three probabilities;
- the top-k features by |contribution| (summed over the window's days), each with its raw indicator value on the
  signal date, as the sentence shows it;
- every feature's contribution, the base value and output they add up to, and the measured additivity error;
- attention per date and the share of the last few days (sequence models only);
- the sentence, e.g. "Up (0.62): RSI(14) at 71 (+0.21) and 20-day return at +6.0% (+0.08) pushed towards Up;
  ADX(14) at 31 (-0.05) pushed against it; 40 smaller factors net +0.03 towards Up; the last 5 days carried 48% of
  the attention." It names the strongest factors on each side and the net of the rest, so the contributions it shows
  add up to the total; every number in it is a rounded field of the object (a unit test parses them back).

With cross_sectional (binary) labels, Up means "forward return above the day's cross-sectional median" and Down "at
or below it", so the sentence says so instead of implying an absolute move: "Above the cross-sectional median
(0.62): RSI(14) at 71 (+0.21) pushed towards above the median; ...". `label_mode` records which one it is.

`method="lime"` explains with LIME (`lime_values`) instead of the model's own method, into the same object.

Raw values are shown in their natural unit: log returns as the simple % change they equal (exp(r) - 1), ratios to a
price as %, oscillators as their level. `to_dict()` is the JSON form the API returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from trendcast.errors import DataError, ModelError
from trendcast.explain.attention_weights import AttentionStep, attention_steps, predict_with_attention, recent_share
from trendcast.explain.shap_values import AttributionBatch, IGConfig, attribute

if TYPE_CHECKING:
    from trendcast.explain.lime_values import LimeConfig
from trendcast.features.indicators import BY_NAME
from trendcast.features.labels import LabelMode
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel

SENTENCE_SIDE = 2  # strongest factors named on each side (towards and against the class); the rest as one net
METHODS = ("auto", "lime")  # auto: the model's own method (IG, TreeSHAP, linear, ...); lime: LIME for any model
Method = Literal["auto", "lime"]
RECENT_DAYS = 5  # "the last 5 days carried x% of the attention"
# cross_sectional labels: how the sentence names a class (headline, and the side factors push towards)
_RELATIVE_WORDS = {
    "Up": ("Above the cross-sectional median", "above the median"),
    "Down": ("Below the cross-sectional median", "below the median"),
}

# How a raw indicator value is shown: (transform, decimals, signed, unit). Anything unlisted: 2 decimals, no unit.
_LOG_RETURNS = ("ret_1", "ret_5", "ret_10", "ret_20", "gap")
_SIGNED_FRACTIONS = (
    "sma_ratio_5",
    "sma_ratio_10",
    "sma_ratio_20",
    "sma_ratio_50",
    "ema_ratio_12",
    "ema_ratio_26",
    "sma_cross_10_50",
    "macd_line",
    "macd_signal",
    "macd_hist",
    "linreg_slope_14",
    "mom_10",
)
_FRACTIONS = ("atr_ratio_14", "bb_width_20", "volatility_10", "volatility_20", "volatility_60")
_SIGNED_PERCENTS = ("roc_10", "ppo", "trix_15")
_LEVELS = (
    "rsi_14",
    "rsi_7",
    "stoch_k",
    "stoch_d",
    "willr_14",
    "cci_20",
    "mfi_14",
    "ultosc",
    "cmo_14",
    "adx_14",
    "plus_di_14",
    "minus_di_14",
    "aroon_down_25",
    "aroon_up_25",
    "aroon_osc_25",
    "natr_14",
)


@dataclass(frozen=True)
class FeatureContribution:
    feature: str  # catalog name, e.g. "rsi_14"
    label: str  # human name, e.g. "RSI(14)"
    group: str  # trend, momentum, volatility, volume, returns
    contribution: float  # signed, towards the predicted class, in the explanation's output_space
    value: float  # the raw (unscaled) indicator value on the signal date
    value_text: str  # how the sentence shows `value`, e.g. "+6.0%"


@dataclass(frozen=True, eq=False)
class Explanation:
    ticker: str | None
    as_of: pd.Timestamp | None  # the signal date (last step of the window)
    model: str
    predicted_class: int
    predicted_label: str
    probabilities: dict[str, float]  # class name -> probability
    top_features: tuple[FeatureContribution, ...]
    contributions: dict[str, float]  # every feature -> signed contribution (summed over the window)
    base_value: float  # expected output over the baselines
    output_value: float  # the explained output: base_value + sum(contributions) up to additivity_error
    additivity_error: float
    output_space: str  # "probability" (P(predicted class)) or "log_odds" (the class's raw score)
    method: str
    method_details: dict[str, Any]
    attention: tuple[AttentionStep, ...] | None
    attention_recent_days: int | None
    attention_recent_share: float | None
    sentence: str
    feature_names: tuple[str, ...] = field(default=(), repr=False)
    step_contributions: np.ndarray | None = field(default=None, repr=False)  # (window, n_features)
    label_mode: LabelMode = "absolute"  # cross_sectional: Up/Down are above / at or below the day's median

    def to_dict(self, *, include_steps: bool = False) -> dict[str, Any]:
        """Plain JSON types only. `include_steps` adds the (window x feature) attribution matrix."""
        out: dict[str, Any] = {
            "ticker": self.ticker,
            "as_of": _iso(self.as_of),
            "model": self.model,
            "predicted_class": self.predicted_class,
            "predicted_label": self.predicted_label,
            "probabilities": dict(self.probabilities),
            "top_features": [vars(f).copy() for f in self.top_features],
            "contributions": dict(self.contributions),
            "base_value": self.base_value,
            "output_value": self.output_value,
            "additivity_error": self.additivity_error,
            "output_space": self.output_space,
            "method": self.method,
            "method_details": dict(self.method_details),
            "attention": None
            if self.attention is None
            else [{"step": a.step, "date": _iso(a.date), "weight": a.weight} for a in self.attention],
            "attention_recent_days": self.attention_recent_days,
            "attention_recent_share": self.attention_recent_share,
            "sentence": self.sentence,
            "label_mode": self.label_mode,
        }
        if include_steps and self.step_contributions is not None:
            out["step_contributions"] = self.step_contributions.tolist()
            out["feature_names"] = list(self.feature_names)
        return out


def _iso(day: pd.Timestamp | None) -> str | None:
    return None if day is None else day.date().isoformat()


# -- showing values --------------------------------------------------------------------------------------------------
def display_value(feature: str, value: float) -> tuple[float, str]:
    """(the number shown, its text) for a raw indicator value: e.g. ret_20 = 0.0583 -> (6.0, "+6.0%")."""
    if not math.isfinite(value):
        return value, "n/a"
    try:
        return _display(feature, value)
    except OverflowError:  # e.g. a log return of 1e6 (a window /predict accepts): no percentage to show
        return value, f"{value:.3g}"


def _display(feature: str, value: float) -> tuple[float, str]:
    if feature in _LEVELS:
        return _shown(value, 0, signed=False, unit="")
    if feature in _LOG_RETURNS:
        return _percent(math.expm1(value), signed=True)
    if feature in _SIGNED_FRACTIONS:
        return _percent(value, signed=True)
    if feature in _FRACTIONS or feature == "hl_range":
        return _percent(math.expm1(value) if feature == "hl_range" else value, signed=False)
    if feature in _SIGNED_PERCENTS:
        return _shown(value, 2 if abs(value) < 1 else 1, signed=True, unit="%")
    return _shown(value, 2, signed=False, unit="")


def _percent(fraction: float, *, signed: bool) -> tuple[float, str]:
    pct = 100.0 * fraction
    return _shown(pct, 2 if abs(pct) < 1 else 1, signed=signed, unit="%")


def _shown(number: float, decimals: int, *, signed: bool, unit: str) -> tuple[float, str]:
    rounded = round(number, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    text = f"{rounded:+.{decimals}f}" if signed and rounded != 0 else f"{rounded:.{decimals}f}"
    return rounded, text + unit


# -- the sentence ----------------------------------------------------------------------------------------------------
def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def contribution_decimals(values: Sequence[float]) -> int:
    """Decimals that show the largest of `values` with two significant digits (2 to 6)."""
    largest = max((abs(v) for v in values), default=0.0)
    if largest == 0:
        return 2
    return min(6, max(2, 1 - math.floor(math.log10(largest))))


def _factor(f: FeatureContribution, decimals: int) -> str:
    return f"{f.label} at {f.value_text} ({f.contribution:+.{decimals}f})"


def sentence_words(label: str, label_mode: LabelMode = "absolute") -> tuple[str, str]:
    """(headline, target) naming class `label` in the sentence: ("Up", "Up") for absolute labels; for
    cross_sectional ones ("Above the cross-sectional median", "above the median") and the same for Down / below."""
    if label_mode == "cross_sectional" and label in _RELATIVE_WORDS:
        return _RELATIVE_WORDS[label]
    return label, label


def build_sentence(
    label: str,
    probability: float,
    features: Sequence[FeatureContribution],
    recent_days: int | None,
    recent: float | None,
    *,
    label_mode: LabelMode = "absolute",
) -> str:
    """ "Up (0.62): A at x (+0.21) and B at y (+0.08) pushed towards Up; C at z (-0.05) pushed against it; 40 smaller
    factors net +0.03 towards Up; the last 5 days carried 48% of the attention." Built only from the arguments.

    `features` are every feature's contribution (any order). Contributions are shown with the decimals that give the
    strongest one two significant digits. Named: the up to SENTENCE_SIDE strongest by |contribution| on each side,
    largest first, each with its contribution (never one that rounds to zero); the other non-zero ones as one net
    sum, shown when it does not round to zero. So what is named plus the rest's net equals the total contribution to
    display precision. With label_mode="cross_sectional" the class is named relative to the day's median
    (`sentence_words`)."""
    headline, target = sentence_words(label, label_mode)
    ranked = sorted((f for f in features if f.contribution != 0), key=lambda f: -abs(f.contribution))
    decimals = contribution_decimals([f.contribution for f in ranked[:1]])
    shown = [f for f in ranked if round(f.contribution, decimals) != 0]  # sub-precision ones only join the rest
    towards = [f for f in shown if f.contribution > 0][:SENTENCE_SIDE]
    against = [f for f in shown if f.contribution < 0][:SENTENCE_SIDE]
    named = {f.feature for f in (*towards, *against)}
    rest = [f.contribution for f in ranked if f.feature not in named]
    net = math.fsum(rest)
    clauses = []
    if towards:
        clauses.append(f"{_join([_factor(f, decimals) for f in towards])} pushed towards {target}")
    if against:
        clauses.append(f"{_join([_factor(f, decimals) for f in against])} pushed against it")
    if rest and round(net, decimals) != 0:
        side = f"towards {target}" if net > 0 else "against it"
        clauses.append(f"{len(rest)} smaller factor{'s' if len(rest) > 1 else ''} net {net:+.{decimals}f} {side}")
    if not clauses:
        clauses.append("no feature moved it away from the base rate")
    if recent_days is not None and recent is not None:
        clauses.append(f"the last {recent_days} days carried {round(100 * recent)}% of the attention")
    return f"{headline} ({probability:.2f}): " + "; ".join(clauses) + "."


# -- assembling ------------------------------------------------------------------------------------------------------
def scale_window(model: DirectionModel, window_unscaled: np.ndarray) -> np.ndarray:
    """(1, window, n_features) scaled with the model's scaler; refuses wrong shapes and missing values."""
    expected = (model.window, len(model.feature_names))
    values = np.asarray(window_unscaled, dtype=np.float64)
    if values.shape != expected:
        raise DataError(
            f"{model.name} explains windows of shape {expected} (days x features, oldest day first), got {values.shape}"
        )
    bad = ~np.isfinite(values).all(axis=0)
    if bad.any():
        names = ", ".join(np.asarray(model.feature_names)[bad][:5])
        raise DataError(f"the window has missing values in {names}; the ticker needs more history before this date")
    return model.scale_rows(values)[None, :, :]


def _feature(name: str, contribution: float, value: float) -> FeatureContribution:
    indicator = BY_NAME.get(name)
    return FeatureContribution(
        feature=name,
        label=indicator.label if indicator else name,
        group=indicator.group if indicator else "other",
        contribution=contribution,
        value=value,
        value_text=display_value(name, value)[1],
    )


def top_features(
    names: tuple[str, ...], contributions: np.ndarray, values: np.ndarray, top_k: int
) -> tuple[FeatureContribution, ...]:
    """The `top_k` features by |contribution|, largest first."""
    order = np.argsort(-np.abs(contributions), kind="stable")[:top_k]
    return tuple(_feature(names[j], float(contributions[j]), float(values[j])) for j in order)


def assemble(
    model: DirectionModel,
    window_unscaled: np.ndarray,
    proba: np.ndarray,
    attention: np.ndarray | None,
    batch: AttributionBatch,
    *,
    dates: list[pd.Timestamp] | None,
    ticker: str | None,
    top_k: int,
) -> Explanation:
    """The Explanation of row 0 of `batch`, for the window it was computed on."""
    target = int(batch.targets[0])
    label = model.class_names[target]
    names = model.feature_names
    every = top_features(names, batch.features[0], np.asarray(window_unscaled, dtype=np.float64)[-1], len(names))
    top = every[:top_k]
    days = min(RECENT_DAYS, model.window) if attention is not None else None
    recent = recent_share(attention, days) if attention is not None and days is not None else None
    mode = model.config.labels.mode
    return Explanation(
        ticker=ticker,
        as_of=pd.Timestamp(dates[-1]) if dates else None,
        model=model.name,
        predicted_class=target,
        predicted_label=label,
        probabilities={n: float(p) for n, p in zip(model.class_names, proba, strict=True)},
        top_features=top,
        contributions={n: float(c) for n, c in zip(names, batch.features[0], strict=True)},
        base_value=float(batch.base_values[0]),
        output_value=float(batch.output_values[0]),
        additivity_error=float(batch.additivity_errors[0]),
        output_space=batch.output_space,
        method=batch.method,
        method_details={**batch.details, "relative_error": float(batch.relative_errors[0])},
        attention=None if attention is None else attention_steps(attention, dates),
        attention_recent_days=days,
        attention_recent_share=recent,
        sentence=build_sentence(label, float(proba[target]), every, days, recent, label_mode=mode),
        feature_names=names,
        step_contributions=None if batch.steps is None else batch.steps[0],
        label_mode=mode,
    )


def explain_window(
    model: DirectionModel,
    window_unscaled: np.ndarray,
    dates: list[pd.Timestamp] | None = None,
    ticker: str | None = None,
    top_k: int = 5,
    background: np.ndarray | None = None,
    *,
    config: IGConfig | None = None,
    method: Method = "auto",
    lime: LimeConfig | None = None,
) -> Explanation:
    """Explain the model's prediction for one raw (unscaled) window (window, n_features), oldest day first.

    `dates` (one per step) label the attention; `background` is the model's cached scaled background
    (`load_background`), `config` the Integrated Gradients settings for the Bi-LSTM. `method="lime"` attributes
    with LIME (`lime_values.lime_attribute`, budget `lime`; it needs the background) instead of the model's own
    method.

    Examples:
        explanation = explain_window(model, window, dates, "AAPL", background=load_background(model_dir))
        explanation.sentence  # "Up (0.62): RSI(14) at 71 (+0.21) pushed towards Up; ..."
    """
    if top_k < 1:
        raise ModelError(f"top_k must be at least 1, got {top_k}")
    if method not in METHODS:
        raise ModelError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if dates is not None and len(dates) != model.window:
        raise DataError(f"{len(dates)} dates for a window of {model.window} days; pass one date per row")
    x = scale_window(model, window_unscaled)
    proba, attention = predict_with_attention(model, x)
    target = np.array([int(proba[0].argmax())])
    if method == "lime":
        from trendcast.explain.lime_values import lime_attribute

        batch = lime_attribute(model, x, int(target[0]), background, lime)
    else:
        batch = attribute(model, x, targets=target, background=background, config=config)
    return assemble(
        model,
        window_unscaled,
        proba[0],
        None if attention is None else attention[0],
        batch,
        dates=dates,
        ticker=ticker,
        top_k=top_k,
    )


def window_of(data: WindowSet, i: int) -> tuple[np.ndarray, list[pd.Timestamp]]:
    """The raw rows (window, n_features) and their dates for sample `i` of an unscaled WindowSet."""
    end = int(data.end_rows[i])
    rows = slice(end - data.window + 1, end + 1)
    return data.rows[rows], list(pd.DatetimeIndex(data.row_dates[rows]))


def explain_sample(
    model: DirectionModel,
    data: WindowSet,
    i: int,
    *,
    top_k: int = 5,
    background: np.ndarray | None = None,
    config: IGConfig | None = None,
    method: Method = "auto",
    lime: LimeConfig | None = None,
) -> Explanation:
    """`explain_window` for sample `i` of an unscaled WindowSet (ticker and dates taken from it)."""
    if data.feature_names != model.feature_names or data.window != model.window:
        raise ModelError(f"{model.name}: the samples have other features or window than the model was trained on")
    window, dates = window_of(data, i)
    return explain_window(
        model, window, dates, str(data.tickers[i]), top_k, background, config=config, method=method, lime=lime
    )
