"""Entry rules: when a prediction opens a position, and the per-fold thresholds the default rule carries.

A 3-class model rarely puts P(Up) above a fixed 0.4, so the old rule alone left strategies in the market a few
percent of days. Two rules (BacktestConfig.entry_rule):

    fixed            long when P(Up) > entry_threshold and P(Up) > P(Down); short (long_short) when P(Down) does so
    train_quantile   with the score s = P(Up) - P(Down): long when s > the fold's long threshold, short (long_short)
                     when s < its short threshold; the thresholds are the entry_quantile and 1 - entry_quantile
                     quantiles of s over the fold's recent *training* predictions (evaluation/entry_fit.py)

The fitted thresholds travel with the predictions as columns `entry_long_threshold`, `entry_short_threshold` (and
`entry_quantile`), one value per walk-forward fold, so a backtest never fits anything on the period it trades.
`EntryRule` is the rule a backtest actually used, in the words every report prints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from trendcast.config import BacktestConfig
from trendcast.errors import DataError

FloatArray = npt.NDArray[np.float64]

LONG_COLUMN = "entry_long_threshold"
SHORT_COLUMN = "entry_short_threshold"
QUANTILE_COLUMN = "entry_quantile"
ENTRY_COLUMNS: tuple[str, ...] = (LONG_COLUMN, SHORT_COLUMN, QUANTILE_COLUMN)

logger = logging.getLogger("trendcast.backtest")


def entry_score(p_down: FloatArray, p_up: FloatArray) -> FloatArray:
    """The score the train_quantile rule thresholds: P(Up) - P(Down), in [-1, 1]."""
    return np.asarray(p_up, dtype=np.float64) - np.asarray(p_down, dtype=np.float64)


def quantile_thresholds(scores: FloatArray, quantile: float) -> tuple[float, float]:
    """(long, short) thresholds: the `quantile` and `1 - quantile` quantiles of `scores` (linear interpolation)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        raise DataError("entry thresholds need at least one finite training score; the training fold is empty?")
    long, short = np.quantile(values, [quantile, 1.0 - quantile])
    return float(long), float(short)


@dataclass(frozen=True)
class FoldThresholds:
    """Per-row entry thresholds of a predictions frame (each row carries its fold's values)."""

    long: FloatArray  # long when the score is above
    short: FloatArray  # short (long_short only) when the score is below


@dataclass(frozen=True)
class EntryRule:
    """The entry rule a backtest used, with the fold thresholds' range, as the reports state it."""

    rule: str  # "train_quantile" or "fixed"
    long_short: bool
    threshold: float  # the fixed rule's probability threshold
    quantiles: tuple[float, ...] = ()  # train_quantile: the quantile(s) the thresholds were fitted at
    long_range: tuple[float, float] | None = None  # min, max over the folds
    short_range: tuple[float, float] | None = None
    fallback: str = ""  # why the fixed rule stood in for train_quantile ("" when it did not)

    def describe(self) -> str:
        """One line, e.g. "long when P(Up)-P(Down) > its training-fold 50% quantile (fold thresholds 0.012..0.034)"."""
        if self.rule == "train_quantile":
            return self._describe_quantile()
        text = f"long when P(Up) > {self.threshold:.2f} and P(Up) > P(Down)"
        if self.long_short:
            text += f"; short when P(Down) > {self.threshold:.2f} and P(Down) > P(Up)"
        return text + (" (train_quantile fell back: the predictions carry no fold thresholds)" if self.fallback else "")

    def _describe_quantile(self) -> str:
        long_q = "/".join(f"{q:.0%}" for q in self.quantiles) or "entry"
        text = f"long when P(Up)-P(Down) > its training-fold {long_q} quantile{_range(self.long_range)}"
        if self.long_short:
            short_q = "/".join(f"{1 - q:.0%}" for q in self.quantiles) or "entry"
            text += f"; short when P(Up)-P(Down) < its training-fold {short_q} quantile{_range(self.short_range)}"
        return text

    def as_params(self) -> dict[str, str]:
        """For mlflow.log_params: the rule used and its description."""
        return {"entry_rule_used": self.rule, "entry_rule_description": self.describe()}


def _range(bounds: tuple[float, float] | None) -> str:
    if bounds is None:
        return ""
    low, high = bounds
    return f" (fold threshold {low:.3f})" if low == high else f" (fold thresholds {low:.3f}..{high:.3f})"


def resolve_entry(predictions: pd.DataFrame, config: BacktestConfig) -> tuple[EntryRule, FoldThresholds | None]:
    """The rule to apply to `predictions` under `config`, and its per-row thresholds (None for the fixed rule).

    train_quantile on a frame without the threshold columns (a model bundle saved before they existed, a
    hand-made predictions file) falls back to the fixed rule with a logged warning rather than raising: the fixed
    rule fits nothing, so it is still honest, and refusing would break the backtest of every such frame (the
    dashboard's included) over a choice the result states anyway (`EntryRule.fallback`, the report's notes).
    A frame that has the columns but leaves some rows without thresholds is refused (DataError): that is a
    mix-up, not an old file.
    """
    base = EntryRule("fixed", config.long_short, config.entry_threshold)
    if config.entry_rule == "fixed":
        return base, None
    if LONG_COLUMN not in predictions or SHORT_COLUMN not in predictions:
        reason = (
            "the predictions carry no training-fold thresholds (entry_long_threshold, entry_short_threshold); "
            "retrain with this trendcast to fit them, or set backtest.entry_rule: fixed"
        )
        logger.warning("entry_rule train_quantile falls back to fixed: %s", reason)
        return EntryRule("fixed", config.long_short, config.entry_threshold, fallback=reason), None
    thresholds = _thresholds(predictions)
    return EntryRule(
        "train_quantile",
        config.long_short,
        config.entry_threshold,
        quantiles=_quantiles(predictions),
        long_range=(float(thresholds.long.min()), float(thresholds.long.max())),
        short_range=(float(thresholds.short.min()), float(thresholds.short.max())),
    ), thresholds


def _thresholds(predictions: pd.DataFrame) -> FoldThresholds:
    long = pd.to_numeric(predictions[LONG_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
    short = pd.to_numeric(predictions[SHORT_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
    missing = ~(np.isfinite(long) & np.isfinite(short))
    if missing.any():
        raise DataError(
            f"{int(missing.sum())} of {len(missing)} predictions have no entry thresholds "
            f"({LONG_COLUMN}, {SHORT_COLUMN}); backtest predictions of one training run, or set "
            "backtest.entry_rule: fixed."
        )
    return FoldThresholds(long, short)


def _quantiles(predictions: pd.DataFrame) -> tuple[float, ...]:
    if QUANTILE_COLUMN not in predictions:
        return ()
    values = pd.to_numeric(predictions[QUANTILE_COLUMN], errors="coerce").dropna().unique()
    return tuple(sorted(float(v) for v in values))


def quantile_note(rule: EntryRule, config: BacktestConfig) -> str:
    """A note when the predictions' thresholds were fitted at another quantile than `config.entry_quantile`."""
    if rule.rule != "train_quantile" or not rule.quantiles or rule.quantiles == (config.entry_quantile,):
        return ""
    fitted = ", ".join(f"{q:g}" for q in rule.quantiles)
    return (
        f"The entry thresholds were fitted at entry_quantile {fitted} when training; backtest.entry_quantile="
        f"{config.entry_quantile:g} takes effect only when the model is retrained."
    )
