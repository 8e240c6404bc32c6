"""One validated Settings object (environment `TRENDCAST_*`, optional YAML) and typed experiment config.

`Settings` holds everything about *where* and *how* trendcast runs (paths, stores, service limits).
`ExperimentConfig` holds everything about *what* is trained (labels, windows, folds, model sizes); it is loaded
from YAML files under `configs/experiments/` and logged whole to MLflow. Nothing else in the package reads
`os.environ`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from trendcast.errors import ConfigError

CLASS_NAMES: tuple[str, str, str] = ("Down", "Neutral", "Up")


class LabelConfig(BaseModel):
    """How the Down/Neutral/Up label is cut from the forward return."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["absolute", "cross_sectional"] = "absolute"  # cross_sectional: beats the day's median (binary)
    horizon: int = Field(1, ge=1, le=60)  # trading days ahead
    threshold: float = Field(0.005, ge=0.0, lt=0.5)  # fixed neutral band +/- this return
    threshold_mode: Literal["fixed", "volatility"] = "fixed"
    vol_multiplier: float = Field(0.5, gt=0.0)  # band = k * trailing daily vol * sqrt(horizon)
    vol_lookback: int = Field(20, ge=5)  # days of past returns for the volatility band


class WalkForwardConfig(BaseModel):
    """Purged walk-forward split of the shared calendar."""

    model_config = ConfigDict(extra="forbid")

    folds: int = Field(5, ge=1, le=50)
    scheme: Literal["expanding", "rolling"] = "expanding"
    min_train_fraction: float = Field(0.4, gt=0.0, lt=1.0)  # share of days before the first test fold
    purge_days: int | None = Field(None, ge=0)  # None = the label horizon
    embargo_days: int = Field(0, ge=0)


class BiLSTMConfig(BaseModel):
    """Sizes and training settings of the Bi-LSTM with attention."""

    model_config = ConfigDict(extra="forbid")

    hidden1: int = Field(128, ge=1)  # units per direction, first Bi-LSTM
    hidden2: int = Field(64, ge=1)  # units per direction, second Bi-LSTM
    attention_dim: int = Field(64, ge=1)  # additive attention projection
    dense: int = Field(32, ge=1)  # hidden units before the 3 logits
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    batch_size: int = Field(256, ge=1)
    epochs: int = Field(20, ge=1)
    patience: int = Field(4, ge=1)  # epochs without validation improvement before stopping
    validation_fraction: float = Field(0.15, gt=0.0, lt=0.5)  # time-ordered tail of each training fold
    grad_clip: float = Field(1.0, gt=0.0)
    max_train_samples: int | None = Field(None, ge=100)  # keep the most recent N training samples (speed)
    train_subsample: int | None = Field(None, ge=100)  # fixed random N of each fold's training samples (speed)


class LightGBMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_estimators: int = Field(300, ge=1)
    learning_rate: float = Field(0.03, gt=0.0)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(100, ge=1)
    subsample: float = Field(0.8, gt=0.0, le=1.0)
    colsample_bytree: float = Field(0.8, gt=0.0, le=1.0)
    early_stopping_rounds: int = Field(30, ge=1)  # rounds without validation improvement (when a valid set is given)


class BacktestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    long_short: bool = False
    # train_quantile: long when P(Up) - P(Down) > its entry_quantile quantile over the fold's recent training
    # predictions (short below the 1 - entry_quantile quantile); fixed: the entry_threshold rule below
    entry_rule: Literal["train_quantile", "fixed"] = "train_quantile"
    entry_quantile: float = Field(0.5, gt=0.0, lt=1.0)  # fitted on each training fold (evaluation/entry_fit.py)
    entry_threshold: float = Field(0.4, ge=0.0, le=1.0)  # fixed: long when P(Up) > this and P(Up) > P(Down)
    sizing: Literal["fixed", "confidence"] = "fixed"
    execution: Literal["next_open", "next_close"] = "next_open"  # a signal from close t trades at open t+1
    commission_bps: float = Field(5.0, ge=0.0)
    slippage_bps: float = Field(5.0, ge=0.0)
    borrow_bps_annual: float = Field(0.0, ge=0.0)
    risk_free_rate: float = Field(0.0, ge=0.0)  # annual


