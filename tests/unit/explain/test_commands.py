"""`trendcast explain`: the window it rebuilds from the store equals the training pipeline's, and it prints and plots.

The champion is faked by putting a stand-in `trendcast.tracking` module in sys.modules (no MLflow needed).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from trendcast.config import ExperimentConfig, LabelConfig, LightGBMConfig
from trendcast.data.store import BarStore
from trendcast.data.synthetic import planted_signal_bars
from trendcast.errors import InsufficientHistoryError
from trendcast.explain import commands
from trendcast.explain.shap_values import background_from_training, save_background
from trendcast.features.windows import build_window_set
from trendcast.models.base import DirectionModel
from trendcast.models.bundle import ModelBundle
from trendcast.models.registry import create_model

FEATURES = ["ret_1", "rsi_14", "volatility_20", "sma_ratio_20", "volume_z_20"]
WINDOW = 8


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return planted_signal_bars(n_tickers=2, n_days=260, seed=7)


@pytest.fixture(scope="module")
def trained(bars: pd.DataFrame) -> DirectionModel:
    ws = build_window_set(bars, window=WINDOW, labels=LabelConfig(), features=FEATURES)
    config = ExperimentConfig(
        window=WINDOW, features=FEATURES, lightgbm=LightGBMConfig(n_estimators=20, min_child_samples=10)
    )
    return create_model("lightgbm", config, threads=1).fit(ws)


def test_window_from_bars_equals_the_window_set_rows(trained: DirectionModel, bars: pd.DataFrame) -> None:
    live = build_window_set(bars, window=WINDOW, labels=LabelConfig(), features=FEATURES, require_label=False)
    mine = live.take(live.tickers == "SIG001")
    i = len(mine) - 40
    day = str(pd.Timestamp(mine.dates[i]).date())
    window, dates = commands.window_from_bars(trained, bars, "SIG001", day)
    assert np.array_equal(window, mine.windows(np.array([i]))[0])
    assert dates[-1] == pd.Timestamp(mine.dates[i]) and len(dates) == WINDOW
    with pytest.raises(InsufficientHistoryError):
        commands.window_from_bars(trained, bars, "SIG001", str(bars["date"].iloc[10].date()))


def test_explain_command_prints_and_plots(
    trained: DirectionModel, bars: pd.DataFrame, tmp_settings_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = BarStore(f"sqlite:///{tmp_settings_env / 'trendcast.db'}")
    store.upsert(bars)
    store.close()
    ws = build_window_set(bars, window=WINDOW, labels=LabelConfig(), features=FEATURES)
    save_background(tmp_path / "model", background_from_training(trained, ws, size=8))
    fake = types.ModuleType("trendcast.tracking")
    bundle = ModelBundle(trained, tmp_path / "model", "trendcast-direction", "1", "champion")
    fake.load_champion = lambda settings: bundle  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trendcast.tracking", fake)
    recorder = Console(record=True, width=200)
    monkeypatch.setattr(commands, "console", recorder)

    day = str(bars["date"].iloc[200].date())
    commands.explain("sig000", date=day, top=3, plot=tmp_path / "why.png")
    text = recorder.export_text()
    assert f"SIG000 {day}" in text and "Top features" in text and "tree_shap" in text
    assert (tmp_path / "why.png").read_bytes()[:4] == b"\x89PNG"
    window, dates = commands.window_from_bars(trained, bars, "SIG000", day)
    from trendcast.explain.explanation import explain_window

    expected = explain_window(trained, window, dates, "SIG000", 3)
    assert expected.sentence in text.replace("\n", " ")
