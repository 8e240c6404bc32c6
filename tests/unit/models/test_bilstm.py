"""The Bi-LSTM with attention: shapes, attention as a distribution, determinism, the validation split, the signal."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tests.unit.models._data import WINDOW, majority_rate, tiny_config
from trendcast.config import BiLSTMConfig
from trendcast.errors import ModelError, ModelNotReadyError
from trendcast.features.windows import WindowSet
from trendcast.models import bilstm_attention
from trendcast.models.bilstm_attention import AdditiveAttention, BiLSTMAttention, BiLSTMModel
from trendcast.models.torch_training import TrainResult

Split = tuple[WindowSet, WindowSet]


def _check_attention(attention: torch.Tensor | np.ndarray, batch: int, window: int) -> None:
    weights = torch.as_tensor(attention, dtype=torch.float64)
    assert weights.shape == (batch, window)
    assert bool((weights >= 0).all())
    assert torch.allclose(weights.sum(dim=1), torch.ones(batch, dtype=torch.float64), atol=1e-6)


def test_default_sizes_forward_pass() -> None:
    config = BiLSTMConfig()
    net = BiLSTMAttention(51, config).eval()
    assert (net.lstm1.hidden_size, net.lstm2.hidden_size) == (128, 64)
    assert net.lstm1.bidirectional and net.lstm2.bidirectional
    with torch.no_grad():
        logits, attention = net(torch.randn(4, 60, 51))
    assert logits.shape == (4, 3)
    assert bool(torch.isfinite(logits).all())
    _check_attention(attention, 4, 60)


def test_attention_is_a_distribution_for_every_sample() -> None:
    net = BiLSTMAttention(5, tiny_config().bilstm).eval()
    x = torch.randn(32, WINDOW, 5) * torch.linspace(0.1, 10, 32)[:, None, None]  # calm to wild inputs
    with torch.no_grad():
        logits, attention = net(x)
    assert logits.shape == (32, 3)
    _check_attention(attention, 32, WINDOW)


def test_additive_attention_context_is_the_weighted_sum_of_states() -> None:
    attention = AdditiveAttention(input_dim=6, attention_dim=4)
    states = torch.randn(3, 7, 6)
    context, weights = attention(states)
    scores = attention.score(torch.tanh(attention.project(states))).squeeze(-1)
    assert torch.allclose(weights, torch.softmax(scores, dim=1))
    assert torch.allclose(context, (weights[:, :, None] * states).sum(dim=1), atol=1e-6)


@pytest.fixture(scope="module")
def fitted(small_split: Split) -> BiLSTMModel:
    return BiLSTMModel(tiny_config(), threads=1, progress=False).fit(small_split[0])


def test_predictions_with_attention(fitted: BiLSTMModel, small_split: Split) -> None:
    test = small_split[1]
    assert fitted.scaler is not None
    x = fitted.scaler.transform(test).windows()
    proba, attention = fitted.predict_scaled_with_attention(x)
    assert proba.shape == (len(test), 3)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-9) and (proba >= 0).all()
    _check_attention(attention, len(test), WINDOW)
    assert np.array_equal(fitted.predict_proba(test), proba)
    small_batches, small_attention = fitted.predict_scaled_with_attention(x, batch_size=7)
    assert np.allclose(small_batches, proba, atol=1e-6) and np.allclose(small_attention, attention, atol=1e-6)
    assert not fitted.network.training


def test_bad_inputs_and_unfitted_models_are_refused(fitted: BiLSTMModel) -> None:
    with pytest.raises(ModelError, match=r"\(n, 10, 5\)"):
        fitted.predict_scaled_with_attention(np.zeros((2, WINDOW + 1, 5), dtype=np.float32))
    with pytest.raises(ModelNotReadyError):
        _ = BiLSTMModel(tiny_config()).network


def test_two_fits_with_the_same_seed_give_identical_probabilities(small_split: Split) -> None:
    train, test = small_split
    first = BiLSTMModel(tiny_config(), threads=1).fit(train).predict_proba(test)
    second = BiLSTMModel(tiny_config(), threads=1).fit(train).predict_proba(test)
    other_seed = tiny_config().model_copy(update={"seed": 43})
    third = BiLSTMModel(other_seed, threads=1).fit(train).predict_proba(test)
    assert np.array_equal(first, second)
    assert not np.allclose(first, third)


def test_fit_without_valid_uses_a_purged_time_ordered_tail(small_split: Split, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, WindowSet] = {}
    real = bilstm_attention.train_classifier

    def spy(
        network: torch.nn.Module,
        train_x: WindowSet,
        train_y: np.ndarray,
        valid_x: WindowSet,
        valid_y: np.ndarray,
        *args: Any,
        **kwargs: Any,
    ) -> TrainResult:
        seen.update(train=train_x, valid=valid_x)
        return real(network, train_x, train_y, valid_x, valid_y, *args, **kwargs)

    monkeypatch.setattr(bilstm_attention, "train_classifier", spy)
    train = small_split[0]
    config = tiny_config(max_train_samples=200)
    model = BiLSTMModel(config, threads=1).fit(train)
    dates = np.unique(train.dates)
    n_valid = round(config.bilstm.validation_fraction * len(dates))
    assert np.array_equal(np.unique(seen["valid"].dates), dates[-n_valid:])
    gap = dates[(dates > seen["train"].dates.max()) & (dates < seen["valid"].dates.min())]
    assert len(gap) == model.horizon == 1
    assert len(seen["train"]) == 200  # max_train_samples keeps the most recent ones
    assert seen["train"].dates.min() >= np.sort(train.take(train.dates < dates[-n_valid - 1]).dates)[-200]
    assert [row["epoch"] for row in model.history] == [1, 2] and model.best_epoch in (1, 2)
    assert "valid_loss" in model.history[0]


def test_a_small_bilstm_finds_the_planted_signal(planted_split: Split) -> None:
    train, test = planted_split
    config = tiny_config(
        hidden1=16, hidden2=8, attention_dim=8, dense=8, dropout=0.0, batch_size=128, learning_rate=0.01, epochs=6
    )
    model = BiLSTMModel(config, threads=1).fit(train)
    accuracy = float(np.mean(model.predict_proba(test).argmax(axis=1) == test.labels))
    assert accuracy > majority_rate(test.labels) + 0.1
