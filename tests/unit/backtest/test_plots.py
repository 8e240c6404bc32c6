"""Charts draw the numbers they claim, PNGs are written, and the HTML report is self-contained and escaped."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix

from tests.unit.backtest._helpers import random_predictions
from trendcast.backtest import BacktestResult, run_backtest
from trendcast.backtest import metrics as m
from trendcast.data.synthetic import random_walk_bars
from trendcast.reporting import figures, render_report, save_figures, write_report
from trendcast.reporting.formatting import format_value
from trendcast.reporting.plots import (
    calibration_table,
    confusion_counts,
    equity_figure,
    monthly_heatmap_figure,
)


@pytest.fixture(scope="module")
def labelled() -> pd.DataFrame:
    bars = random_walk_bars(n_tickers=2, n_days=260, seed=41)
    predictions = random_predictions(bars, seed=42)
    rng = np.random.default_rng(43)
    predictions["label"] = rng.integers(0, 3, len(predictions))
    predictions.loc[predictions.index[-2:], "label"] = -1  # unknown labels are left out
    return predictions


@pytest.fixture(scope="module")
def result(labelled: pd.DataFrame) -> BacktestResult:
    bars = random_walk_bars(n_tickers=2, n_days=260, seed=41)
    return run_backtest(labelled, bars)


def test_figures_cover_performance_and_model_charts(result: BacktestResult, labelled: pd.DataFrame) -> None:
    names = [chart.name for chart in figures(result, labelled)]
    assert names == [
        "equity",
        "drawdown",
        "monthly_returns",
        "rolling_sharpe",
        "return_distribution",
        "confusion_matrix",
        "calibration",
    ]


def test_save_figures_writes_pngs(result: BacktestResult, labelled: pd.DataFrame, tmp_path: Path) -> None:
    paths = save_figures(result, labelled, tmp_path / "figures")
    assert [p.name for p in paths][:2] == ["equity.png", "drawdown.png"]
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_equity_figure_plots_the_equity_curves(result: BacktestResult) -> None:
    lines = equity_figure(result).axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), np.cumprod(1 + result.returns.to_numpy()))
    np.testing.assert_allclose(lines[1].get_ydata(), np.cumprod(1 + result.benchmark_returns.to_numpy()))


def test_monthly_heatmap_shows_compounded_months(result: BacktestResult) -> None:
    image = monthly_heatmap_figure(result).axes[0].get_images()[0].get_array()
    month = result.returns.loc[result.returns.index.to_period("M") == result.returns.index[40].to_period("M")]
    table = m.monthly_returns(result.returns)
    row, col = list(table.index).index(month.index[0].year), month.index[0].month - 1
    assert image[row, col] == pytest.approx((np.prod(1 + month.to_numpy()) - 1) * 100)


def test_confusion_counts_match_sklearn(labelled: pd.DataFrame) -> None:
    known = labelled.loc[labelled["label"] >= 0]
    predicted = np.argmax(known[["p_down", "p_neutral", "p_up"]].to_numpy(), axis=1)
    expected = confusion_matrix(known["label"], predicted, labels=[0, 1, 2])
    np.testing.assert_array_equal(confusion_counts(labelled), expected)


def test_calibration_matches_sklearn(labelled: pd.DataFrame) -> None:
    known = labelled.loc[labelled["label"] >= 0]
    table = calibration_table(labelled, bins=10)
    for index, (name, column) in enumerate(
        zip(("Down", "Neutral", "Up"), ("p_down", "p_neutral", "p_up"), strict=True)
    ):
        observed, predicted = calibration_curve(known["label"] == index, known[column], n_bins=10)
        part = table.loc[table["class"] == name]
        np.testing.assert_allclose(part["observed"], observed, atol=1e-12)
        np.testing.assert_allclose(part["mean_predicted"], predicted, atol=1e-12)
    assert table.groupby("class")["count"].sum().eq(len(known)).all()


def test_report_is_self_contained(result: BacktestResult, labelled: pd.DataFrame, tmp_path: Path) -> None:
    comparison = pd.DataFrame({"sharpe": [1.5, 0.3]}, index=pd.Index(["bilstm", "<b>evil</b>"], name="model"))
    path = write_report(
        result,
        labelled,
        tmp_path / "out" / "report.html",
        title="Run <42>",
        extra_tables={"Model comparison": comparison},
    )
    html = path.read_text(encoding="utf-8")
    assert len(re.findall(r'<img class="chart" src="data:image/png;base64,', html)) == 7
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<title>Run &lt;42&gt;</title>" in html
    assert "&lt;b&gt;evil&lt;/b&gt;" in html and "<b>evil</b>" not in html
    assert "Model comparison" in html
    sharpe = format_value(result.metrics["strategy"]["sharpe"])
    assert re.search(rf'id="metric-sharpe".*?{re.escape(sharpe)}', html, re.S)


def test_report_without_labels_says_why_model_charts_are_missing(
    result: BacktestResult, labelled: pd.DataFrame
) -> None:
    html = render_report(result, labelled.drop(columns="label"))
    assert html.count('<img class="chart"') == 5
    assert "no <code>label</code> column" in html


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (0.12345, "pct", "12.35%"),
        (1.5, "num", "1.50"),
        (12.0, "int", "12"),
        (float("nan"), "num", "–"),
        (float("inf"), "num", "∞"),
    ],
)
def test_format_value(value: float, kind: str, text: str) -> None:
    assert format_value(value, kind) == text
