"""Backtest and model charts as matplotlib Figures drawn on the Agg canvas (no pyplot, no display, thread-safe).

    equity           growth of 1 for the strategy and the buy-and-hold benchmark
    drawdown         distance below the running peak, both series
    monthly          calendar heatmap of the strategy's monthly returns
    rolling_sharpe   trailing 126-day Sharpe, both series
    distribution     histogram of daily returns, both series
    confusion        counts of true label vs predicted class (argmax of the probabilities)   needs `label`
    calibration      observed frequency of each class per bin of its predicted probability  needs `label`

`figures()` returns those that the inputs allow, in that order; `save_figures()` writes them as PNG files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from trendcast.backtest import metrics as m
from trendcast.backtest.engine import BacktestResult
from trendcast.config import CLASS_NAMES

STRATEGY_COLOR, BENCHMARK_COLOR = "#1f5fbf", "#8a8a8a"
ROLLING_WINDOW = 126
CALIBRATION_BINS = 10
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Chart:
    name: str  # file stem, e.g. "equity"
    title: str  # caption shown in the report
    figure: Figure


def _figure(width: float = 9.0, height: float = 4.0) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _both(result: BacktestResult) -> dict[str, tuple[pd.Series, str]]:
    return {"Strategy": (result.returns, STRATEGY_COLOR), "Buy & hold": (result.benchmark_returns, BENCHMARK_COLOR)}


# -- performance charts --------------------------------------------------------------------------------------------
def equity_figure(result: BacktestResult) -> Figure:
    figure, ax = _figure()
    for label, (returns, color) in _both(result).items():
        ax.plot(returns.index, m.equity_curve(returns), label=label, color=color, linewidth=1.4)
    ax.axhline(1.0, color="black", linewidth=0.6)
    ax.set(title="Equity curve (growth of 1, after costs)", ylabel="equity")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return figure


def drawdown_figure(result: BacktestResult) -> Figure:
    figure, ax = _figure(height=3.2)
    for label, (returns, color) in _both(result).items():
        ax.fill_between(returns.index, m.drawdown(returns) * 100, 0, label=label, color=color, alpha=0.35)
    ax.set(title="Drawdown", ylabel="% below peak")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return figure


def monthly_heatmap_figure(result: BacktestResult) -> Figure:
    table = m.monthly_returns(result.returns) * 100
    figure, ax = _figure(height=max(2.0, 0.45 * len(table) + 1.2))
    values = table.to_numpy(dtype=np.float64)
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    image = ax.imshow(values, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(table)), [str(year) for year in table.index])
    for (row, col), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(col, row, f"{value:.1f}", ha="center", va="center", fontsize=8)
    ax.set_title("Monthly returns of the strategy (%)")
    figure.colorbar(image, ax=ax, shrink=0.8)
    return figure


def rolling_sharpe_figure(result: BacktestResult, window: int = ROLLING_WINDOW) -> Figure:
    figure, ax = _figure(height=3.2)
    rf = result.config.risk_free_rate
    for label, (returns, color) in _both(result).items():
        ax.plot(returns.index, m.rolling_sharpe(returns, window, rf=rf), label=label, color=color, linewidth=1.2)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set(title=f"Rolling Sharpe ({window} days)", ylabel="Sharpe")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return figure


def distribution_figure(result: BacktestResult) -> Figure:
    figure, ax = _figure(height=3.2)
    both = _both(result)
    pooled = np.concatenate([returns.to_numpy() for returns, _ in both.values()]) * 100
    bins = np.histogram_bin_edges(pooled[np.isfinite(pooled)], bins=60).tolist()
    for label, (returns, color) in both.items():
        ax.hist(returns.to_numpy() * 100, bins=bins, label=label, color=color, alpha=0.55)
    ax.set(title="Distribution of daily returns", xlabel="daily return (%)", ylabel="days")
    ax.legend(loc="upper right")
    return figure


# -- model charts --------------------------------------------------------------------------------------------------
def _labelled(predictions: pd.DataFrame) -> pd.DataFrame:
    """Rows with a known label (0, 1, 2); labels of -1 or NaN are unknown."""
    labels = pd.to_numeric(predictions["label"], errors="coerce")
    return predictions.loc[labels.isin([0, 1, 2])].assign(label=labels.astype("Int64"))


def has_labels(predictions: pd.DataFrame | None) -> bool:
    return predictions is not None and "label" in predictions and len(_labelled(predictions)) > 0


def confusion_counts(predictions: pd.DataFrame) -> npt.NDArray[np.int64]:
    """3 x 3 counts: rows the true class, columns the predicted class (argmax of p_down, p_neutral, p_up)."""
    rows = _labelled(predictions)
    truth = rows["label"].to_numpy(dtype=np.int64)
    predicted = np.argmax(rows[["p_down", "p_neutral", "p_up"]].to_numpy(dtype=np.float64), axis=1)
    return np.bincount(truth * 3 + predicted, minlength=9).reshape(3, 3).astype(np.int64)


def calibration_table(predictions: pd.DataFrame, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Per class and probability bin (uniform in [0, 1]): mean predicted P(class), observed frequency, count.

    Bins follow sklearn's `calibration_curve(strategy="uniform")`; empty bins are left out.
    """
    rows = _labelled(predictions)
    truth = rows["label"].to_numpy(dtype=np.int64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    parts = []
    for index, column in enumerate(("p_down", "p_neutral", "p_up")):
        probability = rows[column].to_numpy(dtype=np.float64)
        bin_id = np.searchsorted(edges[1:-1], probability)
        count = np.bincount(bin_id, minlength=bins)
        predicted = np.bincount(bin_id, weights=probability, minlength=bins)
        observed = np.bincount(bin_id, weights=(truth == index).astype(np.float64), minlength=bins)
        keep = count > 0
        parts.append(
            pd.DataFrame(
                {
                    "class": CLASS_NAMES[index],
                    "bin": np.flatnonzero(keep),
                    "mean_predicted": predicted[keep] / count[keep],
                    "observed": observed[keep] / count[keep],
                    "count": count[keep],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def confusion_figure(predictions: pd.DataFrame) -> Figure:
    counts = confusion_counts(predictions)
    figure, ax = _figure(width=5.0, height=4.2)
    image = ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(3), CLASS_NAMES)
    ax.set_yticks(range(3), CLASS_NAMES)
    ax.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix (n={int(counts.sum())})")
    for (row, col), value in np.ndenumerate(counts):
        color = "white" if value > counts.max() / 2 else "black"
        ax.text(col, row, str(value), ha="center", va="center", color=color)
    figure.colorbar(image, ax=ax, shrink=0.8)
    return figure


def calibration_figure(predictions: pd.DataFrame, bins: int = CALIBRATION_BINS) -> Figure:
    table = calibration_table(predictions, bins)
    figure, ax = _figure(width=5.5, height=4.2)
    ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=0.8, label="perfectly calibrated")
    for name, color in zip(CLASS_NAMES, ("#c0392b", "#7f8c8d", "#27ae60"), strict=True):
        part = table.loc[table["class"] == name]
        ax.plot(part["mean_predicted"], part["observed"], marker="o", color=color, label=f"P({name})")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="mean predicted probability",
        ylabel="observed frequency",
        title="Calibration (reliability) of the probabilities",
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return figure


# -- collections -----------------------------------------------------------------------------------------------------
_PERFORMANCE: tuple[tuple[str, str, Callable[[BacktestResult], Figure]], ...] = (
    ("equity", "Equity curve vs buy-and-hold", equity_figure),
    ("drawdown", "Drawdown", drawdown_figure),
    ("monthly_returns", "Monthly returns", monthly_heatmap_figure),
    ("rolling_sharpe", "Rolling Sharpe", rolling_sharpe_figure),
    ("return_distribution", "Distribution of daily returns", distribution_figure),
)
_MODEL: tuple[tuple[str, str, Callable[[pd.DataFrame], Figure]], ...] = (
    ("confusion_matrix", "Confusion matrix", confusion_figure),
    ("calibration", "Calibration plot", calibration_figure),
)


def figures(result: BacktestResult, predictions: pd.DataFrame | None = None) -> list[Chart]:
    """Every chart the inputs allow; the model charts need predictions with a `label` column."""
    charts = [Chart(name, title, draw(result)) for name, title, draw in _PERFORMANCE]
    if predictions is not None and has_labels(predictions):
        charts += [Chart(name, title, draw(predictions)) for name, title, draw in _MODEL]
    return charts


def save_figures(result: BacktestResult, predictions: pd.DataFrame | None, folder: str | Path) -> list[Path]:
    """Write each chart as `<folder>/<name>.png` (e.g. for MLflow artifacts) and return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for chart in figures(result, predictions):
        path = folder / f"{chart.name}.png"
        chart.figure.savefig(path, format="png")
        paths.append(path)
    return paths
