"""Dynamic int8 quantisation of the exported Bi-LSTM, and the agreement check that decides whether it may serve.

    model.onnx (float32) -> quant_pre_process (constant folding) -> quantize_dynamic(QInt8) -> model.int8.onnx
      -> check_agreement(float32, int8, scaled windows) -> QuantizationRecord (kept in the bundle's meta.json)

The dynamo exporter builds each LSTM's W and R inputs from Slice/Concat nodes over the PyTorch weights (PyTorch
orders the gates i, f, g, o; ONNX i, o, f, c). `quantize_dynamic` only quantises an LSTM whose weights are
initializers, so on the raw export it quantises the four MatMul/Gemm layers (attention projection and score, dense,
head) and leaves both LSTMs, nearly all of the weights and time, in float32. `quant_pre_process` folds those
constants first; then both LSTMs become `DynamicQuantizeLSTM` and the file shrinks about 4x.

Int8 rounding moves the probabilities a little, and on a window whose top two classes are nearly tied it can
change the predicted class. Dynamic quantisation also picks each activation's int8 scale from the whole batch, so a
window's int8 answer depends slightly (about 1e-4 measured) on which other windows share its forward pass, as the
micro-batcher's requests do. `check_agreement` therefore runs the int8 graph both one window at a time and in
batches of 64 (serving.inference.MAX_BATCH), the float32 graph once (its answers do not depend on the batch), and
records the share of windows whose predicted class is the same in every run and the largest absolute probability
gap of any run; the int8 graph is `accepted` only when both clear the thresholds. Training checks it on the last
walk-forward test fold's windows through the final model (pipelines/train.py). The final model was fitted on those
days too: the check measures how faithfully int8 reproduces float32 on recent, realistic inputs (numerical
fidelity), not how well the model generalises; the walk-forward metrics measure that.

Measured on the 2-core development VM (shared), one thread, the default network (128/64 units, window 60 x 51
features): a forward pass takes 0.23 ms in int8 against 0.48 ms in float32 at batch 1, 4.3 ms against 8.4 ms at
batch 32. A trained model of that size (window 30) agreed with float32 on 2,118 of the 2,120 windows of its last
test fold (0.9991), with probabilities at most 0.0011 apart.

This module imports ONNX Runtime only when it quantises or compares: `QuantizationRecord` is read wherever a
bundle is loaded.

Examples:
    record = quantize_checked(folder / "model.onnx", scaled_windows, source="last walk-forward test fold")
    record.accepted  # False: the int8 file was removed and the float32 graph serves
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trendcast.errors import ModelError

if TYPE_CHECKING:
    from trendcast.models.onnx_export import OnnxPredictor

INT8_FILE = "model.int8.onnx"
CHECK_BATCHES = (1, 64)  # int8 runs: a lone request, and a full micro-batch (serving.inference.MAX_BATCH)
FLOAT_BATCH = 256  # float32 answers do not depend on the batch


@dataclass(frozen=True)
class Thresholds:
    """What the int8 graph must reach against float32 on the check windows to be served."""

    min_agreement: float = 0.995  # share of windows with the same predicted class
    max_abs_diff: float = 0.02  # largest |p_int8 - p_float32| over every window and class


@dataclass(frozen=True)
class QuantizationRecord:
    """The int8 file and how it compared with float32; `accepted` says whether it may serve."""

    file: str  # the int8 graph's file name in the bundle folder
    agreement: float  # share of windows whose predicted class is the same in both graphs
    max_abs_diff: float  # max |p_int8 - p_float32| over windows and classes
    n: int  # windows compared
    accepted: bool  # agreement >= min_agreement and max_abs_diff <= max_abs_diff threshold
    thresholds: Thresholds = field(default_factory=Thresholds)
    source: str = ""  # which windows were compared, e.g. the last walk-forward test fold's dates

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuantizationRecord:
        thresholds = Thresholds(**data.get("thresholds", {}))
        fields = {k: data[k] for k in ("file", "agreement", "max_abs_diff", "n", "accepted")}
        return cls(**fields, thresholds=thresholds, source=str(data.get("source", "")))


def quantize_onnx(float_path: Path, int8_path: Path) -> Path:
    """Write the int8 (dynamic, QInt8 weights) copy of the float32 graph at `float_path` to `int8_path`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="trendcast-quant-") as tmp:
        folded = Path(tmp) / "folded.onnx"
        quant_pre_process(str(float_path), str(folded))  # LSTM weights become initializers (see module docstring)
        quantize_dynamic(folded, int8_path, weight_type=QuantType.QInt8)
    return int8_path


def _probabilities(predictor: OnnxPredictor, windows: np.ndarray, batch: int) -> np.ndarray:
    parts = [predictor.predict(windows[i : i + batch])[0] for i in range(0, len(windows), batch)]
    return np.concatenate(parts).astype(np.float64)


def check_agreement(
    float_path: Path, int8_path: Path, windows: np.ndarray, *, thresholds: Thresholds | None = None, source: str = ""
) -> QuantizationRecord:
    """Run both graphs on the scaled `windows` (n, window, n_features) and record how far int8 strays, at each of
    CHECK_BATCHES: a window agrees when its predicted class is float32's in every int8 run."""
    if len(windows) == 0:
        raise ModelError("the quantisation check needs at least one scaled window; pass the last test fold's")
    from trendcast.models.onnx_export import OnnxPredictor

    limits = thresholds or Thresholds()
    p_float = _probabilities(OnnxPredictor(float_path), windows, FLOAT_BATCH)
    int8 = OnnxPredictor(int8_path)
    runs = [_probabilities(int8, windows, batch) for batch in CHECK_BATCHES]  # each (n, 3)
    agrees = np.logical_and.reduce([p.argmax(axis=1) == p_float.argmax(axis=1) for p in runs])
    agreement = float(np.mean(agrees))
    max_abs_diff = float(max(np.abs(p - p_float).max() for p in runs))
    accepted = agreement >= limits.min_agreement and max_abs_diff <= limits.max_abs_diff
    return QuantizationRecord(int8_path.name, agreement, max_abs_diff, len(windows), accepted, limits, source)


def quantize_checked(
    float_path: Path, windows: np.ndarray, *, thresholds: Thresholds | None = None, source: str = ""
) -> QuantizationRecord:
    """Quantise the graph at `float_path` into INT8_FILE beside it and check it on `windows`. A rejected int8 file
    is removed (it must never serve); the record stays, so that /api/v1/model/info can say why."""
    int8_path = quantize_onnx(float_path, float_path.with_name(INT8_FILE))
    record = check_agreement(float_path, int8_path, windows, thresholds=thresholds, source=source)
    if not record.accepted:
        int8_path.unlink()
    return record
