"""Baselines that keep the Bi-LSTM honest, behind the same `DirectionModel` contract.

- `MajorityModel` ("majority"): the training class frequencies, whatever the input. The floor every model must beat.

Every model gives a class absent from its training labels probability exactly 0, so with cross_sectional (binary)
labels p_neutral is 0 while the output keeps its three columns.
- `MomentumModel` ("momentum"): tomorrow goes the way today went. Up when the 1-day return `ret_1` on the signal date
  is positive, else Down, smoothed towards the training frequencies.
- `LogisticModel` ("logreg"): multinomial logistic regression, balanced class weights.
- `LightGBMModel` ("lightgbm"): gradient-boosted trees, balanced class weights, early stopping on `valid` if given.

The tabular models (`uses_sequence = False`) see only the last time step of each scaled window: the features on the
signal date. Persistence: majority and momentum write a small JSON file, logistic regression a joblib file (a
pickle: load only files you wrote), LightGBM its own text model format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import lightgbm
import numpy as np
from sklearn.linear_model import LogisticRegression

from trendcast.config import CLASS_NAMES, ExperimentConfig
from trendcast.errors import ModelError, ModelNotReadyError
from trendcast.features.labels import DOWN, UP
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel

N_CLASSES = len(CLASS_NAMES)


def class_frequencies(labels: np.ndarray) -> np.ndarray:
    """(3,) share of each class among `labels`."""
    return np.bincount(labels, minlength=N_CLASSES) / max(len(labels), 1)


def full_proba(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Spread a classifier's (n, k) probabilities over its `classes` into (n, 3) columns Down, Neutral, Up."""
    if proba.ndim == 1:  # a binary booster returns P(classes[1]) only
        proba = np.column_stack([1.0 - proba, proba])
    out = np.zeros((len(proba), N_CLASSES))
    out[:, classes.astype(np.int64)] = proba
    return out


def _last_step(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x[:, -1, :])  # (n, n_features): the features on the signal date


def _require_two_classes(name: str, labels: np.ndarray) -> None:
    if len(np.unique(labels)) < 2:
        raise ModelError(f"{name}: the training samples hold only one class; train on a longer or wider period")


def _read_file(name: str, path: Path) -> Path:
    if not path.is_file():
        raise ModelNotReadyError(f"{name}: {path} is missing; save the model again with model.save()")
    return path


class MajorityModel(DirectionModel):
    """Predicts the training class frequencies for every sample."""

    name = "majority"
    uses_sequence = False

    def __init__(self, config: ExperimentConfig | None = None) -> None:
        super().__init__(config)
        self.frequencies_: np.ndarray | None = None

    def _fit(self, train: WindowSet, valid: WindowSet | None) -> None:
        self.frequencies_ = class_frequencies(train.labels)

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        if self.frequencies_ is None:
            raise ModelNotReadyError(f"{self.name}: not fitted")
        return np.tile(self.frequencies_, (len(x), 1))

    def _save_weights(self, folder: Path) -> None:
        if self.frequencies_ is None:
            raise ModelNotReadyError(f"{self.name}: not fitted")
        (folder / "majority.json").write_text(json.dumps({"frequencies": self.frequencies_.tolist()}))

    def _load_weights(self, folder: Path) -> None:
        data = json.loads(_read_file(self.name, folder / "majority.json").read_text())
        self.frequencies_ = np.asarray(data["frequencies"], dtype=np.float64)


class MomentumModel(DirectionModel):
    """Up if the signal date's 1-day return `ret_1` is positive, else Down.

    Probabilities are (1 - smoothing) on the predicted class plus smoothing x the training class frequencies, so the
    predicted class always has the highest probability and no class seen in training gets exactly 0 (an unseen one,
    Neutral with cross_sectional labels, gets exactly 0).

    The model sees *scaled* windows: scaled = clip((raw - center) / scale). Since scale > 0 and clipping keeps
    order, raw > 0 exactly when scaled > -center / scale, so the sign is recovered by comparing with that threshold
    instead of unscaling (which clipping would make inexact). Only returns within float32 rounding of zero (about
    1e-7 x the scale) can land on the wrong side.
    """

    name = "momentum"
    uses_sequence = False
    feature = "ret_1"
    smoothing = 0.1  # weight of the training class frequencies in each prediction

    def __init__(self, config: ExperimentConfig | None = None) -> None:
        super().__init__(config)
        self.frequencies_: np.ndarray | None = None

    def _fit(self, train: WindowSet, valid: WindowSet | None) -> None:
        self._column()  # fail early if ret_1 is not among the features
        self.frequencies_ = class_frequencies(train.labels)

    def _column(self) -> int:
        if self.feature not in self.feature_names:
            raise ModelError(f"{self.name}: needs the {self.feature!r} feature; add it to the experiment's features")
        return self.feature_names.index(self.feature)

    def _zero_threshold(self, column: int) -> float:
        scaler = self._require_fitted()
        if scaler.center_ is None or scaler.scale_ is None:
            raise ModelNotReadyError(f"{self.name}: the scaler is not fitted")
        return float(-scaler.center_[column] / scaler.scale_[column])  # scaled value of a raw 0

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        if self.frequencies_ is None:
            raise ModelNotReadyError(f"{self.name}: not fitted")
        column = self._column()
        up = x[:, -1, column] > self._zero_threshold(column)
        onehot = np.zeros((len(x), N_CLASSES))
        onehot[np.arange(len(x)), np.where(up, UP, DOWN)] = 1.0
        return (1.0 - self.smoothing) * onehot + self.smoothing * self.frequencies_

    def _save_weights(self, folder: Path) -> None:
        if self.frequencies_ is None:
            raise ModelNotReadyError(f"{self.name}: not fitted")
        (folder / "momentum.json").write_text(json.dumps({"frequencies": self.frequencies_.tolist()}))

    def _load_weights(self, folder: Path) -> None:
        data = json.loads(_read_file(self.name, folder / "momentum.json").read_text())
        self.frequencies_ = np.asarray(data["frequencies"], dtype=np.float64)


