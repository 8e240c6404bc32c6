"""The Bi-LSTM's `train_subsample`: a fixed random subsample of each fold's training samples, seeded by the experiment
seed and the fold's training end, drawn from the training part only; the validation tail stays the time-ordered tail."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from trendcast.config import ExperimentConfig, LabelConfig
from trendcast.data.synthetic import random_walk_bars
from trendcast.features.windows import WindowSet, build_window_set
from trendcast.models import bilstm_attention
from trendcast.models.bilstm_attention import BiLSTMModel, training_subsample
from trendcast.models.torch_training import TrainResult


@pytest.fixture(scope="module")
def ws() -> WindowSet:
    return build_window_set(random_walk_bars(n_tickers=4, n_days=260, seed=3), window=10, labels=LabelConfig())


def test_the_subsample_is_a_sorted_seeded_subset(ws: WindowSet) -> None:
    end = ws.dates.max()
    first = training_subsample(ws, 200, seed=1, fold_end=end)
    again = training_subsample(ws, 200, seed=1, fold_end=end)
    other_fold = training_subsample(ws, 200, seed=1, fold_end=end - np.timedelta64(1, "D"))
    assert len(first) == 200 and np.array_equal(first.end_rows, again.end_rows)
    assert not np.array_equal(first.end_rows, other_fold.end_rows)
    assert set(first.end_rows) <= set(ws.end_rows)
    assert np.all(np.diff(first.end_rows) > 0)  # the original (ticker, time) order is kept
    assert training_subsample(ws, None, seed=1, fold_end=end) is ws
    assert training_subsample(ws, len(ws) + 1, seed=1, fold_end=end) is ws


def test_the_fit_subsamples_training_only_and_keeps_the_validation_tail(
    ws: WindowSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_train(network: Any, train: WindowSet, y: Any, valid: WindowSet, vy: Any, *a: Any, **k: Any) -> Any:
        seen["train"], seen["valid"] = train, valid
        return TrainResult(history=[], best_epoch=0, best_valid_loss=None)

    monkeypatch.setattr(bilstm_attention, "train_classifier", fake_train)
    config = ExperimentConfig(window=10, bilstm={"train_subsample": 150, "validation_fraction": 0.2})
    BiLSTMModel(config, progress=False).fit(ws)
    train, valid = seen["train"], seen["valid"]
    dates = np.unique(ws.dates)
    n_valid = round(0.2 * len(dates))
    assert len(train) == 150
    assert np.array_equal(np.unique(valid.dates), dates[-n_valid:])  # every sample of the tail's dates
    assert len(valid) == int((ws.dates >= dates[-n_valid]).sum())
    assert train.dates.max() < valid.dates.min()  # drawn before the purge gap, never from the tail
