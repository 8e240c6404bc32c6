"""The Bi-LSTM with additive attention, in one file that reads top to bottom.

    windows (batch, window, n_features)
      -> Bi-LSTM, `hidden1` units per direction      (batch, window, 2 * hidden1)
      -> Bi-LSTM, `hidden2` units per direction      (batch, window, 2 * hidden2)
      -> additive (Bahdanau) attention over time     weights (batch, window), context (batch, 2 * hidden2)
      -> dropout -> dense + ReLU -> 3 logits          (batch, 3)  Down, Neutral, Up

The attention weights are a softmax over the window's time steps, so each row is non-negative and sums to 1: they
say which days the prediction leaned on, which is what `trendcast.explain.attention_weights` shows. The sizes live
in `trendcast.config.BiLSTMConfig` (defaults 128 / 64 / attention 64 / dense 32, dropout 0.3).

`BiLSTMModel` wraps the network in the `DirectionModel` contract: `fit` (scaler on the training fold only, then
`torch_training.train_classifier` with a time-ordered validation tail), `predict_proba`, and
`predict_scaled_with_attention` for the explanations. `model.network` is the fitted `nn.Module`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trendcast.config import CLASS_NAMES, BiLSTMConfig, ExperimentConfig
from trendcast.errors import ModelError, ModelNotReadyError
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.torch_training import most_recent, seed_everything, split_validation_tail, train_classifier

PREDICT_BATCH = 1024  # samples per forward pass at inference


class AdditiveAttention(nn.Module):
    """Bahdanau attention pooling: score_t = v' tanh(W h_t + b), weights = softmax_t(score), context = sum_t w_t h_t."""

    def __init__(self, input_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(input_dim, attention_dim)  # W, b
        self.score = nn.Linear(attention_dim, 1, bias=False)  # v

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # states: (batch, window, input_dim)
        scores = self.score(torch.tanh(self.project(states)))  # (batch, window, 1)
        weights = torch.softmax(scores.squeeze(-1), dim=1)  # (batch, window), rows sum to 1
        context = torch.bmm(weights.unsqueeze(1), states)  # (batch, 1, input_dim)
        return context.squeeze(1), weights  # (batch, input_dim), (batch, window)


class BiLSTMAttention(nn.Module):
    """(batch, window, n_features) -> (logits (batch, 3), attention (batch, window))."""

    def __init__(self, n_features: int, config: BiLSTMConfig | None = None) -> None:
        super().__init__()
        c = config or BiLSTMConfig()
        self.lstm1 = nn.LSTM(n_features, c.hidden1, batch_first=True, bidirectional=True)
        self.lstm2 = nn.LSTM(2 * c.hidden1, c.hidden2, batch_first=True, bidirectional=True)
        self.attention = AdditiveAttention(2 * c.hidden2, c.attention_dim)
        self.dropout = nn.Dropout(c.dropout)
        self.dense = nn.Linear(2 * c.hidden2, c.dense)
        self.head = nn.Linear(c.dense, len(CLASS_NAMES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (batch, window, n_features)
        h1, _ = self.lstm1(x)  # (batch, window, 2 * hidden1)
        h2, _ = self.lstm2(h1)  # (batch, window, 2 * hidden2)
        context, attention = self.attention(h2)  # (batch, 2 * hidden2), (batch, window)
        hidden = torch.relu(self.dense(self.dropout(context)))  # (batch, dense)
        return self.head(hidden), attention  # (batch, 3), (batch, window)


class BiLSTMModel(DirectionModel):
    """The Bi-LSTM with attention behind the `DirectionModel` contract.

    Without a `valid` set, `fit` holds out the time-ordered tail of the training dates (`validation_fraction`) after
    a purge gap of `horizon` dates, for early stopping; the scaler, fitted by the base class on all of `train`, also
    covers that tail (never anything later). Pass `valid` only for a slice dated before the test period, never the
    test fold itself: early stopping picks the epoch on it. `max_train_samples` keeps only the most recent samples.

    Examples:
        model = BiLSTMModel(config, threads=2).fit(train)
        proba, attention = model.predict_scaled_with_attention(model.scaler.transform(test).windows())
    """

    name = "bilstm"
    uses_sequence = True

    def __init__(
        self, config: ExperimentConfig | None = None, *, threads: int = 2, progress: bool | None = None
    ) -> None:
        super().__init__(config)
        self.threads = threads  # torch threads while training (Settings.torch_threads)
        self.progress = progress  # Rich bar per epoch; None = only on a terminal
        self.best_epoch: int | None = None
        self._network: BiLSTMAttention | None = None

    @property
    def network(self) -> BiLSTMAttention:
        """The fitted nn.Module (eval mode), e.g. for gradients with respect to the inputs."""
        if self._network is None:
            raise ModelNotReadyError(f"{self.name}: the network is not fitted; call fit() or load() first")
        return self._network

    def _fit(self, train: WindowSet, valid: WindowSet | None) -> None:
        cfg = self.config.bilstm
        if valid is None:
            train, valid = split_validation_tail(train, cfg.validation_fraction, self.horizon)
        train = most_recent(train, cfg.max_train_samples)
        seed_everything(self.config.seed)  # the same initial weights for the same seed
        self._network = BiLSTMAttention(train.n_features, cfg)
        result = train_classifier(
            self._network,
            train,
            train.labels,
            valid,
            valid.labels,
            cfg,
            seed=self.config.seed,
            threads=self.threads,
            progress=self.progress,
        )
        self.history, self.best_epoch = result.history, result.best_epoch

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        return self.predict_scaled_with_attention(x)[0]

    def predict_scaled_with_attention(
        self, x: np.ndarray, batch_size: int = PREDICT_BATCH
    ) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (n, 3) float64, attention (n, window) float32) for scaled windows (n, window, F)."""
        self._check_windows(x)
        network = self.network.eval()
        x = np.ascontiguousarray(x, dtype=np.float32)
        probas, attentions = [np.zeros((0, 3))], [np.zeros((0, self.window), dtype=np.float32)]
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                logits, attention = network(torch.from_numpy(x[start : start + batch_size]))
                probas.append(torch.softmax(logits.double(), dim=1).numpy())
                attentions.append(attention.numpy())
        return np.concatenate(probas), np.concatenate(attentions)

    def _check_windows(self, x: np.ndarray) -> None:
        self._require_fitted()
        expected = (self.window, len(self.feature_names))
        if x.ndim != 3 or x.shape[1:] != expected:
            raise ModelError(
                f"{self.name}: expected scaled windows of shape (n, {expected[0]}, {expected[1]}), "
                f"got {x.shape}; scale them with model.scaler.transform(window_set).windows()"
            )

    def _save_weights(self, folder: Path) -> None:
        torch.save(self.network.state_dict(), folder / "network.pt")
        (folder / "training.json").write_text(json.dumps({"best_epoch": self.best_epoch}))

    def _load_weights(self, folder: Path) -> None:
        weights = folder / "network.pt"
        if not weights.is_file():
            raise ModelNotReadyError(f"{self.name}: {weights} is missing; save the model again with model.save()")
        network = BiLSTMAttention(len(self.feature_names), self.config.bilstm)
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self._network = network.eval()
        training = folder / "training.json"
        info: dict[str, Any] = json.loads(training.read_text()) if training.is_file() else {}
        self.best_epoch = info.get("best_epoch")
