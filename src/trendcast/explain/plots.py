"""PNG plots of explanations, drawn on matplotlib `Figure` objects (Agg, no pyplot state, safe in a server thread).

- `plot_importance`: horizontal bars of mean |attribution| per feature, coloured by indicator group;
- `plot_attention`: a strip over one window's dates, or a heatmap of steps x samples;
- `plot_beeswarm`: per-sample attributions per feature, coloured by the feature's raw value (our own scatter:
  shap's plotting draws on pyplot's global figure and warns under matplotlib 3.11);
- `plot_waterfall`: base value -> each top feature's contribution -> the prediction's output;
- `plot_explanation`: waterfall above the attention strip (what `trendcast explain --plot` writes);
- `save_explanation_plots`: all that apply, into one folder.

`Figure.savefig` renders PNG with the Agg canvas whatever the global backend is, so this module never switches it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from trendcast.config import CLASS_NAMES
from trendcast.explain.explanation import Explanation
from trendcast.explain.importance import SampleAttributions
from trendcast.features.indicators import BY_NAME

GROUP_COLOURS = {
    "trend": "#1f77b4",
    "momentum": "#ff7f0e",
    "volatility": "#2ca02c",
    "volume": "#9467bd",
    "returns": "#d62728",
    "other": "#7f7f7f",
}
UP_COLOUR, DOWN_COLOUR = "#d62728", "#1f77b4"


def _save(figure: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110, bbox_inches="tight")
    return out


def plot_importance(table: pd.DataFrame, path: str | Path, top: int = 20) -> Path:
    """Bars of `mean_abs` for the `top` features of an importance table (`global_importance`)."""
    rows = table.head(top).iloc[::-1]
    figure = Figure(figsize=(7, 0.3 * len(rows) + 1.2))
    ax = figure.add_subplot()
    ax.barh(rows["label"], rows["mean_abs"], color=[GROUP_COLOURS.get(g, "#7f7f7f") for g in rows["group"]])
    ax.set_xlabel("mean |attribution|")
    ax.set_title("Global feature importance")
    groups = dict.fromkeys(rows["group"])
    ax.legend(
        handles=[Patch(color=GROUP_COLOURS.get(g, "#7f7f7f"), label=g) for g in groups], loc="lower right", fontsize=8
    )
    return _save(figure, path)


def _attention_axes(ax: Axes, weights: np.ndarray, dates: list[pd.Timestamp] | None) -> None:
    matrix = weights[None, :] if weights.ndim == 1 else weights
    image = ax.imshow(matrix, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label="attention")
    ax.set_xlabel("day in window (0 = signal date)" if dates is None else "date (last = signal date)")
    window = matrix.shape[1]
    ticks = np.arange(window - 1, -1, -max(1, -(-window // 8)))[::-1]  # <= 8 ticks, the signal date always one
    ax.set_xticks(ticks)
    if dates is not None:
        ax.set_xticklabels([pd.Timestamp(dates[i]).strftime("%Y-%m-%d") for i in ticks], rotation=45, ha="right")
    else:
        ax.set_xticklabels([str(i - window + 1) for i in ticks])
    if weights.ndim == 1:
        ax.set_yticks([])
    else:
        ax.set_ylabel("sample")


def plot_attention(
    weights: np.ndarray,
    path: str | Path,
    dates: list[pd.Timestamp] | None = None,
    title: str = "Attention over the window",
) -> Path:
    """A strip for one prediction's (window,) weights, or a heatmap for (samples, window)."""
    figure = Figure(figsize=(8, 1.8 if weights.ndim == 1 else 4.5))
    ax = figure.add_subplot()
    _attention_axes(ax, np.asarray(weights, dtype=np.float64), dates)
    ax.set_title(title)
    return _save(figure, path)


def plot_beeswarm(attributions: SampleAttributions, path: str | Path, top: int = 15, seed: int = 0) -> Path:
    """Each dot a sample: x its attribution, row its feature, colour its raw value's rank within the feature."""
    contributions = attributions.batch.features
    order = np.argsort(-np.abs(contributions).mean(axis=0))[:top][::-1]
    rng = np.random.default_rng(seed)
    figure = Figure(figsize=(7, 0.35 * len(order) + 1.2))
    ax = figure.add_subplot()
    for row, j in enumerate(order):
        values = attributions.values[:, j]
        colour = pd.Series(values).rank(pct=True).to_numpy()  # 0 = lowest value of this feature, 1 = highest
        jitter = rng.uniform(-0.3, 0.3, len(values))
        points = ax.scatter(contributions[:, j], row + jitter, c=colour, cmap="coolwarm", vmin=0, vmax=1, s=8)
    ax.set_yticks(range(len(order)))
    names = attributions.feature_names
    ax.set_yticklabels([BY_NAME[names[j]].label if names[j] in BY_NAME else names[j] for j in order])
    ax.axvline(0, color="grey", lw=0.8)
    targets = np.unique(attributions.batch.targets)
    towards = f"class {CLASS_NAMES[int(targets[0])]}" if len(targets) == 1 else "each sample's predicted class"
    ax.set_xlabel(f"attribution towards {towards} ({attributions.batch.output_space})")
    figure.colorbar(points, ax=ax, label="feature value (rank: low -> high)")
    ax.set_title("Attributions per sample")
    return _save(figure, path)


