"""The one training loop: balanced weights, time-ordered validation split, determinism, early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tests.unit.models._data import tiny_config
from trendcast.config import BiLSTMConfig
from trendcast.errors import ModelError
from trendcast.features.windows import WindowSet
from trendcast.models import torch_training
from trendcast.models.bilstm_attention import BiLSTMAttention
from trendcast.models.torch_training import (
    class_weights,
    evaluate_classifier,
    most_recent,
    seed_everything,
    split_validation_tail,
    train_classifier,
)

TINY = tiny_config().bilstm


def _arrays(n: int, seed: int, window: int = 6, features: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Random windows whose label is the sign of the last step's first feature (0 Down, 2 Up)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, window, features)).astype(np.float32)
    return x, np.where(x[:, -1, 0] > 0, 2, 0).astype(np.int64)


def _network(features: int = 3, seed: int = 0, config: BiLSTMConfig = TINY) -> BiLSTMAttention:
    seed_everything(seed)
    return BiLSTMAttention(features, config)


def test_class_weights_are_balanced_and_zero_for_absent_classes() -> None:
    labels = np.array([0, 0, 0, 2])
    weights = class_weights(labels)
    assert weights == pytest.approx([4 / (2 * 3), 0.0, 4 / (2 * 1)])
    assert weights[labels].sum() == pytest.approx(len(labels))  # balanced weights keep the total mass


def test_validation_tail_is_time_ordered_with_a_purge_gap(small_set: WindowSet) -> None:
    horizon = 3
    train, valid = split_validation_tail(small_set, fraction=0.2, purge=horizon)
    dates = np.unique(small_set.dates)
    n_valid = round(0.2 * len(dates))
    assert np.array_equal(np.unique(valid.dates), dates[-n_valid:])
    assert train.dates.max() < valid.dates.min()
    between = dates[(dates > train.dates.max()) & (dates < valid.dates.min())]
    assert len(between) == horizon
    assert len(train) + len(valid) + int(np.isin(small_set.dates, between).sum()) == len(small_set)


def test_validation_tail_refuses_too_few_dates(small_set: WindowSet) -> None:
    first_dates = np.unique(small_set.dates)[:3]
    with pytest.raises(ModelError, match="too few"):
        split_validation_tail(small_set.take(np.isin(small_set.dates, first_dates)), fraction=0.4, purge=2)


def test_most_recent_keeps_the_latest_samples_in_order(small_set: WindowSet) -> None:
    kept = most_recent(small_set, 100)
    assert len(kept) == 100
    assert kept.dates.min() >= np.sort(small_set.dates)[-100]
    positions = np.flatnonzero(np.isin(small_set.end_rows, kept.end_rows))
    assert np.array_equal(kept.end_rows, small_set.end_rows[positions])  # original order kept
    assert most_recent(small_set, None) is small_set


def test_two_runs_with_the_same_seed_are_identical() -> None:
    x, y = _arrays(200, seed=1)
    results, weights = [], []
    for _ in range(2):
        net = _network()
        results.append(train_classifier(net, x[:150], y[:150], x[150:], y[150:], TINY, seed=7, threads=1))
        weights.append([p.detach().clone() for p in net.parameters()])
    drop_time = [[{k: v for k, v in row.items() if k != "seconds"} for row in r.history] for r in results]
    assert drop_time[0] == drop_time[1]
    assert all(torch.equal(a, b) for a, b in zip(*weights, strict=True))


def test_a_window_set_trains_exactly_like_its_materialised_windows(small_set: WindowSet) -> None:
    data = small_set.take(np.arange(300))
    cfg = BiLSTMConfig.model_validate(TINY.model_dump() | {"epochs": 1})
    from_set = train_classifier(_network(5), data, data.labels, None, None, cfg, seed=3, threads=1)
    from_array = train_classifier(_network(5), data.windows(), data.labels, None, None, cfg, seed=3, threads=1)
    assert from_set.history[0]["train_loss"] == from_array.history[0]["train_loss"]


def test_early_stopping_restores_the_best_epoch() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 6, 3)).astype(np.float32)
    y = rng.integers(0, 3, 160)  # pure noise: the validation loss soon rises as the network memorises
    cfg = BiLSTMConfig(
        hidden1=16,
        hidden2=8,
        attention_dim=8,
        dense=8,
        dropout=0.0,
        learning_rate=0.03,
        batch_size=32,
        epochs=30,
        patience=3,
    )
    net = _network(config=cfg)
    result = train_classifier(net, x[:96], y[:96], x[96:], y[96:], cfg, seed=0, threads=1)
    losses = [row["valid_loss"] for row in result.history]
    assert len(result.history) < cfg.epochs  # it stopped early ...
    assert len(result.history) == result.best_epoch + cfg.patience  # ... `patience` epochs after the best one
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert result.best_valid_loss == min(losses)
    recomputed = evaluate_classifier(net, x[96:], y[96:], class_weights(y[:96]))["valid_loss"]
    assert recomputed == pytest.approx(losses[result.best_epoch - 1], rel=1e-6)
    assert recomputed != pytest.approx(losses[-1], rel=1e-6)  # the last epoch's weights were replaced
    assert not net.training


def test_without_validation_all_epochs_run_and_the_last_is_kept() -> None:
    x, y = _arrays(100, seed=2)
    cfg = BiLSTMConfig.model_validate(TINY.model_dump() | {"epochs": 3})
    result = train_classifier(_network(), x, y, None, None, cfg, seed=0, threads=1)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert result.best_epoch == 3 and result.best_valid_loss is None
    assert set(result.history[0]) == {"epoch", "train_loss", "seconds"}


def test_gradients_are_clipped_at_the_configured_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    real = nn.utils.clip_grad_norm_

    def spy(parameters: object, max_norm: float, *args: object, **kwargs: object) -> torch.Tensor:
        seen.append(max_norm)
        return real(parameters, max_norm, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch_training.nn.utils, "clip_grad_norm_", spy)
    x, y = _arrays(100, seed=3)
    cfg = BiLSTMConfig.model_validate(TINY.model_dump() | {"epochs": 1, "grad_clip": 0.25, "batch_size": 50})
    train_classifier(_network(), x, y, None, None, cfg, seed=0, threads=1)
    assert seen == [0.25, 0.25]


def test_threads_and_determinism_flags_are_restored() -> None:
    torch.set_num_threads(2)  # whatever the caller had must come back (the autouse fixture resets it to 1)
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    x, y = _arrays(40, seed=4)
    train_classifier(_network(), x, y, None, None, TINY, seed=0, threads=1)
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before == (2, False)


def test_history_metrics_match_the_restored_network(capsys: pytest.CaptureFixture[str]) -> None:
    x, y = _arrays(120, seed=5)
    net = _network()
    result = train_classifier(net, x[:80], y[:80], x[80:], y[80:], TINY, seed=0, threads=1, progress=True)
    best = result.history[result.best_epoch - 1]
    assert set(best) == {"epoch", "train_loss", "valid_loss", "valid_accuracy", "valid_balanced_accuracy", "seconds"}
    with torch.no_grad():
        predicted = net(torch.from_numpy(x[80:]))[0].argmax(dim=1).numpy()
    truth = y[80:]
    assert best["valid_accuracy"] == pytest.approx(np.mean(predicted == truth))
    recalls = [np.mean(predicted[truth == c] == c) for c in np.unique(truth)]
    assert best["valid_balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert "epoch 1/2" in capsys.readouterr().out  # the progress bar was drawn


@pytest.mark.parametrize(
    ("labels", "message"),
    [(np.array([0, 1, -1, 2]), "class ids"), (np.array([0, 1, 2]), "must match")],
)
def test_bad_labels_are_refused(labels: np.ndarray, message: str) -> None:
    x, _ = _arrays(4, seed=6)
    with pytest.raises(ModelError, match=message):
        train_classifier(_network(), x, labels, None, None, TINY, seed=0, threads=1)


# -- data-parallel shards and the per-epoch callback -----------------------------------------------------------------
_REAL_BATCH = torch_training._batch  # the spy below wraps the original, however often it is installed


def _recorded_training_batches(
    monkeypatch: pytest.MonkeyPatch, x: np.ndarray, y: np.ndarray, rank: int, world_size: int
) -> list[np.ndarray]:
    """The sample indices of every training batch one rank draws in one epoch (no validation set)."""
    seen: list[np.ndarray] = []

    def spy(data: np.ndarray, index: np.ndarray) -> torch.Tensor:
        seen.append(np.array(index))
        return _REAL_BATCH(data, index)

    monkeypatch.setattr(torch_training, "_batch", spy)
    cfg = BiLSTMConfig.model_validate(TINY.model_dump() | {"epochs": 1, "batch_size": 16})
    train_classifier(_network(), x, y, None, None, cfg, seed=5, threads=1, rank=rank, world_size=world_size)
    return seen


def test_two_ranks_draw_disjoint_equal_shards_of_one_permutation(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _arrays(101, seed=8)  # odd: one sample is trimmed so both ranks get 50
    batches = [_recorded_training_batches(monkeypatch, x, y, rank, 2) for rank in (0, 1)]
    shards = [np.concatenate(b) for b in batches]
    assert len(batches[0]) == len(batches[1]) == 4  # equal batch counts (ceil(50 / 16)): DDP steps in lockstep
    assert len(shards[0]) == len(shards[1]) == 50
    assert not set(shards[0]) & set(shards[1])
    permutation = np.random.default_rng(5).permutation(101)  # the loop's seeded order, recomputed here
    assert set(shards[0]) | set(shards[1]) == set(permutation[:100])  # the trimmed permutation, covered exactly
    single = np.concatenate(_recorded_training_batches(monkeypatch, x, y, 0, 1))
    assert np.array_equal(single, permutation)  # world_size 1: every sample, as before


def test_a_bad_rank_is_refused() -> None:
    x, y = _arrays(20, seed=9)
    with pytest.raises(ModelError, match="rank"):
        train_classifier(_network(), x, y, None, None, TINY, seed=0, threads=1, rank=2, world_size=2)


def test_on_epoch_receives_each_history_row_once() -> None:
    x, y = _arrays(120, seed=10)
    rows: list[dict[str, float]] = []
    cfg = BiLSTMConfig.model_validate(TINY.model_dump() | {"epochs": 3, "patience": 5})
    result = train_classifier(_network(), x[:80], y[:80], x[80:], y[80:], cfg, seed=0, threads=1, on_epoch=rows.append)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert rows == result.history
