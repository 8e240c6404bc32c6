"""Int8 quantisation: both LSTMs are quantised, the record's numbers are what a direct comparison gives, and an int8
graph that disagrees with float32 is refused and never kept; ONNX Runtime sessions never spin."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from tests.unit.models._data import tiny_config
from trendcast.errors import ModelError
from trendcast.features.windows import WindowSet
from trendcast.models.bilstm_attention import BiLSTMModel
from trendcast.models.bundle import read_bundle, write_bundle
from trendcast.models.onnx_export import OnnxPredictor, export_onnx, session_options
from trendcast.models.quantize import (
    INT8_FILE,
    QuantizationRecord,
    Thresholds,
    check_agreement,
    quantize_checked,
    quantize_onnx,
)


@pytest.fixture(scope="module")
def trained(small_split: tuple[WindowSet, WindowSet]) -> BiLSTMModel:
    return BiLSTMModel(tiny_config(epochs=1), threads=1).fit(small_split[0])


@pytest.fixture(scope="module")
def held_out(trained: BiLSTMModel, small_split: tuple[WindowSet, WindowSet]) -> np.ndarray:
    """Scaled windows of the test dates, which the model never trained on."""
    assert trained.scaler is not None
    return trained.scaler.transform(small_split[1]).windows()


@pytest.fixture(scope="module")
def graphs(trained: BiLSTMModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("quantized")
    float_path = export_onnx(trained, folder / "model.onnx")
    return float_path, quantize_onnx(float_path, folder / INT8_FILE)


def _direct(path: Path, x: np.ndarray, batch: int) -> np.ndarray:
    """Probabilities from a plain session (one thread, as in the check), `batch` windows per run."""
    session = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
    parts = [session.run(["probabilities"], {"windows": x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(parts).astype(np.float64)


def _tied_logits(model: BiLSTMModel, x: np.ndarray) -> BiLSTMModel:
    """A copy whose Up row of the head equals its Down row except one weight, 0 for Down and a tiny positive
    number for Up, on a dense unit active on every window (Neutral far below both). Float32 predicts Up everywhere;
    int8 rounds the tiny weight to 0 (zero is exact in symmetric int8), sees an exact tie and argmax says Down."""
    tied = copy.deepcopy(model)
    net = tied.network
    with torch.no_grad():
        h1, _ = net.lstm1(torch.from_numpy(x))
        context, _ = net.attention(net.lstm2(h1)[0])
        hidden = torch.relu(net.dense(context))  # (n, dense)
        unit = int(hidden.min(dim=0).values.argmax())  # the unit with the largest smallest activation
        assert float(hidden[:, unit].min()) > 0, "no dense unit is active on every window; pick other test data"
        weight, bias = net.head.weight, net.head.bias  # rows Down, Neutral, Up
        weight[0, unit] = 0.0
        weight[2] = weight[0]
        weight[2, unit] = float(weight.abs().max()) / 2000  # under half an int8 step (max / 127) from 0
        bias[2] = bias[0]
        bias[1] = bias[0] - 10.0
    return tied


def test_both_lstms_and_every_weight_matmul_are_quantised(graphs: tuple[Path, Path]) -> None:
    ops = Counter(node.op_type for node in onnx.load(str(graphs[1])).graph.node)
    assert ops["DynamicQuantizeLSTM"] == 2 and ops["LSTM"] == 0  # needs quant_pre_process's constant folding
    assert ops["MatMulInteger"] == 4  # attention projection and score, dense, head
    assert graphs[1].stat().st_size < graphs[0].stat().st_size


def test_record_matches_a_direct_comparison(graphs: tuple[Path, Path], held_out: np.ndarray) -> None:
    float_path, int8_path = graphs
    record = check_agreement(float_path, int8_path, held_out, source="test dates")
    p_float = _direct(float_path, held_out, len(held_out))
    single, batched = _direct(int8_path, held_out, 1), _direct(int8_path, held_out, 64)
    same = (single.argmax(1) == p_float.argmax(1)) & (batched.argmax(1) == p_float.argmax(1))
    assert record.n == len(held_out) > 100
    assert record.agreement == pytest.approx(np.mean(same), abs=1e-12)
    assert record.max_abs_diff == pytest.approx(max(np.abs(single - p_float).max(), np.abs(batched - p_float).max()))
    assert 0 < record.max_abs_diff < 0.02  # int8 moves the probabilities, a little
    assert np.abs(single - batched).max() > 0  # activations are quantised per batch: the batch matters
    assert record.accepted == (record.agreement >= 0.995 and record.max_abs_diff <= 0.02)
    assert QuantizationRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_an_int8_graph_whose_classes_flip_is_refused_and_removed(
    trained: BiLSTMModel, held_out: np.ndarray, tmp_path: Path
) -> None:
    float_path = export_onnx(_tied_logits(trained, held_out), tmp_path / "model.onnx")
    assert OnnxPredictor(float_path).predict(held_out)[0].argmax(1).tolist() == [2] * len(held_out)
    record = quantize_checked(float_path, held_out)
    assert record.agreement < 0.995 and not record.accepted
    assert record.max_abs_diff < 0.02  # the probabilities barely move: only the agreement catches it
    assert not (tmp_path / INT8_FILE).exists()


def test_a_perturbed_int8_file_is_refused_on_its_probabilities(
    trained: BiLSTMModel, held_out: np.ndarray, tmp_path: Path
) -> None:
    float_path = export_onnx(trained, tmp_path / "model.onnx")
    shifted = copy.deepcopy(trained)
    with torch.no_grad():
        shifted.network.head.bias[2] += 1.0  # P(Up) moves by far more than int8 rounding would
    injected = quantize_onnx(export_onnx(shifted, tmp_path / "shifted.onnx"), tmp_path / INT8_FILE)
    record = check_agreement(float_path, injected, held_out)
    assert record.max_abs_diff > 0.02 and not record.accepted
    gap = np.abs(_direct(injected, held_out, 1) - _direct(float_path, held_out, 1)).max()
    assert record.max_abs_diff == pytest.approx(gap, abs=1e-3)  # the batch-64 run may stray a little further


def test_thresholds_decide_and_empty_checks_are_refused(graphs: tuple[Path, Path], held_out: np.ndarray) -> None:
    strict = check_agreement(*graphs, held_out, thresholds=Thresholds(max_abs_diff=0.0))
    assert not strict.accepted and strict.thresholds.max_abs_diff == 0.0
    with pytest.raises(ModelError, match="at least one scaled window"):
        check_agreement(*graphs, held_out[:0])


def test_write_bundle_records_the_check_on_the_windows_it_is_given(
    trained: BiLSTMModel, small_split: tuple[WindowSet, WindowSet], tmp_path: Path
) -> None:
    train, test = small_split
    folder = write_bundle(trained, train, tmp_path / "m", background_size=8, quantize_check=test)
    bundle = read_bundle(folder, name="n", version="1", alias="")
    record = bundle.quantization
    assert record is not None and record.n == len(test) and record.file == INT8_FILE
    assert str(np.datetime_as_string(test.dates.min(), unit="D")) in record.source
    assert bundle.int8_path == (folder / INT8_FILE if record.accepted else None)
    assert (folder / INT8_FILE).exists() == record.accepted
    plain = read_bundle(
        write_bundle(trained, train, tmp_path / "p", background_size=8), name="n", version="1", alias=""
    )
    assert plain.quantization is None and plain.int8_path is None and not (tmp_path / "p" / INT8_FILE).exists()


@pytest.mark.parametrize("threads", [1, 2])
def test_sessions_use_the_given_threads_and_never_spin(graphs: tuple[Path, Path], threads: int) -> None:
    options = OnnxPredictor(graphs[1], threads=threads).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == threads and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
