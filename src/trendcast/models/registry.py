"""The explicit name -> model class table. Experiments, the CLI and saved models (meta.json) name models by these keys.

Examples:
    model = create_model("lightgbm", ExperimentConfig(window=20))
    model_class("bilstm").uses_sequence  # True
"""

from __future__ import annotations

import difflib
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


def create_model(name: str, config: ExperimentConfig | None = None, **options: Any) -> DirectionModel:
    """A new, unfitted model. `options` go to the class (e.g. threads=2 for "bilstm" and "lightgbm")."""
    return model_class(name)(config, **options)
