"""A PyTorch `Dataset` over a `WindowSet`: samples are (ticker, end-date) pairs, windows are sliced on demand.

`WindowDataset` holds the WindowSet's row matrix (scaled once by a fitted `WindowScaler` when one is given) and its
per-sample index arrays; it never stores the overlapping windows. `__getitem__` slices one window, and
`__getitems__` gathers a whole batch in one indexing step, so a `DataLoader` with a batch sampler (what `loader()`
builds) fetches each batch as one (k, window, n_features) tensor. The windows are exactly `WindowSet.windows`'.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from trendcast.features.scaling import WindowScaler
from trendcast.features.windows import WindowSet

Batch = tuple[torch.Tensor, torch.Tensor]  # (windows float32 (k, window, n_features), labels int64 (k,))
Sample = tuple[torch.Tensor, torch.Tensor]  # (window float32 (window, n_features), label int64 scalar)


def pass_through(batch: Any) -> Any:
    """The DataLoader's collate: `__getitems__` already returns the batch as tensors (module-level, so picklable
    for worker processes). Typed Any because DataLoader declares its collate as taking a list of samples."""
    return batch


class WindowDataset(Dataset[Sample]):
    """The samples of `data` as torch tensors; with `scaler`, the rows are scaled once up front (one float32 copy
    of the row matrix, never of the windows)."""

    def __init__(self, data: WindowSet, scaler: WindowScaler | None = None) -> None:
        self.data = scaler.transform(data) if scaler is not None else data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Sample:
        end = int(self.data.end_rows[index])
        window = self.data.rows[end - self.data.window + 1 : end + 1]  # a view; copied once into the tensor
        label = torch.tensor(int(self.data.labels[index]), dtype=torch.int64)
        return torch.from_numpy(np.array(window, dtype=np.float32)), label

    def __getitems__(self, indices: list[int]) -> Batch:
        """(windows (k, window, n_features) float32, labels (k,) int64) for `indices`, in one gather."""
        index = np.asarray(indices, dtype=np.int64)
        windows = self.data.windows(index)  # (k, window, n_features): k contiguous blocks copied from the rows
        return torch.from_numpy(windows), torch.from_numpy(self.data.labels[index].astype(np.int64))

    @property
    def tickers(self) -> np.ndarray:
        """The ticker of each sample."""
        return self.data.tickers

    @property
    def dates(self) -> np.ndarray:
        """The end date (signal date) of each sample's window."""
        return self.data.dates

    def loader(
        self, batch_size: int, *, shuffle_seed: int | None = None, sampler: Sampler[int] | None = None
    ) -> DataLoader[Sample]:
        """Batches of `batch_size` samples: in order, in a seeded random order of these samples only (never across
        sets) when `shuffle_seed` is given, or drawn by `sampler` (e.g. a DistributedSampler)."""
        if sampler is not None:
            return DataLoader(self, batch_size=batch_size, sampler=sampler, collate_fn=pass_through)
        batches: Any = PermutationBatches(len(self), batch_size, shuffle_seed)  # torch types batches as lists
        return DataLoader(self, batch_sampler=batches, collate_fn=pass_through)


class PermutationBatches(Sampler[np.ndarray]):
    """Batches of sample indices as NumPy arrays: slices of a seeded permutation of the samples (a new one each
    epoch, from (seed, epoch)), or of their order when `seed` is None. Handing `__getitems__` one array per batch
    keeps Python's per-index work (a list of ints per batch, as torch's BatchSampler builds) out of the read path."""

    def __init__(self, n_samples: int, batch_size: int, seed: int | None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.n_samples, self.batch_size, self.seed = n_samples, batch_size, seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-self.n_samples // self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.seed is None:
            order = np.arange(self.n_samples)
        else:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(self.n_samples)
        self.epoch += 1
        for start in range(0, self.n_samples, self.batch_size):
            yield order[start : start + self.batch_size]
