"""The explicit name -> model class table. Experiments, the CLI and saved models (meta.json) name models by these keys.

Examples:
    model = create_model("lightgbm", ExperimentConfig(window=20))
    model_class("bilstm").uses_sequence  # True
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from trendcast.config import ExperimentConfig
from trendcast.errors import ConfigError
from trendcast.models.base import DirectionModel
from trendcast.models.baselines import LightGBMModel, LogisticModel, MajorityModel, MomentumModel
from trendcast.models.bilstm_attention import BiLSTMModel

MODELS: dict[str, type[DirectionModel]] = {
    "bilstm": BiLSTMModel,
    "lightgbm": LightGBMModel,
    "logreg": LogisticModel,
    "momentum": MomentumModel,
    "majority": MajorityModel,
}


def model_class(name: str) -> type[DirectionModel]:
    """The class registered as `name`; unknown names raise ConfigError with close matches."""
    if name in MODELS:
        return MODELS[name]
    close = difflib.get_close_matches(name, list(MODELS), n=3)
    hint = f"Did you mean {', '.join(close)}?" if close else f"Known models: {', '.join(MODELS)}."
    raise ConfigError(f"unknown model {name!r}. {hint}")


def create_model(
    name: str, config: ExperimentConfig | None = None, *, threads: int | None = None, **options: Any
) -> DirectionModel:
    """A new, unfitted model.

    `threads` goes to the models that use threads ("bilstm": torch, "lightgbm": n_jobs) and is ignored by the others,
    so callers can pass Settings.torch_threads for any name. Other `options` go to the class as they are (e.g.
    progress=False for "bilstm"); one it does not take raises TypeError.
    """
    cls = model_class(name)
    if threads is not None and "threads" in inspect.signature(cls.__init__).parameters:
        options["threads"] = threads
    return cls(config, **options)
