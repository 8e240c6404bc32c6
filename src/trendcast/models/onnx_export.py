"""Export the fitted Bi-LSTM to ONNX and run it with ONNX Runtime.

The exported graph takes scaled windows `windows` (batch, window, n_features) float32 and returns `probabilities`
(batch, 3), the softmax of the logits in class order Down, Neutral, Up, and `attention` (batch, window). The batch
dimension is dynamic: the torch.export-based exporter is given a batch-2 example and a symbolic `batch` dimension
(a batch-1 example would fix it to 1). Scaling stays outside the graph: use `model.scale_rows` or
`model.scaler.transform(...)` before `OnnxPredictor.predict`.

The exporter is noisy about torch internals that do not affect the graph (LSTM weight attributes, deprecated size
checks, torchvision ops it skips); those exact messages are silenced during the export only, and
`max_abs_difference` checks the result against PyTorch.

Examples:
    path = export_onnx(model, "artifacts/bilstm.onnx")
    proba, attention = OnnxPredictor(path, threads=1).predict(windows)
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from trendcast.errors import ModelError, ModelNotReadyError
from trendcast.models.bilstm_attention import BiLSTMAttention, BiLSTMModel

INPUT, PROBABILITIES, ATTENTION = "windows", "probabilities", "attention"
_EXPORTER_NOISE = (  # torch-internal messages the exporter emits for any LSTM; none of them changes the graph
    r"The tensor attributes .*_flat_weights.* were assigned during export",
    r"_check_is_size will be removed",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"The \.grad attribute of a Tensor that is not a leaf Tensor is being accessed",  # dynamo probing parameters
)


class _ProbabilityHead(nn.Module):
    """The network with a softmax on its logits: (batch, window, F) -> ((batch, 3), (batch, window))."""

    def __init__(self, network: BiLSTMAttention) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, attention = self.network(x)  # (batch, 3), (batch, window)
        return torch.softmax(logits, dim=1), attention


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms" etc.
    try:
        with warnings.catch_warnings():
            for message in _EXPORTER_NOISE:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        registration.setLevel(level)


def export_onnx(model: BiLSTMModel, path: str | Path) -> Path:
    """Write the fitted model's network to `path` as ONNX with a dynamic batch dimension; returns the path."""
    head = _ProbabilityHead(copy.deepcopy(model.network)).eval()  # a copy: export must not touch the live network
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, model.window, len(model.feature_names))  # batch 2 keeps the batch dimension symbolic
    with _quiet_exporter():
        torch.onnx.export(
            head,
            (example,),
            str(out),
            dynamo=True,
            external_data=False,
            verbose=False,
            input_names=[INPUT],
            output_names=[PROBABILITIES, ATTENTION],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
    return out


def session_options(threads: int = 1) -> ort.SessionOptions:
    """`threads` intra-op threads that sleep when idle, one graph node at a time.

    ONNX Runtime's defaults (one intra-op thread per physical core, spinning while waiting for work) suit one
    process owning the machine. A service runs one worker per core, so each session gets one thread
    (Settings.onnx_threads), and spinning is off: a spinning thread burns the core another worker needs.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class OnnxPredictor:
    """ONNX Runtime session for an exported Bi-LSTM (float32 or int8); `threads` is the intra-op thread count."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        file = Path(path)
        if not file.is_file():
            raise ModelNotReadyError(f"no ONNX model at {file}; create one with export_onnx(model, path)")
        self.session = ort.InferenceSession(str(file), session_options(threads), providers=["CPUExecutionProvider"])
        shape = self.session.get_inputs()[0].shape  # ["batch", window, n_features]
        self.window, self.n_features = int(shape[1]), int(shape[2])

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (n, 3), attention (n, window)) float32 for scaled windows (n, window, n_features)."""
        if x.ndim != 3 or x.shape[1:] != (self.window, self.n_features):
            raise ModelError(f"expected scaled windows of shape (n, {self.window}, {self.n_features}), got {x.shape}")
        if len(x) == 0:
            return np.zeros((0, 3), dtype=np.float32), np.zeros((0, self.window), dtype=np.float32)
        feed = {INPUT: np.ascontiguousarray(x, dtype=np.float32)}
        proba, attention = self.session.run([PROBABILITIES, ATTENTION], feed)
        return np.asarray(proba), np.asarray(attention)


def max_abs_difference(model: BiLSTMModel, predictor: OnnxPredictor, x: np.ndarray) -> float:
    """Largest absolute gap between PyTorch and ONNX Runtime, over probabilities and attention, on windows `x`."""
    torch_proba, torch_attention = model.predict_scaled_with_attention(x)
    onnx_proba, onnx_attention = predictor.predict(x)
    return float(
        max(
            np.abs(torch_proba - onnx_proba).max(initial=0.0), np.abs(torch_attention - onnx_attention).max(initial=0.0)
        )
    )
