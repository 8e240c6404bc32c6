"""Windows of `window` steps x all features, stacked across tickers, without copying the feature rows.

A `WindowSet` keeps one float32 row matrix (all tickers' feature rows, ticker by ticker, time-ordered) and, per
sample, the row index where its window ends. `windows(idx)` materialises (k, window, n_features) on demand, so a
505-ticker universe does not need 6 GB of overlapping copies. Every sample keeps its (ticker, date), label and
forward return.

A sample at date t exists when: its `window` rows t-window+1..t are consecutive rows of one ticker, every feature in
them is finite, and its label is known (t + horizon inside the data).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from rich.progress import Progress

from trendcast.config import LabelConfig
from trendcast.features.feature_set import TickerFrame, build_ticker_frame
from trendcast.features.indicators import Indicator, resolve
from trendcast.features.labels import NO_LABEL


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
        offsets = np.arange(-self.window + 1, 1)
        return self.rows[ends[:, None] + offsets[None, :]]  # (k, window, n_features)

    def last_step(self) -> np.ndarray:
        """(n_samples, n_features): the features on each signal date (for tabular baselines)."""
        return self.rows[self.end_rows]

    def rows_used(self) -> np.ndarray:
        """Sorted unique row indices that any sample's window touches."""
        offsets = np.arange(-self.window + 1, 1)
        return np.unique((self.end_rows[:, None] + offsets[None, :]).ravel())

    def frame(self) -> pd.DataFrame:
        """Sample index as a frame: ticker, date, label, forward_return."""
        return pd.DataFrame(
            {"ticker": self.tickers, "date": self.dates, "label": self.labels, "forward_return": self.forward_returns}
        )


def _valid_ends(frame: TickerFrame, window: int) -> np.ndarray:
    finite = np.isfinite(frame.features.to_numpy()).all(axis=1)
    if len(finite) < window:
        return np.zeros(0, dtype=bool)
    full = sliding_window_view(finite, window).all(axis=1)  # window ending at row window-1+i
    ok = np.zeros(len(finite), dtype=bool)
    ok[window - 1 :] = full
    return ok & (frame.labels != NO_LABEL)


def stack_windows(frames: Iterable[TickerFrame], window: int, horizon: int, *, require_label: bool = True) -> WindowSet:
    """Stack per-ticker frames into one WindowSet. With require_label=False, unlabelled recent dates are kept
    (label -1), which is what live prediction needs."""
    rows, row_dates, ends, labels, fwds, tickers, dates = [], [], [], [], [], [], []
    offset = 0
    names: tuple[str, ...] = ()
    for frame in frames:
        names = tuple(frame.features.columns)
        values = frame.features.to_numpy(dtype=np.float32)
        ok = _valid_ends(frame, window) if require_label else _valid_windows(frame, window)
        idx = np.flatnonzero(ok)
        rows.append(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0))
        row_dates.append(frame.features.index.to_numpy())
        ends.append(idx + offset)
        labels.append(frame.labels[idx])
        fwds.append(frame.forward_returns[idx])
        tickers.append(np.full(len(idx), frame.ticker, dtype=object))
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


def _valid_windows(frame: TickerFrame, window: int) -> np.ndarray:
    no_label = TickerFrame(
        frame.ticker, frame.features, np.zeros_like(frame.labels), frame.forward_returns, frame.close
    )
    return _valid_ends(no_label, window)


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
    return stack_windows(frames, window, labels.horizon, require_label=require_label)
