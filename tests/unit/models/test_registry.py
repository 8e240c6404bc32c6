"""The explicit model registry, and a save/load round trip for every model in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.models._data import tiny_config
from trendcast.errors import ConfigError, ModelNotReadyError
from trendcast.features.windows import WindowSet
from trendcast.models.base import DirectionModel
from trendcast.models.baselines import LightGBMModel, MajorityModel
from trendcast.models.bilstm_attention import BiLSTMModel
from trendcast.models.registry import MODELS, create_model, model_class


def test_every_entry_is_registered_under_its_own_name() -> None:
    assert set(MODELS) == {"bilstm", "lightgbm", "logreg", "momentum", "majority"}
    for name, cls in MODELS.items():
        assert issubclass(cls, DirectionModel) and cls.name == name
        assert model_class(name) is cls


def test_unknown_names_suggest_close_matches() -> None:
    with pytest.raises(ConfigError, match="Did you mean lightgbm"):
        model_class("lightgbn")
    with pytest.raises(ConfigError, match="Known models: bilstm"):
        model_class("transformer")


def test_create_model_passes_config_and_options() -> None:
    config = tiny_config()
    model = create_model("bilstm", config, threads=1, progress=False)
    assert isinstance(model, BiLSTMModel)
    assert model.config is config and model.threads == 1 and model.progress is False
    assert isinstance(create_model("majority", config, threads=3), MajorityModel)  # threads: ignored where unused
    lightgbm = create_model("lightgbm", config, threads=3)
    assert isinstance(lightgbm, LightGBMModel) and lightgbm.threads == 3
    with pytest.raises(TypeError):
        create_model("majority", config, progress=False)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_and_load_give_identical_predictions(
    name: str, small_split: tuple[WindowSet, WindowSet], tmp_path: Path
) -> None:
    train, test = small_split
    model = create_model(name, tiny_config(), threads=1).fit(train)
    before = model.predict_proba(test)
    loaded = DirectionModel.load(model.save(tmp_path / name))
    assert type(loaded) is type(model)
    assert loaded.feature_names == model.feature_names and loaded.window == model.window
    assert np.array_equal(loaded.predict_proba(test), before)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_missing_weights_are_reported(name: str, small_split: tuple[WindowSet, WindowSet], tmp_path: Path) -> None:
    folder = create_model(name, tiny_config(), threads=1).fit(small_split[0]).save(tmp_path / name)
    for weights in folder.iterdir():
        if weights.name not in {"meta.json", "training.json", "lightgbm.json"}:
            weights.unlink()
    with pytest.raises(ModelNotReadyError, match="missing"):
        DirectionModel.load(folder)
