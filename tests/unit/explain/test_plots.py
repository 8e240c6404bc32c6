"""Every plot writes a real PNG (Agg, no display), with the content it claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.image import imread

from trendcast.explain.attention_weights import attention_matrix
from trendcast.explain.explanation import explain_sample
from trendcast.explain.importance import compute_attributions, importance_table
from trendcast.explain.plots import plot_explanation, save_explanation_plots
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.bilstm_attention import BiLSTMModel

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and imread(path).shape[0] > 50


def test_all_plots_for_the_bilstm(
    bilstm: DirectionModel, background: np.ndarray, planted: tuple[WindowSet, WindowSet], tmp_path: Path
) -> None:
    assert isinstance(bilstm, BiLSTMModel)
    test = planted[1]
    explanation = explain_sample(bilstm, test, 1, background=background)
    attributions = compute_attributions(bilstm, test, max_samples=20, background=background)
    matrix = attention_matrix(bilstm, test, max_samples=30)
    assert matrix.shape == (30, bilstm.window) and np.allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
    paths = save_explanation_plots(
        explanation,
        tmp_path / "plots",
        attributions=attributions,
        importance=importance_table(attributions),
        attention_matrix=matrix,
    )
    assert [p.name for p in paths] == [
        "waterfall.png",
        "attention.png",
        "importance.png",
        "beeswarm.png",
        "attention_heatmap.png",
    ]
    assert all(_is_png(p) for p in paths)


def test_combined_plot_without_attention(
    lightgbm_model: DirectionModel, planted: tuple[WindowSet, WindowSet], tmp_path: Path
) -> None:
    explanation = explain_sample(lightgbm_model, planted[1], 0)
    path = plot_explanation(explanation, tmp_path / "deep" / "why.png")
    assert _is_png(path)
    assert [p.name for p in save_explanation_plots(explanation, tmp_path)] == ["waterfall.png"]