def _waterfall_steps(explanation: Explanation) -> list[tuple[str, float]]:
    """The top features (label = value, contribution), then all other features summed into one bar."""
    steps = [(f"{f.label} = {f.value_text}", f.contribution) for f in explanation.top_features]
    shown = {f.feature for f in explanation.top_features}
    rest = [value for name, value in explanation.contributions.items() if name not in shown]
    if rest:
        steps.append((f"{len(rest)} other feature{'s' if len(rest) > 1 else ''}", float(sum(rest))))
    return steps


def _waterfall_axes(ax: Axes, explanation: Explanation) -> None:
    steps = _waterfall_steps(explanation)
    start = explanation.base_value
    for row, (_, value) in enumerate(steps):
        ax.barh(row, value, left=start, color=UP_COLOUR if value > 0 else DOWN_COLOUR)
        ax.text(start + value, row, f" {value:+.3f}", va="center", fontsize=8)
        start += value
    ax.set_yticks(range(len(steps)))
    ax.set_yticklabels([label for label, _ in steps])
    ax.invert_yaxis()
    ax.axvline(explanation.base_value, color="grey", ls="--", lw=0.8, label=f"base {explanation.base_value:.3f}")
    ax.axvline(explanation.output_value, color="black", lw=0.8, label=f"output {explanation.output_value:.3f}")
    ax.legend(loc="best", fontsize=8)
    ax.set_xlabel(f"{explanation.output_space} of {explanation.predicted_label}")


def plot_waterfall(explanation: Explanation, path: str | Path) -> Path:
    """Base value, then each top feature's contribution (the rest summed), ending at the explained output."""
    figure = Figure(figsize=(8, 0.4 * (len(explanation.top_features) + 2) + 1.5))
    ax = figure.add_subplot()
    _waterfall_axes(ax, explanation)
    ax.set_title(explanation.sentence, fontsize=8, wrap=True)
    return _save(figure, path)


def _attention_of(explanation: Explanation) -> tuple[np.ndarray, list[pd.Timestamp] | None]:
    steps = explanation.attention or ()
    dates = [a.date for a in steps if a.date is not None]
    return np.array([a.weight for a in steps]), dates if len(dates) == len(steps) else None


def plot_explanation(explanation: Explanation, path: str | Path) -> Path:
    """The waterfall and, for sequence models, the attention strip below it, in one PNG."""
    has_attention = explanation.attention is not None
    figure = Figure(figsize=(9, 0.4 * (len(explanation.top_features) + 2) + (4.0 if has_attention else 1.5)))
    axes = figure.subplots(
        2 if has_attention else 1, 1, squeeze=False, gridspec_kw={"height_ratios": [3, 1]} if has_attention else None
    )[:, 0]
    _waterfall_axes(axes[0], explanation)
    axes[0].set_title(explanation.sentence, fontsize=8, wrap=True)
    if explanation.attention is not None:
        _attention_axes(axes[1], *_attention_of(explanation))
    figure.tight_layout()
    return _save(figure, path)


def save_explanation_plots(
    explanation: Explanation,
    folder: str | Path,
    *,
    attributions: SampleAttributions | None = None,
    importance: pd.DataFrame | None = None,
    attention_matrix: np.ndarray | None = None,
) -> list[Path]:
    """Write every plot that applies into `folder`: waterfall, attention strip, plus importance bars, beeswarm and
    attention heatmap when their data is given. Returns the files written."""
    out = Path(folder)
    paths = [plot_waterfall(explanation, out / "waterfall.png")]
    if explanation.attention is not None:
        weights, dates = _attention_of(explanation)
        paths.append(plot_attention(weights, out / "attention.png", dates))
    if importance is not None:
        paths.append(plot_importance(importance, out / "importance.png"))
    if attributions is not None:
        paths.append(plot_beeswarm(attributions, out / "beeswarm.png"))
    if attention_matrix is not None:
        paths.append(plot_attention(attention_matrix, out / "attention_heatmap.png", title="Attention per sample"))
    return paths
