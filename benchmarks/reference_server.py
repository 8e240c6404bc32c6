"""The service a user would write by hand, as the yardstick of benchmarks/bench_api.py.

    REFERENCE_ONNX=model.onnx python -m uvicorn reference_server:app --app-dir benchmarks --workers 2

FastAPI with a Pydantic `list[list[float]]` body (every float validated by Pydantic), one ONNX Runtime session per
worker with its default options, one `session.run` per request (no batching), the handler a plain `def` as FastAPI's
documentation advises for blocking calls (so it runs in the thread pool), and the default uvicorn (uvloop and
httptools when installed, as they are here). No middleware, metrics, logging or checks beyond Pydantic's.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel

session = ort.InferenceSession(os.environ["REFERENCE_ONNX"], providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
app = FastAPI()


class PredictRequest(BaseModel):
    sequence: list[list[float]]


class PredictResponse(BaseModel):
    predicted_class: int
    probabilities: list[float]


@app.post("/predict")
def predict(request: PredictRequest) -> PredictResponse:
    x = np.asarray([request.sequence], dtype=np.float32)
    probabilities = session.run(None, {input_name: x})[0][0]
    return PredictResponse(predicted_class=int(np.argmax(probabilities)), probabilities=probabilities.tolist())
