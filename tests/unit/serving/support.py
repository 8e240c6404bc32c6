"""Small real models and stores for the serving tests (unit and integration share them).

`tiny_model_dir` trains a real model (logistic regression, or a Bi-LSTM with 4 units) on planted-signal bars with
four features and a 5-day window, saves it with `model.save()` and, for the Bi-LSTM, exports ONNX beside it. So the
service is tested against the same files production loads, in well under a second for logreg.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trendcast.config import BiLSTMConfig, ExperimentConfig, LabelConfig
from trendcast.data.store import BarStore
from trendcast.data.synthetic import planted_signal_bars
from trendcast.features.windows import build_window_set
from trendcast.models.base import DirectionModel
from trendcast.models.registry import create_model

FEATURES = ["ret_1", "ret_5", "rsi_14", "volatility_10"]
WINDOW = 5
TICKERS = ["SIG000", "SIG001"]
START = "2015-01-05"  # first bar date of the synthetic bars


def tiny_bars(n_days: int = 260, seed: int = 3) -> pd.DataFrame:
    return planted_signal_bars(n_tickers=len(TICKERS), n_days=n_days, seed=seed, start=START)


def tiny_config(seed: int = 0) -> ExperimentConfig:
    bilstm = BiLSTMConfig(hidden1=4, hidden2=4, attention_dim=4, dense=4, epochs=1, batch_size=64)
    return ExperimentConfig(window=WINDOW, features=FEATURES, labels=LabelConfig(), bilstm=bilstm, seed=seed)


def fit_tiny_model(kind: str = "logreg", seed: int = 0, bars: pd.DataFrame | None = None) -> DirectionModel:
    config = tiny_config(seed)
    data = build_window_set(
        tiny_bars() if bars is None else bars, window=WINDOW, labels=config.labels, features=FEATURES
    )
    options = {"threads": 1, "progress": False} if kind == "bilstm" else {}
    return create_model(kind, config, **options).fit(data)


def tiny_model_dir(
    folder: Path,
    kind: str = "logreg",
    seed: int = 0,
    onnx: bool = True,
    metrics: str | None = '{"accuracy": 0.41, "log_loss": 1.05}',
) -> Path:
    model = fit_tiny_model(kind, seed)
    model.save(folder)
    if metrics is not None:
        (folder / "metrics.json").write_text(metrics)
    if kind == "bilstm" and onnx:
        from trendcast.models.onnx_export import export_onnx

        export_onnx(model, folder / "model.onnx")  # type: ignore[arg-type]
    return folder


def filled_store(url: str, bars: pd.DataFrame | None = None) -> BarStore:
    store = BarStore(url)
    store.upsert(tiny_bars() if bars is None else bars)
    return store


def evaluated_model_dir(folder: Path, kind: str = "logreg") -> Path:
    """A bundle as training writes it: the model fitted on every tiny sample, with the walk-forward out-of-sample
    predictions of its kind (3 folds beside the majority and momentum baselines) and the report with its decision."""
    from trendcast.config import GateConfig, WalkForwardConfig
    from trendcast.evaluation.walk_forward import run_walk_forward
    from trendcast.models.bundle import write_bundle
    from trendcast.pipelines.retrain import decide
    from trendcast.pipelines.train import build_report, sanitise

    config = tiny_config().model_copy(
        update={"walk_forward": WalkForwardConfig(folds=3, min_train_fraction=0.5), "gates": GateConfig(n_boot=100)}
    )
    ws = build_window_set(tiny_bars(), window=WINDOW, labels=config.labels, features=FEATURES)
    result = run_walk_forward(ws, [kind, "majority", "momentum"], config, progress=False)
    report = sanitise(build_report(ws, result, config, primary=kind, n_boot=100))
    report["decision"] = sanitise(decide(result.predictions, {}, [kind], config.gates).to_json())
    model = create_model(kind, config).fit(ws)
    predictions = result.predictions[kind]
    return write_bundle(model, ws, folder, background_size=16, predictions=predictions, report=report)
