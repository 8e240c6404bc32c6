"""Windows of `window` steps x all features, stacked across tickers, without copying the feature rows.

A `WindowSet` keeps one float32 row matrix (all tickers' feature rows, ticker by ticker, time-ordered) and, per
sample, the row index where its window ends. `windows(idx)` materialises (k, window, n_features) on demand, so a
505-ticker universe does not need 6 GB of overlapping copies. Every sample keeps its (ticker, date), label and
forward return.

A sample at date t exists when: its `window` rows t-window+1..t are consecutive rows of one ticker, every feature in
them is finite, and its label is known (t + horizon inside the data).

With `labels.mode = "cross_sectional"` the labels are relative (`labels.cross_sectional_labels`): the median of a
date is over every row of every ticker passed in on that date with a known forward return, including rows whose
window is not complete yet, so the label does not depend on which samples happen to be valid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import as_strided, sliding_window_view
from rich.progress import Progress

from trendcast.config import LabelConfig
from trendcast.features.feature_set import TickerFrame, build_ticker_frame
from trendcast.features.indicators import Indicator, resolve
from trendcast.features.labels import NO_LABEL, LabelMode, check_universe, cross_sectional_labels


@dataclass(frozen=True)
class WindowSet:
    """Samples over a shared row matrix. Subsets (`take`) share the rows; scaling returns a new row matrix."""

    rows: np.ndarray  # (n_rows, n_features) float32, unscaled unless a scaler made this set
    row_dates: np.ndarray  # (n_rows,) datetime64[ns]
    end_rows: np.ndarray  # (n_samples,) int64, row index of each window's last step
    labels: np.ndarray  # (n_samples,) int64 in {0, 1, 2}
    forward_returns: np.ndarray  # (n_samples,) float64
    tickers: np.ndarray  # (n_samples,) str
    dates: np.ndarray  # (n_samples,) datetime64[ns], the date of the window's last step (signal date)
    feature_names: tuple[str, ...]
    window: int
    horizon: int

    def __len__(self) -> int:
        return len(self.end_rows)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def take(self, index: np.ndarray) -> WindowSet:
        """The samples at `index` (bool mask or positions), sharing the same rows."""
        return replace(
            self,
            end_rows=self.end_rows[index],
            labels=self.labels[index],
            forward_returns=self.forward_returns[index],
            tickers=self.tickers[index],
            dates=self.dates[index],
        )

    def windows(self, index: np.ndarray | slice | None = None) -> np.ndarray:
        """(k, window, n_features) float32 windows for the samples at `index` (all when None)."""
        ends = self.end_rows if index is None else self.end_rows[index]
        return window_view(self.rows, self.window)[ends - (self.window - 1)]  # (k, window, n_features), a copy

    def last_step(self) -> np.ndarray:
        """(n_samples, n_features): the features on each signal date (for tabular baselines)."""
        return self.rows[self.end_rows]

    def rows_used(self) -> np.ndarray:
        """Sorted unique row indices that any sample's window touches.

        A difference array over the rows (+1 where a window starts, -1 just past where it ends, running sum > 0)
        instead of an (n_samples x window) index array: memory grows with the rows, not with windows x samples."""
        n_rows = len(self.rows)
        if len(self.end_rows) == 0:
            return np.zeros(0, dtype=np.int64)
        opened = np.bincount(self.end_rows - self.window + 1, minlength=n_rows + 1)
        closed = np.bincount(self.end_rows + 1, minlength=n_rows + 1)
        return np.flatnonzero(np.cumsum(opened[:n_rows] - closed[:n_rows]) > 0)

    def frame(self) -> pd.DataFrame:
        """Sample index as a frame: ticker, date, label, forward_return."""
        return pd.DataFrame(
            {"ticker": self.tickers, "date": self.dates, "label": self.labels, "forward_return": self.forward_returns}
        )


def ticker_column(ticker: str, n: int) -> np.ndarray:
    """(n,) object array whose every item is the one `ticker` string (np.full would make n string copies)."""
    column = np.empty(n, dtype=object)
    column.fill(ticker)
    return column


def window_view(rows: np.ndarray, window: int) -> np.ndarray:
    """A read-only (n_rows - window + 1, window, n_features) view of `rows` whose item i is rows[i : i + window]:
    no copy. Each window is one contiguous block of the row matrix, so gathering k windows from this view copies k
    blocks (as fast as indexing materialised windows) instead of k x window single rows."""
    n_rows, n_features = rows.shape
    if n_rows < window:
        return np.empty((0, window, n_features), dtype=rows.dtype)
    row_stride, column_stride = rows.strides
    shape = (n_rows - window + 1, window, n_features)
    return as_strided(rows, shape=shape, strides=(row_stride, row_stride, column_stride), writeable=False)


def valid_ends(finite: np.ndarray, labels: np.ndarray | None, window: int) -> np.ndarray:
    """Bool per row of one ticker: a sample may end there. `finite[i]`: every feature of row i is finite (as
    float32, the dtype the windows have); `labels`: the row's label, or None to keep unlabelled rows (live
    prediction). The one rule shared by `stack_windows` and the feature store, so both give the same samples."""
    ok = np.zeros(len(finite), dtype=bool)
    if len(finite) >= window:
        ok[window - 1 :] = sliding_window_view(finite, window).all(axis=1)  # window ending at row window-1+i
    return ok if labels is None else ok & (labels != NO_LABEL)


def cross_sectional_frames(frames: list[TickerFrame]) -> list[TickerFrame]:
    """The frames with their labels replaced by `cross_sectional_labels` over all their rows (one universe)."""
    if not frames:
        return frames
    dates = np.concatenate([frame.features.index.to_numpy() for frame in frames])
    labels = cross_sectional_labels(dates, np.concatenate([frame.forward_returns for frame in frames]))
    bounds = np.cumsum([len(frame.forward_returns) for frame in frames])[:-1]
    return [replace(frame, labels=part) for frame, part in zip(frames, np.split(labels, bounds), strict=True)]


def stack_windows(
    frames: Iterable[TickerFrame],
    window: int,
    horizon: int,
    *,
    require_label: bool = True,
    label_mode: LabelMode = "absolute",
) -> WindowSet:
    """Stack per-ticker frames into one WindowSet. With require_label=False, unlabelled recent dates are kept
    (label -1), which is what live prediction needs. With label_mode="cross_sectional" the frames' labels are
    replaced by relative labels over all of `frames` (`cross_sectional_frames`)."""
    if label_mode == "cross_sectional":
        frames = cross_sectional_frames(list(frames))
        if require_label:
            check_universe(label_mode, len(frames))
    rows, row_dates, ends, labels, fwds, tickers, dates = [], [], [], [], [], [], []
    offset = 0
    names: tuple[str, ...] = ()
    for frame in frames:
        names = tuple(frame.features.columns)
        values = frame.features.to_numpy(dtype=np.float32)
        finite = np.isfinite(values).all(axis=1)
        idx = np.flatnonzero(valid_ends(finite, frame.labels if require_label else None, window))
        rows.append(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0))
        row_dates.append(frame.features.index.to_numpy())
        ends.append(idx + offset)
        labels.append(frame.labels[idx])
        fwds.append(frame.forward_returns[idx])
        tickers.append(ticker_column(frame.ticker, len(idx)))
        dates.append(frame.features.index.to_numpy()[idx])
        offset += len(values)
    if not rows:
        raise ValueError("no tickers to build windows from")
    return WindowSet(
        rows=np.concatenate(rows),
        row_dates=np.concatenate(row_dates),
        end_rows=np.concatenate(ends).astype(np.int64),
        labels=np.concatenate(labels).astype(np.int64),
        forward_returns=np.concatenate(fwds),
        tickers=np.concatenate(tickers),
        dates=np.concatenate(dates),
        feature_names=names,
        window=window,
        horizon=horizon,
    )


def build_window_set(
    bars: pd.DataFrame,
    *,
    window: int,
    labels: LabelConfig,
    features: list[str] | None = None,
    progress: bool = False,
    require_label: bool = True,
) -> WindowSet:
    """Long bars of one or more tickers -> WindowSet (features, labels and windows in one call)."""
    indicators: list[Indicator] = resolve(features)
    groups = list(bars.groupby("ticker", sort=True))
    frames = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("features", total=len(groups))
        for ticker, group in groups:
            frames.append(build_ticker_frame(str(ticker), group, labels, indicators))
            bar.advance(task)
    return stack_windows(frames, window, labels.horizon, require_label=require_label, label_mode=labels.mode)
