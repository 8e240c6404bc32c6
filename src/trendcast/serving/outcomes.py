"""Realised hit rate: remember each ticker prediction, and judge it once its label is in the bar store.

Every ticker prediction a worker makes (ticker, window end t, model version, predicted class) goes into a bounded
in-memory table, `PendingOutcomes`. Every `drift_refresh_seconds`, `serving.background.OutcomeResolver` loads the
bars of the waiting tickers and cuts the label at t with `features.labels.direction_labels` and the label settings
of the model that predicted (its horizon and neutral band, as in training), so the label is the one the model was
trained to predict. A prediction whose label is known (the store holds the close at t + horizon) is counted in
`trendcast_prediction_outcomes_total{ticker, outcome="hit"|"miss"}` and forgotten; the others keep waiting. The hit
rate is a PromQL ratio of rates:

    sum by (ticker) (rate(trendcast_prediction_outcomes_total{outcome="hit"}[1d]))
      / sum by (ticker) (rate(trendcast_prediction_outcomes_total[1d]))

Limits, on purpose (nothing to run or migrate):

- per worker and in memory: a restart or a worker replaced by Gunicorn forgets its waiting predictions;
- each worker judges only its own predictions; Prometheus sums the counters over the workers (and in multiprocess
  mode prometheus-client already does). Answers from the prediction cache are not recorded, and a worker judges
  the same (ticker, t, version) once (it remembers the last `max_pending` it judged), so a repeated question counts
  once unless two workers computed it (no shared cache, or the cache entry expired in between);
- at most `max_pending` predictions wait (default 10,000); past that, the oldest are dropped unjudged;
- the answer must reach the store: with no ingest running, nothing is ever judged;
- predictions of a model with cross_sectional labels are not recorded: their label compares the ticker with the
  day's median over the training universe, which the bars of the waiting tickers alone cannot give.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from trendcast.config import LabelConfig

if TYPE_CHECKING:
    from trendcast.models.base import DirectionModel

OUTCOMES = ("hit", "miss")
DEFAULT_MAX_PENDING = 10_000


@dataclass(frozen=True)
class Prediction:
    """One ticker prediction waiting for its label: the window ended at `window_end` (t), the label is at t."""

    ticker: str
    window_end: date
    version: str
    predicted: int  # class index: 0 Down, 1 Neutral, 2 Up


@dataclass(frozen=True)
class Outcome:
    prediction: Prediction
    actual: int  # the label at t

    @property
    def name(self) -> str:
        """ "hit" when the predicted class is the realised label, else "miss"."""
        return OUTCOMES[0] if self.prediction.predicted == self.actual else OUTCOMES[1]


def label_config(model: DirectionModel) -> LabelConfig:
    """The label the model was trained on: its experiment's label settings with the horizon it was fitted with."""
    return model.config.labels.model_copy(update={"horizon": model.horizon})


class PendingOutcomes:
    """Predictions waiting for their label, oldest first, at most `max_pending` of them.

    Not thread-safe: the service records and settles on the event loop thread; only `realised` runs elsewhere.

    Examples:
        >>> pending = PendingOutcomes(max_pending=2)
        >>> len(pending)
        0
    """

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}; e.g. {DEFAULT_MAX_PENDING}.")
        self.max_pending = max_pending
        self._pending: OrderedDict[tuple[str, date, str], int] = OrderedDict()
        self._judged: OrderedDict[tuple[str, date, str], None] = OrderedDict()  # the last max_pending judged keys
        self._labels: dict[str, LabelConfig] = {}  # model version -> its label settings

    def record(self, ticker: str, window_end: date, version: str, predicted: int, model: DirectionModel) -> None:
        """Remember a prediction (again for the same ticker, day and version: kept once, as the newest; already
        judged: ignored; from a cross_sectional model: ignored, see the module docstring)."""
        key = (ticker, window_end, version)
        if key in self._judged or model.config.labels.mode == "cross_sectional":
            return
        if version not in self._labels:
            self._labels[version] = label_config(model)
        self._pending[key] = predicted
        self._pending.move_to_end(key)
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)

    def snapshot(self) -> tuple[list[Prediction], dict[str, LabelConfig]]:
        """The waiting predictions and the label settings of their versions (copies: safe to use in a thread)."""
        predictions = [Prediction(t, end, v, p) for (t, end, v), p in self._pending.items()]
        return predictions, {p.version: self._labels[p.version] for p in predictions}

    def settle(self, outcomes: Iterable[Outcome]) -> None:
        """Forget judged predictions, and the label settings no waiting prediction needs any more."""
        for outcome in outcomes:
            p = outcome.prediction
            key = (p.ticker, p.window_end, p.version)
            self._pending.pop(key, None)
            self._judged[key] = None
        while len(self._judged) > self.max_pending:
            self._judged.popitem(last=False)
        used = {version for _, _, version in self._pending}
        self._labels = {v: config for v, config in self._labels.items() if v in used}

    def __len__(self) -> int:
        return len(self._pending)


def realised(bars: pd.DataFrame, predictions: Sequence[Prediction], labels: dict[str, LabelConfig]) -> list[Outcome]:
    """The outcomes that `bars` (long frame: ticker, date, close) already decide; the other predictions wait.

    The label at t is `direction_labels` on the ticker's closes, as in training: unknown (NO_LABEL) until the store
    holds the close at t + horizon, so no prediction is judged before its horizon has passed.
    """
    from trendcast.features.labels import NO_LABEL, direction_labels

    by_ticker = {str(t): g.sort_values("date") for t, g in bars.groupby("ticker", sort=False)}
    cut: dict[tuple[str, str], dict[date, int]] = {}  # (ticker, version) -> label by date
    out: list[Outcome] = []
    for p in predictions:
        frame = by_ticker.get(p.ticker)
        if frame is None:
            continue
        key = (p.ticker, p.version)
        if key not in cut:
            close = frame["close"].to_numpy(dtype=np.float64)
            label, _ = direction_labels(close, labels[p.version])
            cut[key] = dict(zip((d.date() for d in pd.to_datetime(frame["date"])), label.tolist(), strict=True))
        actual = cut[key].get(p.window_end, NO_LABEL)
        if actual != NO_LABEL:
            out.append(Outcome(p, int(actual)))
    return out
