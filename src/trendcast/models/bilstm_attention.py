"""The Bi-LSTM with additive attention, in one file that reads top to bottom.

    windows (batch, window, n_features)
      -> Bi-LSTM, `hidden1` units per direction      (batch, window, 2 * hidden1)
      -> Bi-LSTM, `hidden2` units per direction      (batch, window, 2 * hidden2)
      -> additive (Bahdanau) attention over time     weights (batch, window), context (batch, 2 * hidden2)
      -> dropout -> dense + ReLU -> 3 logits          (batch, 3)  Down, Neutral, Up
      -> + class mask                                 0, or -1e9 for a class the label mode never produces

The attention weights are a softmax over the window's time steps, so each row is non-negative and sums to 1: they
say which days the prediction leaned on, which is what `trendcast.explain.attention_weights` shows. The sizes live
in `trendcast.config.BiLSTMConfig` (defaults 128 / 64 / attention 64 / dense 32, dropout 0.3).

With cross_sectional labels (binary: Up = above the day's median, Down = at or below it) the mask adds -1e9 to the
Neutral logit, so softmax gives Neutral exactly 0 in PyTorch and in the exported ONNX graphs (the mask is a constant
of the graph). The mask is a non-persistent buffer rebuilt from the saved config's label mode, so a weights file
never changes shape with the mode.

`BiLSTMModel` wraps the network in the `DirectionModel` contract: `fit` (scaler on the training fold only, then
`torch_training.train_classifier` with a time-ordered validation tail), `predict_proba`, and
`predict_scaled_with_attention` for the explanations. `model.network` is the fitted `nn.Module`. With `workers > 1`
the same loop runs data-parallel on Ray Train (`trendcast.models.distributed`); the fitted model is an ordinary
`BiLSTMModel` either way (same weights file, ONNX export and serving). `workers`, `ray_address` and `on_epoch` are
runtime options: they are not part of the saved config.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trendcast.config import CLASS_NAMES, BiLSTMConfig, ExperimentConfig
from trendcast.errors import ModelError, ModelNotReadyError
from trendcast.features.labels import LabelMode, label_classes
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.torch_training import most_recent, seed_everything, split_validation_tail, train_classifier

PREDICT_BATCH = 1024  # samples per forward pass at inference
MASKED_LOGIT = -1e9  # added to the logit of a class the label mode never produces: softmax gives it exactly 0


def class_mask(label_mode: LabelMode) -> torch.Tensor:
    """(3,) float32: 0 for the classes `label_mode` produces, MASKED_LOGIT for the others (Neutral when binary)."""
    present = label_classes(label_mode)
    return torch.tensor([0.0 if c in present else MASKED_LOGIT for c in range(len(CLASS_NAMES))])


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
    """(batch, window, n_features) -> (logits (batch, 3), attention (batch, window)).

    `label_mode="cross_sectional"` masks the Neutral logit (`class_mask`); the mask is not in the state dict."""

    class_mask: torch.Tensor

    def __init__(self, n_features: int, config: BiLSTMConfig | None = None, label_mode: LabelMode = "absolute") -> None:
        super().__init__()
        c = config or BiLSTMConfig()
        self.register_buffer("class_mask", class_mask(label_mode), persistent=False)
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
        return self.head(hidden) + self.class_mask, attention  # (batch, 3), (batch, window)


def training_subsample(data: WindowSet, size: int | None, seed: int, fold_end: Any) -> WindowSet:
    """A fixed random `size` of `data`'s samples (all when `size` is None or not exceeded), in time order.

    Drawn without replacement from `data` only (the training samples before the validation tail), with a generator
    seeded by the experiment seed and the fold's last training date: the same fold gets the same subsample on every
    run and every executor, and different folds get different ones. The indices are sorted, so the subsample keeps
    the samples' original (time) order."""
    if size is None or len(data) <= size:
        return data
    day = int(np.datetime64(fold_end, "D").astype(np.int64)) if fold_end is not None else 0
    rng = np.random.default_rng([seed % 2**32, day % 2**32])
    return data.take(np.sort(rng.choice(len(data), size=size, replace=False)))


class BiLSTMModel(DirectionModel):
    """The Bi-LSTM with attention behind the `DirectionModel` contract.

    Without a `valid` set, `fit` holds out the time-ordered tail of the training dates (`validation_fraction`) after
    a purge gap of `horizon` dates, for early stopping; the scaler, fitted by the base class on all of `train`, also
    covers that tail (never anything later). Pass `valid` only for a slice dated before the test period, never the
    test fold itself: early stopping picks the epoch on it. `max_train_samples` keeps only the most recent samples;
    `train_subsample` then keeps a fixed random N of the remaining training samples (`training_subsample`), never
    touching the validation tail.

    Examples:
        model = BiLSTMModel(config, threads=2).fit(train)
        proba, attention = model.predict_scaled_with_attention(model.scaler.transform(test).windows())
    """

    name = "bilstm"
    uses_sequence = True

    def __init__(
        self,
        config: ExperimentConfig | None = None,
        *,
        threads: int = 2,
        progress: bool | None = None,
        workers: int = 1,
        ray_address: str | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        super().__init__(config)
        if workers < 1:
            raise ModelError(f"workers must be >= 1, got {workers}; use --workers 1 to train in this process")
        self.threads = threads  # torch threads while training (Settings.torch_threads)
        self.progress = progress  # Rich bar per epoch; None = only on a terminal
        self.workers = workers  # > 1: data-parallel on Ray Train (Settings.train_workers)
        self.ray_address = ray_address  # where Ray runs (Settings.ray_address); None = a private instance
        self.on_epoch = on_epoch  # called with each epoch's history row (local training only), e.g. by Ray Tune
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
        fold_end = train.dates.max() if len(train) else None  # the fold's training end: seeds the subsample
        if valid is None:
            train, valid = split_validation_tail(train, cfg.validation_fraction, self.horizon)
        train = most_recent(train, cfg.max_train_samples)
        train = training_subsample(train, cfg.train_subsample, self.config.seed, fold_end)
        if self.workers > 1:
            self._fit_distributed(train, valid)
            return
        seed_everything(self.config.seed)  # the same initial weights for the same seed
        self._network = BiLSTMAttention(train.n_features, cfg, self.config.labels.mode)
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
            on_epoch=self.on_epoch,
        )
        self.history, self.best_epoch = result.history, result.best_epoch

    def _fit_distributed(self, train: WindowSet, valid: WindowSet) -> None:
        """The same loop on `workers` Ray Train workers (DDP over gloo); rank 0's best weights come back here."""
        from trendcast.models.distributed import fit_data_parallel

        fitted = fit_data_parallel(
            train,
            valid,
            self.config.bilstm,
            seed=self.config.seed,
            workers=self.workers,
            threads=max(1, self.threads // self.workers),
            address=self.ray_address,
            label_mode=self.config.labels.mode,
        )
        network = BiLSTMAttention(train.n_features, self.config.bilstm, self.config.labels.mode)
        network.load_state_dict(fitted.state_dict)
        self._network = network.eval()
        self.history, self.best_epoch = fitted.history, fitted.best_epoch

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
        network = BiLSTMAttention(len(self.feature_names), self.config.bilstm, self.config.labels.mode)
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self._network = network.eval()
        training = folder / "training.json"
        info: dict[str, Any] = json.loads(training.read_text()) if training.is_file() else {}
        self.best_epoch = info.get("best_epoch")
