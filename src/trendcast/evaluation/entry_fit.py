"""Fit the train_quantile entry rule's thresholds on one walk-forward fold's training samples, after the model.

The rule (trendcast.backtest.entry) goes long when s = P(Up) - P(Down) is above the `entry_quantile` quantile of s
and short below the `1 - entry_quantile` quantile. Those quantiles are taken here, from the fitted model's
predictions of the fold's own training samples dated in the most recent `TAIL_FRACTION` of its training dates:

- only training samples: nothing dated after the fold's training cut is used (a guard raises LeakageError), so a
  threshold never knows the period it is traded on;
- the recent tail: the score distribution the test fold follows is closest to the latest training days, and for
  the Bi-LSTM that tail is (mostly) its early-stopping validation tail, which it did not fit its weights on. The
  other models have fitted every one of those samples: their thresholds come from in-sample predictions, which
  tend to be more confident than out-of-sample ones (docs/backtest.md states the caveat);
- at most `MAX_SAMPLES` of them, a random subsample drawn with the experiment's seed, to bound the cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendcast.backtest.entry import entry_score, quantile_thresholds
from trendcast.config import ExperimentConfig
from trendcast.errors import LeakageError
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel

TAIL_FRACTION = 0.2  # the most recent share of the fold's training dates
MAX_SAMPLES = 20_000  # predicted at most, drawn at random with the config seed


@dataclass(frozen=True)
class EntryThresholds:
    """One fold's fitted entry thresholds and what they were fitted on."""

    long: float  # long when P(Up) - P(Down) > this
    short: float  # short (long_short) when P(Up) - P(Down) < this
    quantile: float  # BacktestConfig.entry_quantile
    n_samples: int  # training predictions the quantiles were taken over
    first_date: pd.Timestamp  # of those samples
    last_date: pd.Timestamp  # never after the fold's train_end


def recent_training_sample(train: WindowSet, seed: int, max_samples: int = MAX_SAMPLES) -> np.ndarray:
    """Indices (sorted) of `train`'s samples dated in its most recent TAIL_FRACTION of dates, at most
    `max_samples` of them, drawn at random with `seed`."""
    dates = np.unique(train.dates)
    n_tail = max(1, int(np.ceil(TAIL_FRACTION * len(dates))))
    index = np.flatnonzero(train.dates >= dates[-n_tail])
    if len(index) > max_samples:
        index = np.sort(np.random.default_rng(seed).choice(index, size=max_samples, replace=False))
    return index


def fit_entry_thresholds(
    model: DirectionModel, train: WindowSet, train_end: pd.Timestamp, config: ExperimentConfig
) -> EntryThresholds:
    """The fold's entry thresholds from `model`'s predictions of its recent training samples (see the module).

    `train` must hold the fold's training samples only: LeakageError if any is dated after `train_end`.
    """
    if len(train) and train.dates.max() > np.datetime64(train_end):
        raise LeakageError(
            f"entry thresholds were asked for on samples dated up to {pd.Timestamp(train.dates.max()).date()}, "
            f"after the fold's training cut {train_end.date()}: fit them on the fold's training samples only."
        )
    sample = train.take(recent_training_sample(train, config.seed))
    proba = model.predict_proba(sample)
    quantile = config.backtest.entry_quantile
    long, short = quantile_thresholds(entry_score(proba[:, 0], proba[:, 2]), quantile)
    return EntryThresholds(
        long, short, quantile, len(sample), pd.Timestamp(sample.dates.min()), pd.Timestamp(sample.dates.max())
    )
