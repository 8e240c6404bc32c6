"""The model bundle: the one saved-model folder, and the one loaded-model type that carries it.

A bundle folder holds everything a served, explained and monitored model needs:

    meta.json                  name, features, window, horizon, classes, scaler, trained-through, config; and
                               `quantization`, the int8 graph's agreement with float32 (QuantizationRecord)
    weights                    whatever the model saves (model.pt, model.txt, model.npz, ...)
    model.onnx                 the exported graph, for models served through ONNX Runtime (the Bi-LSTM)
    model.int8.onnx            its dynamic int8 copy, kept only when the record says `accepted`
                               (trendcast.models.quantize: checked on the last walk-forward test fold's windows)
    explain_background.npy     scaled training windows, the explainer's background (Settings.explain_background)
    drift_reference.npz        per-feature quantile bins, a sample of training rows, the predicted-class mix
    metrics.json               optional: numbers to show as the model's scores (TRENDCAST_MODEL_DIR folders)
    evaluation/predictions.parquet   optional: the walk-forward out-of-sample predictions of this model's kind
                               (the frame of trendcast.backtest.predictions), what the dashboard's history and
                               backtest show
    evaluation/report.json     optional: the training report (docs/report.md) with the promotion decision

`write_bundle` writes the folder once, at the end of training; `read_bundle` loads it into a `ModelBundle`, which
is what tracking (registry versions), serving (the loader) and explanations (the background) all pass around.
Bundles written before the evaluation files existed, and hand-made folders, load the same way: their
`evaluation_predictions()` and `evaluation_report()` are None.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from trendcast.errors import ModelError
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.quantize import QuantizationRecord

if TYPE_CHECKING:
    from trendcast.monitoring.drift import DriftReference

ONNX_FILE = "model.onnx"
META_FILE = "meta.json"
QUANTIZATION_KEY = "quantization"  # in meta.json
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "evaluation/predictions.parquet"
REPORT_FILE = "evaluation/report.json"
ONNX_MODELS = frozenset({"bilstm"})  # served through ONNX Runtime; the others answer faster in their own library
DRIFT_SAMPLE = 2000  # training rows kept in the drift reference
QUANTIZE_CHECK_MAX = 5000  # windows the int8 graph is compared on (a seeded sample of the check set)


@dataclass(frozen=True)
class ModelBundle:
    """A loaded model with where it came from: its folder, registry name, version, alias, run and scores."""

    model: DirectionModel
    folder: Path
    name: str
    version: str
    alias: str
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    quantization: QuantizationRecord | None = None  # meta.json's record of the int8 check, None without one

    @property
    def onnx_path(self) -> Path | None:
        path = self.folder / ONNX_FILE
        return path if path.is_file() else None

    @property
    def int8_path(self) -> Path | None:
        """The int8 graph when its record says it agrees with float32 (and the file is there), else None."""
        record = self.quantization
        if record is None or not record.accepted:
            return None
        path = self.folder / record.file
        return path if path.is_file() else None

    def background(self) -> np.ndarray | None:
        """The explainer background saved with the model (None: explanations use the median window)."""
        from trendcast.explain.shap_values import load_background

        return load_background(self.folder)

    def drift_reference(self) -> DriftReference | None:
        from trendcast.monitoring.drift import load_reference

        return load_reference(self.folder)

    def evaluation_predictions(self) -> pd.DataFrame | None:
        """The walk-forward out-of-sample predictions saved with the model (validated), or None without them."""
        from trendcast.backtest.predictions import load_predictions

        path = self.folder / PREDICTIONS_FILE
        return load_predictions(path) if path.is_file() else None

    def evaluation_report(self) -> dict[str, Any] | None:
        """The training report saved with the model, or None without one."""
        path = self.folder / REPORT_FILE
        if not path.is_file():
            return None
        report: dict[str, Any] = json.loads(path.read_text())
        return report


def write_bundle(
    model: DirectionModel,
    train: WindowSet,
    folder: Path,
    *,
    background_size: int,
    seed: int = 0,
    predictions: pd.DataFrame | None = None,
    report: Mapping[str, Any] | None = None,
    quantize_check: WindowSet | None = None,
) -> Path:
    """Save a fitted model with its ONNX export (where served that way), explainer background and drift reference,
    all drawn from `train`, the data it was fitted on; and, when given, the walk-forward out-of-sample
    `predictions` of the model's kind and the training `report` (see `write_evaluation`).

    With `quantize_check` (unscaled samples: training passes the last walk-forward test fold), an ONNX-served
    model also gets an int8 copy, compared with float32 on those windows through the model's scaler; meta.json
    records the comparison and the copy is kept only if accepted (trendcast.models.quantize)."""
    write_evaluation(folder, model.name, predictions, report)  # first: it refuses another kind's predictions
    model.save(folder)
    if model.name in ONNX_MODELS:
        from trendcast.models.onnx_export import export_onnx

        export_onnx(model, folder / ONNX_FILE)  # type: ignore[arg-type]
        if quantize_check is not None and len(quantize_check) > 0:
            _write_quantized(model, quantize_check, folder, seed)
    _write_background(model, train, folder, background_size, seed)
    _write_drift_reference(model, train, folder, seed)
    return folder


def write_evaluation(
    folder: Path, kind: str, predictions: pd.DataFrame | None, report: Mapping[str, Any] | None
) -> None:
    """evaluation/predictions.parquet and evaluation/report.json. The predictions must be those of the model kind
    `kind` only (a `model` column naming another kind is refused: the dashboard would show another model's record)."""
    if predictions is not None:
        if "model" in predictions and not (predictions["model"].astype(str) == kind).all():
            others = sorted(set(predictions["model"].astype(str)) - {kind})
            raise ModelError(
                f"the bundle of a {kind} model can only carry {kind} predictions, got rows of {', '.join(others)}; "
                f"pass walk_forward.predictions[{kind!r}]"
            )
        path = folder / PREDICTIONS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        predictions.to_parquet(path, index=False)
    if report is not None:
        path = folder / REPORT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dict(report), indent=2, allow_nan=False, default=_json_scalar))


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_quantized(model: DirectionModel, check: WindowSet, folder: Path, seed: int) -> None:
    """Quantise folder/model.onnx and record its agreement on (a seeded sample of at most QUANTIZE_CHECK_MAX of)
    the `check` samples, scaled like any input the model serves."""
    from trendcast.models.quantize import quantize_checked

    rng = np.random.default_rng(seed)
    sample = check.take(np.sort(rng.choice(len(check), size=min(QUANTIZE_CHECK_MAX, len(check)), replace=False)))
    unscaled = sample.windows()  # (n, window, n_features)
    scaled = model.scale_rows(unscaled.reshape(-1, unscaled.shape[2])).reshape(unscaled.shape)
    first, last = (str(pd.Timestamp(d).date()) for d in (check.dates.min(), check.dates.max()))
    source = f"{len(sample)} of the {len(check)} windows dated {first} to {last}"
    record_quantization(folder, quantize_checked(folder / ONNX_FILE, scaled, source=source))


