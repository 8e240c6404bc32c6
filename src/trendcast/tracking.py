"""A thin MLflow wrapper: runs, metrics, artifacts, the registered model and its aliases.

The default store is SQLite in the data directory (works offline, nothing running); `TRENDCAST_MLFLOW_TRACKING_URI`
points at a server instead. Models are logged as an MLflow pyfunc (explicit tensor signature, input example) whose
artifact is the saved trendcast model folder (meta.json + weights, ONNX file and explainer background where the
model has them), so `mlflow.pyfunc.load_model("models:/NAME@champion")` works for any MLflow user, and
`load_champion()` gives serving the `DirectionModel` itself.

Aliases: the first registered version becomes `champion`; later ones become `challenger` until promoted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import Schema, TensorSpec

from trendcast.config import ExperimentConfig, Settings
from trendcast.errors import ModelNotReadyError
from trendcast.models.base import DirectionModel

CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_DIR_ARTIFACT = "model_dir"


@dataclass
class LoadedModel:
    model: DirectionModel
    name: str
    version: str
    alias: str
    run_id: str | None
    metrics: dict[str, float]
    onnx_path: Path | None
    folder: Path | None = None  # the saved model folder (meta.json, weights, explainer background)


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    alias: str
    run_id: str


with warnings.catch_warnings():
    # MLflow warns about predict's type hints whatever they are (and about their absence); the explicit tensor
    # signature logged with the model is what validates inputs.
    warnings.filterwarnings("ignore", message=r".*[Tt]ype hint", category=UserWarning)

    class TrendcastPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        """MLflow pyfunc: scaled windows (n, window, features) float32 -> (n, 3) probabilities Down/Neutral/Up."""

        def load_context(self, context: Any) -> None:
            self.model = DirectionModel.load(context.artifacts[MODEL_DIR_ARTIFACT])

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            if isinstance(model_input, dict):  # a named tensor signature hands over {"windows": array}
                model_input = model_input["windows"]
            return self.model.predict_scaled(np.asarray(model_input, dtype=np.float32))


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists (artifacts under the data dir)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    uri = settings.resolved_mlflow_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    if client.get_experiment_by_name(settings.mlflow_experiment) is None:
        location = None
        if uri.startswith("sqlite:"):
            location = (settings.data_dir / "mlartifacts").resolve().as_uri()
        client.create_experiment(settings.mlflow_experiment, artifact_location=location)
    mlflow.set_experiment(settings.mlflow_experiment)
    return client


@contextmanager
def start_run(
    settings: Settings, run_name: str, config: ExperimentConfig, tags: Mapping[str, str] | None = None
) -> Iterator[str]:
    """An MLflow run with the whole experiment config as params; yields the run id."""
    configure(settings)
    with mlflow.start_run(run_name=run_name, tags=dict(tags or {})) as run:
        mlflow.log_params(flatten(config.model_dump(mode="json")))
        mlflow.log_dict(config.model_dump(mode="json"), "config.json")
        yield run.info.run_id


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = json.dumps(value) if isinstance(value, list | tuple) else value
    return out


def log_metrics(metrics: Mapping[str, Any], prefix: str = "", step: int | None = None) -> None:
    """Log every finite numeric leaf of a nested dict (unrounded) as `prefix.key.sub`."""
    flat = {
        k: float(v)
        for k, v in flatten(metrics, prefix).items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }
    clean = {_metric_key(k): v for k, v in flat.items()}
    if clean:
        mlflow.log_metrics(clean, step=step)


def _metric_key(key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-/ " else "_" for ch in key)


def log_model(settings: Settings, model: DirectionModel, model_dir: Path) -> RegisteredVersion:
    """Log the saved model folder as a pyfunc, register it, and set `champion` (first) or `challenger`."""
    client = configure(settings)
    window, n_features = model.window, len(model.feature_names)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, window, n_features), "windows")]),
        outputs=Schema([TensorSpec(np.dtype(np.float64), (-1, 3), "probabilities")]),
    )
    example = np.zeros((2, window, n_features), dtype=np.float32)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=TrendcastPyfunc(),
        artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
        signature=signature,
        input_example=example,
        registered_model_name=settings.registered_model_name,
        pip_requirements=["trendcast", "torch==2.13.0", "mlflow==3.17.2"],
    )
    version = str(info.registered_model_version)
    name = settings.registered_model_name
    has_champion = _alias_version(client, name, CHAMPION) is not None
    alias = CHALLENGER if has_champion else CHAMPION
    client.set_registered_model_alias(name, alias, version)
    run = mlflow.active_run()
    return RegisteredVersion(name, version, alias, run.info.run_id if run else "")


def set_alias(settings: Settings, alias: str, version: str) -> None:
    configure(settings).set_registered_model_alias(settings.registered_model_name, alias, version)


def _alias_version(client: MlflowClient, name: str, alias: str) -> Any:
    try:
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


def _download_version(settings: Settings, name: str, version: str) -> Path:
    """The model folder of a registry version, downloaded once into the data dir and reused afterwards."""
    target = settings.data_dir / "models" / _safe_name(name) / version
    if not (target / "MLmodel").is_file():
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=_mkdir(target.parent)))
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(staging))
        if not target.exists():
            staging.rename(target)  # atomic: concurrent workers never see a half-written folder
    return _model_dir(target)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _model_dir(local: Path) -> Path:
    """Where the pyfunc keeps the trendcast model folder, as its MLmodel file records it."""
    import yaml

    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    relative = mlmodel["flavors"]["python_function"]["artifacts"][MODEL_DIR_ARTIFACT]["path"]
    return local / relative


def load_champion(settings: Settings, alias: str | None = None) -> LoadedModel:
    """The registered model version behind `alias` (default: settings.model_alias), ready to predict."""
    client = configure(settings)
    name, wanted = settings.registered_model_name, alias or settings.model_alias
    version = _alias_version(client, name, wanted)
    if version is None:
        raise ModelNotReadyError(f"no model version has alias {wanted!r} in {name!r}; run `trendcast train` first")
    folder = _download_version(settings, name, str(version.version))
    model = DirectionModel.load(folder)
    metrics = {k: v for k, v in client.get_run(version.run_id).data.metrics.items()} if version.run_id else {}
    onnx = folder / "model.onnx"
    return LoadedModel(
        model, name, str(version.version), wanted, version.run_id, metrics, onnx if onnx.is_file() else None
    )
