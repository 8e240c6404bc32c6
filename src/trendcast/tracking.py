"""A thin MLflow wrapper: runs, metrics, artifacts, the registered model and its aliases.

The default store is SQLite in the data directory (works offline, nothing running); `TRENDCAST_MLFLOW_TRACKING_URI`
points at a server instead. Models are logged as an MLflow pyfunc (explicit tensor signature, input example) whose
artifact is the saved trendcast model folder (meta.json + weights, ONNX file and explainer background where the
model has them), so `mlflow.pyfunc.load_model("models:/NAME@champion")` works for any MLflow user, and
`load_champion()` gives serving and explanations the `ModelBundle` (model + folder) itself.

This is the only module that imports MLflow. It holds no policy: which version gets which alias is decided by
`trendcast.pipelines.retrain` (the promotion gates) and written here with `set_alias` and `set_version_tags`.
"""

from __future__ import annotations

import contextlib
import io
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

import numpy as np

with warnings.catch_warnings():
    # mlflow.pyfunc infers schemas from its own type hints at import and warns about them (UserWarning, in colour):
    # nothing a trendcast user can act on, so it stays out of their terminal.
    warnings.simplefilter("ignore", UserWarning)
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.tracking import MlflowClient
    from mlflow.types import Schema, TensorSpec

from trendcast.config import ExperimentConfig, Settings
from trendcast.errors import ModelNotReadyError, SourceError
from trendcast.models.base import DirectionModel
from trendcast.models.bundle import ModelBundle, read_bundle

CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_DIR_ARTIFACT = "model_dir"
METRIC_TAG = "trendcast.metric."  # version tags holding the scores the model was judged on (auc, accuracy, sharpe)


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str


@dataclass(frozen=True)
class VersionRecord:
    """One registered version as the registry describes it (no model loaded)."""

    name: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...]
    tags: dict[str, str]
    created: int  # ms since the epoch

    @property
    def metrics(self) -> dict[str, float]:
        return metric_tags(self.tags)


def metric_tags(tags: Mapping[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in tags.items():
        if key.startswith(METRIC_TAG):
            try:
                out[key.removeprefix(METRIC_TAG)] = float(value)
            except ValueError:
                continue
    return out


class TrendcastPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """MLflow pyfunc: scaled windows (n, window, features) float32 -> (n, 3) probabilities Down/Neutral/Up."""

    # The explicit tensor signature logged with the model validates inputs; MLflow's type-hint validation would
    # only warn (in colour, once per process, whatever the filters say) that predict has no supported hints.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        self.model = DirectionModel.load(context.artifacts[MODEL_DIR_ARTIFACT])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        if isinstance(model_input, dict):  # a named tensor signature hands over {"windows": array}
            model_input = model_input["windows"]
        return self.model.predict_scaled(np.asarray(model_input, dtype=np.float32))


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists (artifacts in
    Settings.mlflow_artifact_root, e.g. S3, else under the data dir with SQLite, else where the server says)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no per-file bars at serve start
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)  # CloudPickle notice, input-example validation
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    uri = settings.resolved_mlflow_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    if client.get_experiment_by_name(settings.mlflow_experiment) is None:
        location = settings.mlflow_artifact_root
        if location is None and uri.startswith("sqlite:"):
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


def log_model(
    settings: Settings, model: DirectionModel, model_dir: Path, tags: Mapping[str, str] | None = None
) -> RegisteredVersion:
    """Log the saved model folder as a pyfunc into the active run and register it as a new version (no alias)."""
    client = configure(settings)
    window, n_features = model.window, len(model.feature_names)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, window, n_features), "windows")]),
        outputs=Schema([TensorSpec(np.dtype(np.float64), (-1, 3), "probabilities")]),
    )
    example = np.zeros((2, window, n_features), dtype=np.float32)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        # MLflow prints "Successfully registered ..." and warns about pickling our own class; neither helps a user
        warnings.simplefilter("ignore", UserWarning)
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
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, version, key, value)
    run = mlflow.active_run()
    return RegisteredVersion(name, version, run.info.run_id if run else "")


def log_dict(data: Mapping[str, Any], artifact_file: str) -> None:
    """A JSON artifact in the active run."""
    mlflow.log_dict(dict(data), artifact_file)


def set_run_tags(tags: Mapping[str, str]) -> None:
    """Tags on the active run."""
    mlflow.set_tags(dict(tags))


def log_artifact(path: Path, artifact_path: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_path=artifact_path)