class LogisticModel(DirectionModel):
    """Multinomial logistic regression (L2, lbfgs, balanced class weights) on the signal date's features."""

    name = "logreg"
    uses_sequence = False

    def __init__(self, config: ExperimentConfig | None = None, *, max_iter: int = 2000) -> None:
        super().__init__(config)
        self.max_iter = max_iter
        self.estimator_: LogisticRegression | None = None

    def _fit(self, train: WindowSet, valid: WindowSet | None) -> None:
        _require_two_classes(self.name, train.labels)
        from threadpoolctl import threadpool_limits

        estimator = LogisticRegression(class_weight="balanced", max_iter=self.max_iter, random_state=self.config.seed)
        with threadpool_limits(1):  # BLAS threads fight each other on small problems (70 s vs 1 s measured)
            self.estimator_ = estimator.fit(train.last_step(), train.labels)

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        if self.estimator_ is None:
            raise ModelNotReadyError(f"{self.name}: not fitted")
        return full_proba(self.estimator_.predict_proba(_last_step(x)), self.estimator_.classes_)

    def _save_weights(self, folder: Path) -> None:
        joblib.dump(self.estimator_, folder / "logreg.joblib")

    def _load_weights(self, folder: Path) -> None:
        self.estimator_ = joblib.load(_read_file(self.name, folder / "logreg.joblib"))


class LightGBMModel(DirectionModel):
    """LightGBM trees on the signal date's features; parameters from `config.lightgbm`, deterministic.

    With a `valid` set, boosting stops after `early_stopping_rounds` rounds without a lower validation log loss and
    keeps the best iteration. `threads` is LightGBM's n_jobs: 1 by default, because OpenMP threads that busy-wait on
    a shared 2-core machine made n_jobs=2 about 20x slower on fold-sized data; raise it on a dedicated machine.
    """

    name = "lightgbm"
    uses_sequence = False

    def __init__(self, config: ExperimentConfig | None = None, *, threads: int = 1) -> None:
        super().__init__(config)
        self.threads = threads
        self.booster_: lightgbm.Booster | None = None
        self.classes_: np.ndarray = np.arange(N_CLASSES)

    def _estimator(self) -> lightgbm.LGBMClassifier:
        c = self.config.lightgbm
        return lightgbm.LGBMClassifier(
            n_estimators=c.n_estimators,
            learning_rate=c.learning_rate,
            num_leaves=c.num_leaves,
            min_child_samples=c.min_child_samples,
            subsample=c.subsample,
            subsample_freq=1,
            colsample_bytree=c.colsample_bytree,
            class_weight="balanced",
            random_state=self.config.seed,
            n_jobs=self.threads,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )

    def _fit(self, train: WindowSet, valid: WindowSet | None) -> None:
        _require_two_classes(self.name, train.labels)
        estimator, fit_args = self._estimator(), self._early_stopping(train, valid)
        estimator.fit(train.last_step(), train.labels, **fit_args)
        self.booster_, self.classes_ = estimator.booster_, np.asarray(estimator.classes_)

    def _early_stopping(self, train: WindowSet, valid: WindowSet | None) -> dict[str, Any]:
        if valid is None:
            return {}
        known = np.isin(valid.labels, np.unique(train.labels))  # a class unseen in training cannot be scored
        if not known.any():
            return {}
        stop = lightgbm.early_stopping(self.config.lightgbm.early_stopping_rounds, verbose=False)
        return {"eval_X": (valid.last_step()[known],), "eval_y": (valid.labels[known],), "callbacks": [stop]}

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        if self.booster_ is None:
            raise ModelNotReadyError(f"{self.name}: not fitted")
        return full_proba(np.asarray(self.booster_.predict(_last_step(x))), self.classes_)

    def _save_weights(self, folder: Path) -> None:
        if self.booster_ is None:
            raise ModelNotReadyError(f"{self.name}: not fitted")
        self.booster_.save_model(str(folder / "lightgbm.txt"))
        (folder / "lightgbm.json").write_text(json.dumps({"classes": self.classes_.tolist()}))

    def _load_weights(self, folder: Path) -> None:
        self.booster_ = lightgbm.Booster(model_file=str(_read_file(self.name, folder / "lightgbm.txt")))
        self.classes_ = np.asarray(json.loads((folder / "lightgbm.json").read_text())["classes"])
