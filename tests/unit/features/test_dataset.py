"""WindowDataset serves exactly the WindowSet's windows (from the store or the materialised path), one at a time or
a batch per gather, in order or shuffled among its own samples only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import SubsetRandomSampler

from trendcast.config import LabelConfig
from trendcast.data.synthetic import random_walk_bars
from trendcast.features.dataset import WindowDataset
from trendcast.features.scaling import WindowScaler
from trendcast.features.store import FeatureStore
from trendcast.features.windows import WindowSet, build_window_set

WINDOW = 12
LABELS = LabelConfig(horizon=1, threshold=0.003)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    bars = random_walk_bars(n_tickers=3, n_days=200, seed=9)
    return bars[(bars["ticker"] != "RW001") | (bars.groupby("ticker").cumcount() < 140)].reset_index(drop=True)


@pytest.fixture
def stored(tmp_path: Path, bars: pd.DataFrame) -> WindowSet:
    store = FeatureStore(tmp_path / "features")
    store.sync(bars.groupby("ticker"))
    return store.load_window_set(["RW000", "RW001", "RW002"], window=WINDOW, labels=LABELS)


def test_items_and_batches_are_the_materialised_windows(bars: pd.DataFrame, stored: WindowSet) -> None:
    expected = build_window_set(bars, window=WINDOW, labels=LABELS)
    windows = expected.windows()
    dataset = WindowDataset(stored)
    assert len(dataset) == len(expected)
    for i in range(len(dataset)):
        x, y = dataset[i]
        assert x.dtype == torch.float32 and x.shape == (WINDOW, expected.n_features)
        assert y.dtype == torch.int64 and int(y) == expected.labels[i]
        assert np.array_equal(x.numpy(), windows[i])
    order = np.random.default_rng(0).permutation(len(dataset))
    x, y = dataset.__getitems__(order.tolist())
    assert x.shape == (len(dataset), WINDOW, expected.n_features) and x.dtype == torch.float32
    assert np.array_equal(x.numpy(), windows[order])
    assert np.array_equal(y.numpy(), expected.labels[order])
    assert np.array_equal(dataset.tickers[order], expected.tickers[order])
    assert np.array_equal(dataset.dates[order], expected.dates[order])


def test_no_window_copies_are_kept(stored: WindowSet) -> None:
    dataset = WindowDataset(stored)
    assert dataset.data.rows is stored.rows  # the row matrix is shared, not copied
    arrays = [v for v in vars(dataset).values() if isinstance(v, np.ndarray)]
    assert all(a.size < len(stored) * WINDOW for a in arrays)


def test_loader_batches_in_order_or_seeded_shuffle(stored: WindowSet) -> None:
    dataset = WindowDataset(stored)
    batches = list(dataset.loader(64))
    assert [len(b[1]) for b in batches[:-1]] == [64] * (len(batches) - 1)
    assert np.array_equal(torch.cat([b[0] for b in batches]).numpy(), stored.windows())

    def epoch(seed: int) -> np.ndarray:
        return torch.cat([y for _, y in dataset.loader(50, shuffle_seed=seed)]).numpy()

    first, again, other = epoch(3), epoch(3), epoch(4)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.array_equal(np.sort(first), np.sort(stored.labels))  # every sample once, from this set only
    x, _ = next(iter(dataset.loader(len(dataset), shuffle_seed=3)))
    order = np.random.default_rng((3, 0)).permutation(len(dataset))  # PermutationBatches' first epoch
    assert np.array_equal(x.numpy(), stored.windows(order))


def test_loader_takes_a_sampler(stored: WindowSet) -> None:
    dataset = WindowDataset(stored)
    chosen = [5, 1, 40]
    sampler = SubsetRandomSampler(chosen, generator=torch.Generator().manual_seed(0))
    _, y = next(iter(dataset.loader(10, sampler=sampler)))
    assert sorted(y.tolist()) == sorted(stored.labels[chosen].tolist())


def test_scaler_is_applied_to_the_rows_once(stored: WindowSet) -> None:
    cut = pd.Timestamp(np.sort(np.unique(stored.dates))[60])
    train = stored.take(stored.dates <= cut)
    scaler = WindowScaler().fit(train, cut)
    dataset = WindowDataset(train, scaler)
    x, _ = dataset.__getitems__(list(range(len(train))))
    assert np.array_equal(x.numpy(), scaler.transform(train).windows())
    assert not np.array_equal(x.numpy(), train.windows())
