"""Fixtures for the explanation tests: a WindowSet with a planted signal and tiny models trained on it.

The label is the tercile of one feature (`ret_1`) on the signal date plus noise; no other feature carries anything.
Models are trained once per session (a few seconds) with one thread.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendcast.config import BiLSTMConfig, ExperimentConfig, LightGBMConfig
from trendcast.explain.shap_values import background_from_training
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.registry import create_model

FEATURES = ("rsi_14", "ret_1", "volatility_20", "volume_z_20", "sma_ratio_20", "cmf_20")
SIGNAL = "ret_1"
# raw (unscaled) centre and spread of each feature, so the displayed values look like real indicators
CENTRE = np.array([50.0, 0.0005, 0.015, 0.0, 0.0, 0.0])
SPREAD = np.array([12.0, 0.012, 0.004, 1.0, 0.03, 0.15])
NOISE = 0.6  # label noise: the label is the tercile of (signal + NOISE * noise), so the best model is smooth


def planted_window_set(n_samples: int = 1200, window: int = 10, seed: int = 0, ticker: str = "SIG") -> WindowSet:
    rng = np.random.default_rng(seed)
    n_rows = n_samples + window - 1
    z = rng.normal(size=(n_rows, len(FEATURES)))
    rows = (CENTRE + SPREAD * z).astype(np.float32)
    end_rows = np.arange(window - 1, n_rows, dtype=np.int64)
    signal = z[end_rows, FEATURES.index(SIGNAL)]
    noisy = signal + NOISE * rng.normal(size=n_samples)
    low, high = np.quantile(noisy, [1 / 3, 2 / 3])
    labels = np.where(noisy > high, 2, np.where(noisy < low, 0, 1)).astype(np.int64)
    row_dates = pd.bdate_range("2015-01-01", periods=n_rows).to_numpy()
    return WindowSet(
        rows=rows,
        row_dates=row_dates,
        end_rows=end_rows,
        labels=labels,
        forward_returns=signal * 0.01,
        tickers=np.full(n_samples, ticker, dtype=object),
        dates=row_dates[end_rows],
        feature_names=FEATURES,
        window=window,
        horizon=1,
    )


def split(ws: WindowSet, train_fraction: float = 0.8) -> tuple[WindowSet, WindowSet]:
    cut = int(len(ws) * train_fraction)
    return ws.take(np.arange(cut)), ws.take(np.arange(cut + 1, len(ws)))


def tiny_config(window: int = 10) -> ExperimentConfig:
    return ExperimentConfig(
        window=window,
        bilstm=BiLSTMConfig(
            hidden1=16,
            hidden2=8,
            attention_dim=8,
            dense=8,
            dropout=0.0,
            learning_rate=1e-2,
            batch_size=64,
            epochs=6,
            patience=3,
        ),
        lightgbm=LightGBMConfig(n_estimators=40, learning_rate=0.1, num_leaves=7, min_child_samples=20),
    )


@pytest.fixture(scope="session")
def planted() -> tuple[WindowSet, WindowSet]:
    return split(planted_window_set())


@pytest.fixture(scope="session")
def bilstm(planted: tuple[WindowSet, WindowSet]) -> DirectionModel:
    return create_model("bilstm", tiny_config(), threads=1, progress=False).fit(planted[0])


@pytest.fixture(scope="session")
def lightgbm_model(planted: tuple[WindowSet, WindowSet]) -> DirectionModel:
    return create_model("lightgbm", tiny_config(), threads=1).fit(planted[0])


@pytest.fixture(scope="session")
def background(bilstm: DirectionModel, planted: tuple[WindowSet, WindowSet]) -> np.ndarray:
    return background_from_training(bilstm, planted[0], size=16, seed=0)
