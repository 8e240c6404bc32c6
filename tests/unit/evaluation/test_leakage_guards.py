"""Leakage guards: on unpredictable data every model sits at chance; on a planted signal the real models find it.

If any of these fail, the pipeline is leaking the future (or has lost the ability to learn).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendcast.config import BiLSTMConfig, ExperimentConfig, LabelConfig, WalkForwardConfig
from trendcast.data.synthetic import planted_signal_bars, random_walk_bars
from trendcast.evaluation.metrics import classification_metrics, permutation_accuracy_null
from trendcast.evaluation.walk_forward import run_walk_forward
from trendcast.features.windows import WindowSet, build_window_set
from trendcast.models.registry import create_model

MODELS = ["bilstm", "lightgbm", "logreg", "momentum", "majority"]
CONFIG = ExperimentConfig(
    window=15,
    labels=LabelConfig(horizon=1, threshold=0.0),  # two effective classes: Up vs Down
    walk_forward=WalkForwardConfig(folds=3, min_train_fraction=0.5),
    bilstm=BiLSTMConfig(
        hidden1=12, hidden2=6, attention_dim=8, dense=8, epochs=12, batch_size=64, patience=4, learning_rate=3e-3
    ),
)


def _factory(name: str, config: ExperimentConfig):  # type: ignore[no-untyped-def]
    if name == "bilstm":
        return create_model(name, config, threads=1, progress=False)
    return create_model(name, config)


def _pooled(ws: WindowSet, models: list[str]) -> dict[str, pd.DataFrame]:
    return run_walk_forward(ws, models, CONFIG, progress=False, factory=_factory).predictions


def _chance_upper(frame: pd.DataFrame, alpha: float = 0.002) -> float:
    """Upper end of the band a no-skill predictor's accuracy falls in (rotation null of the same predictions).

    alpha=0.002 (two-sided 99.8%): five models are checked per universe, so the family-wise false alarm rate on
    honest data stays near 1% (Bonferroni)."""
    y = frame["label"].to_numpy()
    pred = frame[["p_down", "p_neutral", "p_up"]].to_numpy().argmax(axis=1)
    null = permutation_accuracy_null(y, pred, frame["date"].to_numpy(), n_perm=1000, alpha=alpha, seed=0)
    return float(null["null_high"])


@pytest.fixture(scope="module")
def random_walk() -> WindowSet:
    return build_window_set(random_walk_bars(n_tickers=10, n_days=600, seed=21), window=15, labels=CONFIG.labels)


@pytest.mark.slow
def test_every_model_is_at_chance_on_random_walks(random_walk: WindowSet) -> None:
    for name, frame in _pooled(random_walk, MODELS).items():
        m = classification_metrics(frame["label"].to_numpy(), frame[["p_down", "p_neutral", "p_up"]].to_numpy())
        assert m["accuracy"] <= _chance_upper(frame), (name, m["accuracy"])
        assert m["accuracy"] < 0.56, (name, m["accuracy"])
        if np.isfinite(m["auc_macro_ovr"]):
            assert m["auc_macro_ovr"] < 0.56, (name, m["auc_macro_ovr"])


@pytest.mark.slow
def test_shuffled_labels_leave_nothing_to_learn() -> None:
    ws = build_window_set(planted_signal_bars(n_tickers=6, n_days=500, seed=22), window=15, labels=CONFIG.labels)
    rng = np.random.default_rng(0)
    shuffled = WindowSet(**{**ws.__dict__, "labels": rng.permutation(ws.labels)})
    for name, frame in _pooled(shuffled, ["lightgbm", "logreg", "bilstm"]).items():
        m = classification_metrics(frame["label"].to_numpy(), frame[["p_down", "p_neutral", "p_up"]].to_numpy())
        assert m["accuracy"] < 0.56, (name, m["accuracy"])


@pytest.mark.slow
def test_planted_signal_is_found_by_the_bilstm_and_lightgbm() -> None:
    ws = build_window_set(
        planted_signal_bars(n_tickers=6, n_days=500, seed=23, phi=0.6), window=15, labels=CONFIG.labels
    )
    for name, frame in _pooled(ws, ["bilstm", "lightgbm"]).items():
        m = classification_metrics(frame["label"].to_numpy(), frame[["p_down", "p_neutral", "p_up"]].to_numpy())
        assert m["accuracy"] > max(_chance_upper(frame), 0.62), (name, m["accuracy"])
