"""Walk-forward as plan -> fit one fold -> merge: the local executor gives what a plain loop over folds and models
gives, merging does not depend on completion order, a failing task names its fold and model, and the pipeline's
model factory (champion included) pickles for Ray."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from trendcast.backtest.entry import ENTRY_COLUMNS
from trendcast.config import BiLSTMConfig, ExperimentConfig, LabelConfig, Settings, WalkForwardConfig
from trendcast.data.synthetic import planted_signal_bars
from trendcast.errors import ConfigError, DataError, LeakageError, ModelError
from trendcast.evaluation import executor as executor_module
from trendcast.evaluation.entry_fit import fit_entry_thresholds
from trendcast.evaluation.executor import (
    LOCAL,
    FoldOutput,
    FoldTask,
    LocalExecutor,
    RayExecutor,
    executor_for,
    fit_fold,
    merge,
    plan,
)
from trendcast.evaluation.walk_forward import make_folds, run_walk_forward
from trendcast.evaluation.walk_forward_splits import Fold
from trendcast.features.windows import WindowSet, build_window_set
from trendcast.models.base import DirectionModel
from trendcast.models.bundle import ModelBundle
from trendcast.models.registry import create_model
from trendcast.pipelines.retrain import CHAMPION_KEY
from trendcast.pipelines.train import model_factory

FEATURES = ["ret_1", "ret_5", "rsi_14", "volatility_20"]
CONFIG = ExperimentConfig(
    window=8,
    features=FEATURES,
    labels=LabelConfig(horizon=1, threshold=0.005),
    walk_forward=WalkForwardConfig(folds=3, min_train_fraction=0.5),
    bilstm=BiLSTMConfig(hidden1=6, hidden2=4, attention_dim=4, dense=4, epochs=2, batch_size=64, max_train_samples=150),
)
MODELS = ["logreg", "majority", "momentum", "bilstm"]


def factory(name: str, config: ExperimentConfig) -> DirectionModel:
    if name == "bilstm":
        return create_model(name, config, threads=1, progress=False)
    return create_model(name, config)


@pytest.fixture(scope="module")
def ws() -> WindowSet:
    bars = planted_signal_bars(n_tickers=2, n_days=220, seed=4)
    return build_window_set(bars, window=CONFIG.window, labels=CONFIG.labels, features=CONFIG.features)


def reference_loop(ws: WindowSet, models: list[str]) -> dict[str, pd.DataFrame]:
    """The walk-forward written as the plain loop it replaces: every fold, every model, in order (each fold's rows
    with the entry thresholds fitted on its training samples)."""
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in models}
    for fold in make_folds(ws, CONFIG):
        train, test = ws.take(fold.train_mask(ws.dates)), ws.take(fold.test_mask(ws.dates))
        for name in models:
            model = factory(name, CONFIG).fit(train)
            entry = fit_entry_thresholds(model, train, fold.train_end, CONFIG)
            frame = model.predict_frame(test)
            frame["fold"], frame["model"] = fold.index, name
            frame[list(ENTRY_COLUMNS)] = entry.long, entry.short, entry.quantile
            frames[name].append(frame)
    return {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}


def test_local_executor_equals_the_plain_loop(ws: WindowSet) -> None:
    seen: list[tuple[int, str]] = []
    tasks = plan(ws, MODELS, CONFIG)
    outputs = LocalExecutor(threads=1).map(ws, tasks, CONFIG, factory, lambda o: seen.append((o.fold.index, o.model)))
    assert seen == [(t.fold.index, t.model) for t in tasks]  # progress advances once per task, as each finishes
    assert {o.node for o in outputs} == {LOCAL}
    folds = make_folds(ws, CONFIG)
    result = merge(outputs, folds, MODELS)
    expected = reference_loop(ws, MODELS)
    assert list(result.predictions) == MODELS
    for name in MODELS:
        pd.testing.assert_frame_equal(result.predictions[name], expected[name], check_exact=True)
    assert [r.fold for r in result.folds] == folds
    for record in result.folds:
        assert record.n_train == int(record.fold.train_mask(ws.dates).sum())
        assert record.n_test == int(record.fold.test_mask(ws.dates).sum())
    assert [len(h) for h in result.histories["bilstm"]] == [2, 2, 2]  # two epochs on each fold
    assert result.histories["logreg"] == [[], [], []]
    assert result.last_fold_models["logreg"].trained_through == folds[-1].train_end


def test_run_walk_forward_is_plan_map_merge(ws: WindowSet) -> None:
    via_default = run_walk_forward(ws, ["logreg", "majority"], CONFIG, progress=False, factory=factory)
    explicit = run_walk_forward(
        ws, ["logreg", "majority"], CONFIG, progress=False, factory=factory, executor=LocalExecutor(threads=1)
    )
    for name in ("logreg", "majority"):
        pd.testing.assert_frame_equal(via_default.predictions[name], explicit.predictions[name], check_exact=True)


def test_merge_does_not_depend_on_completion_order(ws: WindowSet) -> None:
    models = ["logreg", "majority"]
    folds = make_folds(ws, CONFIG)
    outputs = LocalExecutor().map(ws, plan(ws, models, CONFIG), CONFIG, factory)
    first = merge(outputs, folds, models)
    rng = np.random.default_rng(0)
    for order in [outputs[::-1], *(list(rng.permutation(outputs)) for _ in range(3))]:  # type: ignore[arg-type]
        again = merge(order, list(reversed(folds)), models)
        assert list(again.predictions) == models
        for name in models:
            pd.testing.assert_frame_equal(again.predictions[name], first.predictions[name], check_exact=True)
            assert again.last_fold_models[name] is first.last_fold_models[name]
        assert [r.as_dict() for r in again.folds] == [r.as_dict() for r in first.folds]
    frame = first.predictions["logreg"]
    assert frame["fold"].is_monotonic_increasing and frame["date"].max() == folds[-1].test_end


def test_merge_refuses_missing_and_duplicate_outputs(ws: WindowSet) -> None:
    models = ["majority"]
    folds = make_folds(ws, CONFIG)
    outputs = LocalExecutor().map(ws, plan(ws, models, CONFIG), CONFIG, factory)
    with pytest.raises(ModelError, match=r"missing for \(fold, model\) \[\(2, 'majority'\)\]"):
        merge(outputs[:-1], folds, models)
    with pytest.raises(ModelError, match="two outputs for fold 0"):
        merge([*outputs, outputs[0]], folds, models)


def test_plan_lists_folds_then_models_and_checks_the_purge(ws: WindowSet, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = plan(ws, ["logreg", "majority", "logreg"], CONFIG)
    folds = make_folds(ws, CONFIG)
    assert tasks == [FoldTask(f, m) for f, m in itertools.product(folds, ["logreg", "majority"])]
    with pytest.raises(ConfigError, match="name at least one"):
        plan(ws, [], CONFIG)
    first = folds[0]
    leaky = Fold(0, first.train_start, first.test_start, first.test_start, first.test_end, 1, 0)  # train reaches test
    monkeypatch.setattr(executor_module, "make_folds", lambda ws, config: [leaky])
    with pytest.raises(LeakageError, match="fold 0"):
        plan(ws, ["logreg"], CONFIG)


def test_fit_fold_is_a_pure_function_of_its_inputs(ws: WindowSet) -> None:
    task = plan(ws, ["bilstm"], CONFIG)[1]
    a, b = fit_fold(ws, task, CONFIG, factory), fit_fold(ws, task, CONFIG, factory)
    pd.testing.assert_frame_equal(a.predictions, b.predictions, check_exact=True)
    assert (a.n_train, a.n_test) == (len(ws.take(task.fold.train_mask(ws.dates))), len(a.predictions))


def failing_on(model: str, fold_start: pd.Timestamp, error: Exception):  # type: ignore[no-untyped-def]
    def make(name: str, config: ExperimentConfig) -> DirectionModel:
        model_obj = create_model(name, config)
        if name != model:
            return model_obj
        original = model_obj.fit

        def fit(train: WindowSet, valid: WindowSet | None = None) -> DirectionModel:
            if pd.Timestamp(train.dates.max()) >= fold_start:
                raise error
            return original(train, valid)

        model_obj.fit = fit  # type: ignore[method-assign]
        return model_obj

    return make


@pytest.mark.parametrize(
    ("error", "expected"),
    [(DataError("no bars for XYZ; ingest them first"), DataError), (ValueError("bad input"), ModelError)],
)
def test_a_failing_task_names_its_fold_and_model(ws: WindowSet, error: Exception, expected: type[Exception]) -> None:
    folds = make_folds(ws, CONFIG)
    make = failing_on("logreg", folds[1].train_end, error)
    with pytest.raises(expected) as caught:
        run_walk_forward(ws, ["majority", "logreg"], CONFIG, progress=False, factory=make)
    message = str(caught.value)
    assert f"fold 1 (test {folds[1].test_start.date()}..{folds[1].test_end.date()}), model 'logreg'" in message
    assert str(error) in message
    assert caught.value.__cause__ is error


def test_executor_for_picks_ray_when_asked_or_configured() -> None:
    assert executor_for(Settings(torch_threads=3)) == LocalExecutor(threads=3)
    assert executor_for(Settings(torch_threads=3), use_ray=True) == RayExecutor(None, threads=3)
    assert executor_for(Settings(ray_address="auto")) == RayExecutor("auto", threads=2)
    assert not LocalExecutor().remote and RayExecutor().remote


def test_data_parallel_training_keeps_folds_local_and_refuses_ray_folds() -> None:
    settings = Settings(torch_threads=1, train_workers=2, ray_address="auto")
    assert executor_for(settings) == LocalExecutor(threads=1)  # each fit uses the cluster through Ray Train
    with pytest.raises(ConfigError, match="not both"):
        executor_for(settings, use_ray=True)


def test_the_factory_does_not_carry_secrets() -> None:
    settings = Settings(torch_threads=1, api_keys=["s3cret-key-value"], database_url="sqlite:///p4ssw0rd.db")
    shipped = cloudpickle.dumps(model_factory(settings, False))
    assert b"s3cret-key-value" not in shipped and b"p4ssw0rd" not in shipped


def test_the_pipeline_factory_pickles_with_a_champion(tmp_path: Path, ws: WindowSet) -> None:
    own = CONFIG.model_copy(update={"seed": 7, "lightgbm": CONFIG.lightgbm.model_copy(update={"n_estimators": 5})})
    champion_model = create_model("lightgbm", own)
    champion_model.session = threading.Lock()  # type: ignore[attr-defined]  # stands in for an ONNX session
    bundle = ModelBundle(champion_model, tmp_path, "trendcast", "3", "champion")
    with pytest.raises(TypeError):
        cloudpickle.dumps(bundle)
    shipped = cloudpickle.loads(cloudpickle.dumps(model_factory(Settings(torch_threads=1), False, bundle)))
    model = shipped(CHAMPION_KEY, CONFIG)
    assert model.name == "lightgbm" and model.config.seed == 7 and model.config.lightgbm.n_estimators == 5
    assert model.config.window == CONFIG.window and model.config.features == CONFIG.features
    assert isinstance(shipped("logreg", CONFIG), type(create_model("logreg")))


def test_outputs_carry_what_merge_needs(ws: WindowSet) -> None:
    (output,) = LocalExecutor().map(ws, plan(ws, ["majority"], CONFIG)[:1], CONFIG, factory)
    assert isinstance(output, FoldOutput)
    assert set(output.predictions["model"]) == {"majority"} and set(output.predictions["fold"]) == {0}
    assert output.fitted.trained_through is not None
