"""Per-time-step attention of the Bi-LSTM: which days of the window one prediction leaned on.

The weights come out of the very forward pass that produces the probabilities (`predict_scaled_with_attention`), so
they describe that prediction and no other. They are a softmax over the window's steps: non-negative, summing to 1.
Step 0 is the signal date, step -1 the trading day before it, and so on back to -(window - 1).

Attention says where the model looked, not how much each day changed the answer; the Integrated Gradients
attributions (`shap_values`) answer that. The explanation shows both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trendcast.errors import ModelError
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.bilstm_attention import BiLSTMModel

SUM_TOLERANCE = 1e-4  # float32 softmax rows sum to 1 within ~1e-6; anything further off is a bug


@dataclass(frozen=True)
class AttentionStep:
    step: int  # 0 = signal date, -1 = the trading day before, ...
    date: pd.Timestamp | None
    weight: float


def has_attention(model: DirectionModel) -> bool:
    return isinstance(model, BiLSTMModel)


def predict_with_attention(model: DirectionModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities (n, 3), attention (n, window) or None) for scaled windows, from one forward pass."""
    if isinstance(model, BiLSTMModel):
        proba, attention = model.predict_scaled_with_attention(x)
        check_attention(attention)
        return proba, attention.astype(np.float64)
    return model.predict_scaled(x), None


def check_attention(weights: np.ndarray) -> None:
    """Raise if any row is negative or does not sum to 1 (a broken network or a wrong tensor)."""
    if weights.ndim != 2:
        raise ModelError(f"attention must be (n, window), got shape {weights.shape}")
    sums = weights.sum(axis=1)
    if (weights < 0).any() or not np.allclose(sums, 1.0, atol=SUM_TOLERANCE):
        raise ModelError(
            f"attention rows must be non-negative and sum to 1; got sums {sums.min():.6f}.."
            f"{sums.max():.6f}. Check that the network's forward returns softmax weights."
        )


def attention_steps(weights: np.ndarray, dates: list[pd.Timestamp] | None = None) -> tuple[AttentionStep, ...]:
    """One (step, date, weight) per window step, oldest first."""
    window = len(weights)
    if dates is not None and len(dates) != window:
        raise ModelError(f"{len(dates)} dates for a window of {window} steps; pass one date per step, oldest first")
    return tuple(
        AttentionStep(
            step=i - window + 1, date=None if dates is None else pd.Timestamp(dates[i]), weight=float(weights[i])
        )
        for i in range(window)
    )


def recent_share(weights: np.ndarray, days: int) -> float:
    """Share of the attention on the last `days` steps (the signal date and the days just before it)."""
    return float(weights[-days:].sum())


def attention_matrix(model: BiLSTMModel, data: WindowSet, max_samples: int = 256, seed: int = 0) -> np.ndarray:
    """(k, window) attention rows for up to `max_samples` samples of an unscaled WindowSet (for heatmaps)."""
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(data), size=min(max_samples, len(data)), replace=False))
    scaled = model.scale_rows(data.windows(index).reshape(-1, data.n_features))
    _, attention = model.predict_scaled_with_attention(scaled.reshape(len(index), data.window, data.n_features))
    check_attention(attention)
    return np.asarray(attention, dtype=np.float64)