ModelKind = Literal["bilstm", "lightgbm", "logreg", "momentum", "majority"]


class GateConfig(BaseModel):
    """The promotion gates a challenger must pass, in order, before it becomes `champion` (pipelines/retrain.py)."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(0.05, gt=0.0, lt=1.0)  # level of the paired tests; skill vs majority is Bonferroni-corrected
    max_sharpe_drop: float = Field(0.1, ge=0.0)  # backtest net Sharpe may trail the champion's by at most this
    probability_tolerance: float = Field(1e-6, gt=0.0, le=1e-2)  # |sum of probabilities - 1| allowed
    n_boot: int = Field(1000, ge=100)  # paired block-bootstrap resamples per test


class StudyConfig(BaseModel):
    """The cross-sectional study (`trendcast study`, pipelines/study.py): models compared and the top-k portfolio."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(10, ge=1)  # stocks long and stocks short each day
    cost_bps: float = Field(5.0, ge=0.0)  # cost per unit traded, each side, in basis points
    models: list[ModelKind] = ["bilstm", "lightgbm", "logreg", "momentum", "majority"]
    n_boot: int = Field(1000, ge=100)  # day-block bootstrap resamples for every CI and the paired test

    @field_validator("models")
    @classmethod
    def _some_models(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("study.models must name at least one model, e.g. [bilstm, lightgbm]")
        return list(dict.fromkeys(value))


class ExperimentConfig(BaseModel):
    """Everything that defines one training experiment; loaded from YAML and logged to MLflow."""

    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    source: Literal["bundled", "csv", "store"] = "store"
    tickers: list[str] | None = None  # None = every stored ticker
    start: str | None = None
    end: str | None = None
    window: int = Field(60, ge=2, le=500)
    features: list[str] | None = None  # None = the whole catalog
    labels: LabelConfig = LabelConfig()
    walk_forward: WalkForwardConfig = WalkForwardConfig()
    bilstm: BiLSTMConfig = BiLSTMConfig()
    lightgbm: LightGBMConfig = LightGBMConfig()
    backtest: BacktestConfig = BacktestConfig()
    candidates: list[ModelKind] = ["bilstm", "lightgbm", "logreg", "momentum", "majority"]  # may become champion
    gates: GateConfig = GateConfig()
    study: StudyConfig = StudyConfig()
    seed: int = 42

    @field_validator("candidates")
    @classmethod
    def _some_candidates(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("candidates must name at least one model, e.g. [bilstm, lightgbm]")
        return list(dict.fromkeys(value))

    @property
    def purge_days(self) -> int:
        purge = self.walk_forward.purge_days
        return self.labels.horizon if purge is None else max(purge, self.labels.horizon)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        return cls.model_validate(_read_yaml(Path(path)))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"Config file {path} does not exist. Pass a YAML file such as configs/experiments/quick.yaml."
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping at the top level, not {type(data).__name__}.")
    return data


class Settings(BaseSettings):
    """Where and how trendcast runs. Read from `TRENDCAST_*` variables, then an optional YAML file.

    Examples:
        TRENDCAST_DATA_DIR=/var/lib/trendcast TRENDCAST_DATABASE_URL=postgresql+psycopg://u@db/trendcast
    """

    model_config = SettingsConfigDict(env_prefix="TRENDCAST_", extra="forbid", secrets_dir=None)

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path(".trendcast")
    database_url: str | None = None  # default: sqlite:///<data_dir>/trendcast.db
    mlflow_tracking_uri: str | None = None  # default: sqlite:///<data_dir>/mlflow.db
    mlflow_experiment: str = "trendcast"
    mlflow_artifact_root: str | None = None  # e.g. s3://bucket/mlflow; default: <data_dir>/mlartifacts with SQLite
    registered_model_name: str = "trendcast-direction"
    redis_url: str | None = None  # e.g. redis://127.0.0.1:6379/0; None = in-process limits and cache
    redis_key_prefix: str = "trendcast"  # namespace of every Redis key the service writes (limits, cache)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    torch_threads: int = Field(2, ge=1, le=256)
    train_workers: int = Field(1, ge=1, le=256)  # > 1: the Bi-LSTM trains data-parallel on Ray Train (--workers)
    ray_address: str | None = None  # None: a private Ray instance when --ray is asked; "auto" or "ray://host:10001"
    yahoo_timeout_s: float = Field(10.0, gt=0.0, le=120.0)
    config_file: Path | None = None  # YAML with any of these fields

    # service
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    rate_limit: str = "100/minute"  # default limit per client and route (limits syntax)
    rate_limit_predict: str | None = None  # override for /api/v1/predict*
    rate_limit_enabled: bool = True
    api_keys: list[SecretStr] = []  # when non-empty, every /api route requires one of them
    admin_api_keys: list[SecretStr] = []  # required by /api/v1/admin/*
    api_keys_file: Path | None = None  # one key per line (a secret file, e.g. /run/secrets/...)
    admin_api_keys_file: Path | None = None
    docs_require_key: bool = False  # with API keys configured, /api/docs, /api/redoc and the schema need one too
    cors_origins: list[str] = []
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_header_bytes: int = Field(16_384, ge=1024)  # all request headers together; more gets 431
    body_timeout_seconds: float = Field(10.0, gt=0.0)  # a body that stops arriving this long gets 408
    trusted_proxies: list[str] = []  # IPs/CIDRs whose X-Forwarded-For/-Proto are believed (default: nobody)
    batch_max_items: int = Field(64, ge=1, le=10_000)
    ticker_cache_size: int = Field(64, ge=0)  # tickers whose feature matrix each worker keeps (0: off)
    model_alias: str = "champion"
    model_dir: Path | None = None  # serve a saved DirectionModel folder instead of the registry champion
    explain_background: int = Field(32, ge=1)  # training windows saved with the model as the explainer background
    model_poll_seconds: float | None = Field(None, gt=0.0)  # the service checks the champion alias this often
    serve_quantized: bool = True  # serve the bundle's int8 graph when its record says it agrees with float32
    onnx_threads: int = Field(1, ge=1, le=256)  # ONNX Runtime intra-op threads per worker (they never spin)

    # drift (reference saved with the model; compared with recent stored days and recent request inputs)
    drift_psi_warn: float = Field(0.1, gt=0.0)
    drift_psi_alert: float = Field(0.25, gt=0.0)
    drift_alpha: float = Field(0.05, gt=0.0, lt=1.0)  # family-wise level of the KS tests across features
    drift_days: int = Field(60, ge=5)  # recent stored days compared with the reference
    drift_sample_size: int = Field(2000, ge=50)  # recent request inputs kept by each service worker
    drift_refresh_seconds: float = Field(60.0, gt=0.0)  # how often the service recomputes its drift gauges

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.environment == "production" and not self.admin_api_keys and not self.admin_api_keys_file:
            raise ValueError("production needs TRENDCAST_ADMIN_API_KEYS or TRENDCAST_ADMIN_API_KEYS_FILE set")
        for key in [*self.api_keys, *self.admin_api_keys]:
            if key.get_secret_value() in {"changethis", ""} and self.environment == "production":
                raise ValueError("an API key is 'changethis' or empty; set a real secret in production")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls, env_settings), file_secret_settings)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'trendcast.db').resolve()}"

    @property
    def resolved_mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def all_api_keys(self) -> list[str]:
        return _keys(self.api_keys, self.api_keys_file)

    def all_admin_keys(self) -> list[str]:
        return _keys(self.admin_api_keys, self.admin_api_keys_file)


def _keys(inline: list[SecretStr], path: Path | None) -> list[str]:
    keys = [k.get_secret_value() for k in inline]
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"API key file {path} does not exist.")
        keys += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return keys


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML named by TRENDCAST_CONFIG_FILE (env) if set; env vars win over it."""

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self._env().get("config_file")
        if not path:
            return {}
        return _read_yaml(Path(path))


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning pydantic's error into a ConfigError that names the variable."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        fields = ", ".join("TRENDCAST_" + str(e["loc"][0]).upper() for e in exc.errors() if e["loc"])
        raise ConfigError(f"Invalid settings ({fields}): {exc}") from exc
