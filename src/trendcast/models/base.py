"""The one estimator contract every model follows, baselines included.

`fit(train, valid=None)` takes *unscaled* WindowSets: the base class fits the scaler on `train` only (refusing
samples after its last date, see `WindowScaler`) and hands the subclass scaled data. `predict_proba(data)` scales
with that same fitted scaler and returns (n, 3) probabilities in class order Down, Neutral, Up. So no caller can
leak test data into scaling by forgetting a step.

Subclasses implement `_fit(train, valid)`, `_predict_scaled(x)` on (n, window, n_features) float32 scaled windows,
and `_save_weights(dir)` / `_load_weights(dir)`. `save(dir)` writes `meta.json` (name, features, window, horizon,
classes, scaler, trained-through date, config) beside the weights.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from trendcast.config import CLASS_NAMES, ExperimentConfig
from trendcast.errors import ModelError, ModelNotReadyError
from trendcast.features.scaling import WindowScaler
from trendcast.features.windows import WindowSet


class DirectionModel(ABC):
    """Predicts P(Down), P(Neutral), P(Up) for windows of features."""

    name: ClassVar[str]
    uses_sequence: ClassVar[bool] = True  # False: only the last time step's features matter

    def __init__(self, config: ExperimentConfig | None = None) -> None:
        self.config = config or ExperimentConfig()
        self.scaler: WindowScaler | None = None
        self.feature_names: tuple[str, ...] = ()
        self.window: int = self.config.window
        self.horizon: int = self.config.labels.horizon
        self.trained_through: pd.Timestamp | None = None
        self.class_names: tuple[str, ...] = CLASS_NAMES
        self.history: list[dict[str, float]] = []  # per-epoch metrics where the model has epochs

    # -- the contract -------------------------------------------------------------------------------------------
    def fit(self, train: WindowSet, valid: WindowSet | None = None) -> Self:
        """Fit the scaler on `train` only, then the model. `valid` must be dated after `train`."""
        if len(train) == 0:
            raise ModelError(f"{self.name}: no training samples")
        if valid is not None and len(valid) and valid.dates.min() <= train.dates.max():
            raise ModelError(f"{self.name}: validation samples must all be dated after the training samples")
        self.trained_through = pd.Timestamp(train.dates.max())
        self.scaler = WindowScaler().fit(train, self.trained_through)
        self.feature_names, self.window, self.horizon = train.feature_names, train.window, train.horizon
        scaled_valid = self.scaler.transform(valid) if valid is not None and len(valid) else None
        self._fit(self.scaler.transform(train), scaled_valid)
        return self

    def predict_proba(self, data: WindowSet) -> np.ndarray:
        """(n, 3) probabilities, Down/Neutral/Up, for unscaled samples."""
        scaler = self._require_fitted()
        if data.feature_names != self.feature_names:
            raise ModelError(f"{self.name}: data has other features than the model was trained on")
        if len(data) == 0:
            return np.zeros((0, 3))
        return self.predict_scaled(scaler.transform(data).windows())

    def predict_scaled(self, x: np.ndarray) -> np.ndarray:
        """(n, 3) probabilities for already-scaled windows of shape (n, window, n_features)."""
        self._require_fitted()
        if x.ndim != 3 or x.shape[1:] != (self.window, len(self.feature_names)):
            raise ModelError(
                f"{self.name}: expected windows of shape (n, {self.window}, {len(self.feature_names)}), got {x.shape}"
            )
        return self._predict_scaled(np.ascontiguousarray(x, dtype=np.float32))

    def predict_frame(self, data: WindowSet) -> pd.DataFrame:
        """ticker, date, p_down, p_neutral, p_up (plus label and forward_return) for each sample."""
        proba = self.predict_proba(data)
        frame = data.frame()
        frame[["p_down", "p_neutral", "p_up"]] = proba
        return frame

    def scale_rows(self, rows: np.ndarray) -> np.ndarray:
        return self._require_fitted().transform_rows(rows)

    # -- persistence --------------------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        scaler = self._require_fitted()
        return {
            "name": self.name,
            "feature_names": list(self.feature_names),
            "window": self.window,
            "horizon": self.horizon,
            "class_names": list(self.class_names),
            "trained_through": self.trained_through.isoformat() if self.trained_through is not None else None,
            "scaler": scaler.to_dict(),
            "config": self.config.model_dump(mode="json"),
            "history": self.history,
        }

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        (out / "meta.json").write_text(json.dumps(self.metadata(), indent=2))
        self._save_weights(out)
        return out

    @classmethod
    def load(cls, path: str | Path) -> DirectionModel:
        """Load any saved model; the concrete class comes from meta.json through the registry."""
        from trendcast.models.registry import model_class

        folder = Path(path)
        meta_file = folder / "meta.json"
        if not meta_file.is_file():
            raise ModelNotReadyError(f"no saved model at {folder} (meta.json missing)")
        meta = json.loads(meta_file.read_text())
        model = model_class(meta["name"])(ExperimentConfig.model_validate(meta["config"]))
        model._restore(meta)
        model._load_weights(folder)
        return model

    def _restore(self, meta: dict[str, Any]) -> None:
        self.feature_names = tuple(meta["feature_names"])
        self.window, self.horizon = int(meta["window"]), int(meta["horizon"])
        self.class_names = tuple(meta["class_names"])
        self.trained_through = pd.Timestamp(meta["trained_through"]) if meta["trained_through"] else None
        self.scaler = WindowScaler.from_dict(meta["scaler"])
        self.history = list(meta.get("history", []))

    def _require_fitted(self) -> WindowScaler:
        if self.scaler is None:
            raise ModelNotReadyError(f"{self.name}: the model is not fitted; call fit() or load() first")
        return self.scaler

    # -- what subclasses implement -----------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, train: WindowSet, valid: WindowSet | None) -> None: ...

    @abstractmethod
    def _predict_scaled(self, x: np.ndarray) -> np.ndarray: ...

    def _save_weights(self, folder: Path) -> None:  # noqa: B027 - stateless models save nothing
        pass

    def _load_weights(self, folder: Path) -> None:  # noqa: B027
        pass