def record_quantization(folder: Path, record: QuantizationRecord) -> None:
    """Keep `record` in the folder's meta.json, where `read_bundle` finds it (ModelBundle.quantization)."""
    meta_file = folder / META_FILE
    meta = json.loads(meta_file.read_text())
    meta[QUANTIZATION_KEY] = record.to_json()
    meta_file.write_text(json.dumps(meta, indent=2))


def _write_background(model: DirectionModel, train: WindowSet, folder: Path, size: int, seed: int) -> None:
    try:
        from trendcast.explain.shap_values import background_from_training, save_background
    except ImportError:  # explanations not installed in this build
        return
    save_background(folder, background_from_training(model, train, size=size, seed=seed))


def _write_drift_reference(model: DirectionModel, train: WindowSet, folder: Path, seed: int) -> None:
    """Scaled last-step feature rows of the training samples (the service sees scaled inputs) and the class mix the
    model predicts on a seeded sample of them."""
    from trendcast.monitoring.drift import build_reference, save_reference

    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(train), size=min(DRIFT_SAMPLE, len(train)), replace=False))
    rows = model.scale_rows(train.last_step())
    proba = model.predict_proba(train.take(picked))
    reference = build_reference(rows, model.feature_names, proba, sample_size=DRIFT_SAMPLE, seed=seed)
    save_reference(folder, reference)


def read_bundle(
    folder: Path,
    *,
    name: str,
    version: str,
    alias: str,
    run_id: str | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
) -> ModelBundle:
    """Load the model in `folder` (ModelNotReadyError when there is none). Scores come from `metrics`, else from
    the folder's metrics.json when it has one."""
    model = DirectionModel.load(folder)
    scores = metrics if metrics is not None else _folder_metrics(folder)
    quantization = _quantization_record(folder)
    return ModelBundle(model, folder, name, version, alias, run_id, scores, dict(tags or {}), quantization)


def _quantization_record(folder: Path) -> QuantizationRecord | None:
    raw = json.loads((folder / META_FILE).read_text()).get(QUANTIZATION_KEY)
    return QuantizationRecord.from_json(raw) if raw is not None else None


def _folder_metrics(folder: Path) -> dict[str, float]:
    path = folder / METRICS_FILE
    raw = json.loads(path.read_text()) if path.is_file() else {}
    return {str(k): float(v) for k, v in raw.items()}


def folder_version(folder: Path) -> str:
    """A content hash of the model folder: the same files give the same version, any change a new one."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return "dir-" + digest.hexdigest()[:12]