class ChildRuns:
    """Runs nested under `parent_run_id` (tag mlflow.parentRunId), written by run id through one client.

    Made for `trendcast tune`: the Tune driver logs every trial from its own process, so concurrent trials never
    write to a SQLite store at the same time ("database is locked"), and no active-run state is touched.
    """

    def __init__(self, settings: Settings, parent_run_id: str) -> None:
        self._client = configure(settings)
        self._parent = parent_run_id
        self._experiment_id = self._client.get_run(parent_run_id).info.experiment_id

    def start(self, run_name: str, params: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> str:
        """A new child run with `params`; returns its id."""
        all_tags = {"mlflow.parentRunId": self._parent, **dict(tags or {})}
        run = self._client.create_run(self._experiment_id, tags=all_tags, run_name=run_name)
        for key, value in flatten(params).items():
            self._client.log_param(run.info.run_id, key, value)
        return str(run.info.run_id)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            if math.isfinite(float(value)):
                self._client.log_metric(run_id, _metric_key(key), float(value), step=step)

    def end(self, run_id: str, failed: bool = False) -> None:
        self._client.set_terminated(run_id, "FAILED" if failed else "FINISHED")

    def run_ids(self) -> list[str]:
        """Ids of every child run of the parent (as the store has them)."""
        found = self._client.search_runs(
            [self._experiment_id], filter_string=f"tags.mlflow.parentRunId = '{self._parent}'", max_results=10_000
        )
        return [str(run.info.run_id) for run in found]


def download_run_artifact(settings: Settings, run_id: str, artifact: str, dst: Path) -> Path:
    """One artifact of a run, downloaded into `dst`; SourceError (saying what to check) when that fails."""
    uri = settings.resolved_mlflow_uri
    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact, dst_path=str(dst), tracking_uri=uri
        )
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise SourceError(
            f"cannot download {artifact} of run {run_id!r} from {uri}: {exc}. "
            "Check the run id (mlflow ui) and TRENDCAST_MLFLOW_TRACKING_URI."
        ) from exc
    return Path(path)


def list_run_artifacts(settings: Settings, run_id: str) -> list[str]:
    """Paths of the run's top-level artifacts; SourceError when the run cannot be read."""
    try:
        infos = mlflow.artifacts.list_artifacts(run_id=run_id, tracking_uri=settings.resolved_mlflow_uri)
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise SourceError(f"cannot list the artifacts of run {run_id!r}: {exc}") from exc
    return [info.path for info in infos]


def set_alias(settings: Settings, alias: str, version: str) -> None:
    configure(settings).set_registered_model_alias(settings.registered_model_name, alias, version)


def alias_version(settings: Settings, alias: str = CHAMPION) -> str | None:
    """The version behind `alias`, or None (no such alias, or no registered model yet)."""
    found = _alias_version(configure(settings), settings.registered_model_name, alias)
    return str(found.version) if found is not None else None


def set_version_tags(settings: Settings, version: str, tags: Mapping[str, str]) -> None:
    client = configure(settings)
    for key, value in tags.items():
        client.set_model_version_tag(settings.registered_model_name, version, key, value)


def get_version(settings: Settings, version: str) -> VersionRecord:
    """A registered version; ModelNotReadyError when it does not exist."""
    client = configure(settings)
    try:
        found = client.get_model_version(settings.registered_model_name, str(version))
    except mlflow.exceptions.MlflowException as exc:
        raise ModelNotReadyError(
            f"{settings.registered_model_name!r} has no version {version}; `trendcast models` lists them"
        ) from exc
    return _record(found)


def list_versions(settings: Settings) -> list[VersionRecord]:
    """Every registered version of the model, oldest first ([] before the first registration)."""
    client = configure(settings)
    name = settings.registered_model_name
    found = client.search_model_versions(f"name = '{name}'")
    if not found:
        return []
    aliases: dict[str, list[str]] = {}  # search results leave `aliases` empty; the registered model has them
    for alias, version in (client.get_registered_model(name).aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    return sorted((_record(v, aliases.get(str(v.version))) for v in found), key=lambda r: int(r.version))


def _record(version: Any, aliases: list[str] | None = None) -> VersionRecord:
    return VersionRecord(
        version.name,
        str(version.version),
        version.run_id,
        tuple(sorted(aliases if aliases is not None else getattr(version, "aliases", []) or [])),
        dict(version.tags or {}),
        int(version.creation_timestamp or 0),
    )


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


def load_version(settings: Settings, version: str, alias: str = "") -> ModelBundle:
    """A registry version as a `ModelBundle` (its folder downloaded once into the data dir)."""
    record = get_version(settings, version)
    folder = _download_version(settings, record.name, record.version)
    return read_bundle(
        folder,
        name=record.name,
        version=record.version,
        alias=alias,
        run_id=record.run_id,
        metrics=record.metrics,
        tags=record.tags,
    )


def load_champion(settings: Settings, alias: str | None = None) -> ModelBundle:
    """The registered model version behind `alias` (default: settings.model_alias), ready to predict."""
    wanted = alias or settings.model_alias
    version = alias_version(settings, wanted)
    if version is None:
        raise ModelNotReadyError(
            f"no model version has alias {wanted!r} in {settings.registered_model_name!r}; run `trendcast train` "
            "(no candidate passed the promotion gates if it ran: `trendcast models` shows why)"
        )
    return load_version(settings, version, wanted)
