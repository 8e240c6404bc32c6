"""Helpers shared by the model tests: feature list, tiny sizes and a purged date split."""

from __future__ import annotations

import numpy as np

from trendcast.config import BiLSTMConfig, ExperimentConfig
from trendcast.features.windows import WindowSet

FEATURES = ["ret_1", "ret_5", "gap", "hl_range", "close_position"]
WINDOW = 10


def split_by_date(data: WindowSet, train_fraction: float, gap: int) -> tuple[WindowSet, WindowSet]:
    """First `train_fraction` of the unique dates for training, then `gap` dates dropped, the rest for testing."""
    dates = np.unique(data.dates)
    cut = int(train_fraction * len(dates))
    return data.take(data.dates < dates[cut]), data.take(data.dates >= dates[cut + gap])


def tiny_config(**bilstm: float) -> ExperimentConfig:
    """Window 10 and hidden sizes 8/4 so a fit takes a fraction of a second."""
    sizes = {"hidden1": 8, "hidden2": 4, "attention_dim": 4, "dense": 4, "epochs": 2, "batch_size": 64} | bilstm
    return ExperimentConfig(window=WINDOW, features=FEATURES, bilstm=BiLSTMConfig.model_validate(sizes))


def majority_rate(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class of `labels`."""
    return float(np.bincount(labels).max() / len(labels))
