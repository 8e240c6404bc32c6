"""Request and response models of the HTTP API, separate from the domain classes.

The prediction bodies are parsed by hand on the hot path (orjson + NumPy checks, see `serving.inference`), so
`SequenceRequest`, `TickerRequest` and `BatchRequest` exist to publish the exact contract in OpenAPI and to validate
the small ticker bodies; they are strict (no coercion of "1.5" or true into numbers, no unknown fields).
Response models are what every 2xx body is checked against by the schemathesis test.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

TICKER_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9.^=-]{0,31}$"
Ticker = Annotated[str, StringConstraints(pattern=TICKER_PATTERN)]

SEQUENCE_DESCRIPTION = (
    "One window of ALREADY-SCALED features: `window` rows (time steps, oldest first), each with `n_features` "
    "numbers in the model's feature order, scaled with the model's own fitted scaler (robust z-scores, clipped to "
    "+/-8). GET /api/v1/model/info gives window, feature names and order. Raw indicator values give meaningless "
    "predictions: send {ticker, as_of} instead to let the server build and scale the window from its store."
)


class SequenceRequest(BaseModel):
    """Predict from a window you built and scaled yourself."""

    model_config = ConfigDict(extra="forbid", strict=True, title="SequenceRequest")

    sequence: list[list[float]] = Field(min_length=1, description=SEQUENCE_DESCRIPTION)


class TickerRequest(BaseModel):
    """Predict for a stored ticker: the server builds the window from bars up to `as_of`."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        title="TickerRequest",
        json_schema_extra={"examples": [{"ticker": "SPY", "as_of": "2018-12-28"}]},
    )

    ticker: Ticker = Field(description="A ticker in the server's store (GET /api/v1/tickers); case-insensitive.")
    as_of: date | None = Field(
        None,
        description="Signal date, YYYY-MM-DD: the window ends at the last bar on or before it. "
        "Omitted: the latest stored bar.",
    )


class BatchRequest(BaseModel):
    """Several predictions in one call; items may mix both forms."""

    model_config = ConfigDict(extra="forbid", strict=True, title="BatchRequest")

    items: list[SequenceRequest | TickerRequest] = Field(min_length=1, description="At most batch_max_items items.")


TopK = Annotated[int, Field(ge=1, le=20, description="How many features to name in the explanation.")]


class ExplainTickerRequest(TickerRequest):
    """Explain the prediction for a stored ticker."""

    model_config = ConfigDict(
        title="ExplainTickerRequest",
        json_schema_extra={"examples": [{"ticker": "SPY", "as_of": "2018-12-28", "top_k": 5}]},
    )

    top_k: TopK = 5


class ExplainSequenceRequest(SequenceRequest):
    """Explain the prediction for a scaled window you send (feature values are shown unscaled again)."""

    model_config = ConfigDict(title="ExplainSequenceRequest")

    top_k: TopK = 5


class ModelRef(BaseModel):
    name: str = Field(description="Registered model name.")
    version: str = Field(description="Registry version (or content hash of a served model folder).")


class PredictionPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prediction_id": "3f0c6a0e-9a55-4bd5-9a3c-2f4c7f1f0d11",
                    "predicted_class": 2,
                    "predicted_label": "Up",
                    "confidence": 0.47,
                    "probabilities": {"Down": 0.31, "Neutral": 0.22, "Up": 0.47},
                    "model": {"name": "trendcast-direction", "version": "3"},
                    "ticker": "SPY",
                    "as_of": "2018-12-28",
                    "window_end": "2018-12-28",
                    "cached": False,
                    "timestamp": "2024-05-01T12:00:00.123456+00:00",
                    "latency_ms": 1.8,
                }
            ]
        }
    )

    prediction_id: str = Field(description="uuid4 of this prediction (quote it with the request id).")
    predicted_class: int = Field(ge=0, le=2, description="0 = Down, 1 = Neutral, 2 = Up.")
    predicted_label: str
    confidence: float = Field(ge=0.0, le=1.0, description="Probability of the predicted class.")
    probabilities: dict[str, float] = Field(description="Probability of each class by name; they sum to 1.")
    model: ModelRef
    ticker: str | None = None
    as_of: date | None = Field(None, description="The requested signal date (ticker requests).")
    window_end: date | None = Field(None, description="Date of the window's last bar (ticker requests).")
    cached: bool = Field(False, description="Served from the prediction cache.")
    timestamp: datetime
    latency_ms: float = Field(description="Server time for this request, parse to response.")


class BatchPredictionPublic(BaseModel):
    predictions: list[PredictionPublic]
    count: int
    latency_ms: float


class ExplanationPublic(BaseModel):
    prediction: PredictionPublic
    explanation: dict[str, Any] = Field(description="trendcast.explain's explanation object (to_dict()).")


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str | None
    model_type: str = Field(description="Registry key of the model class, e.g. bilstm, logreg.")
    backend: str = Field(description="onnx (ONNX Runtime) or eager (the model's own predict).")
    trained_through: date | None
    features: list[str]
    n_features: int
    window: int
    horizon: int
    class_names: list[str]
    metrics: dict[str, float] = Field(description="Walk-forward metrics the model was promoted with.")
    loaded_at: datetime


class TickerInfo(BaseModel):
    ticker: str
    first: date
    last: date
    rows: int


class TickersPublic(BaseModel):
    tickers: list[TickerInfo]
    count: int


class HealthPublic(BaseModel):
    status: Literal["ok"]


class ReadyPublic(BaseModel):
    status: Literal["ready"]
    checks: dict[str, bool]
    model_version: str


class ReloadPublic(BaseModel):
    reloaded: bool
    previous_version: str | None
    model: ModelInfo


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_sequence, unknown_ticker.")
    message: str = Field(description="What is wrong and how to fix it.")
    request_id: str | None = Field(description="Also in the X-Request-ID header; quote it when reporting.")
    details: Any = Field(None, description="Structured context (field errors, missing days, expected shape).")


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "insufficient_history",
                        "request_id": "b6f0d8c2a4e94b0c8d7f6e5d4c3b2a19",
                        "message": "SPY: 12 usable bars up to 2013-03-01, 60 needed; 48 days of history are missing.",
                        "details": {"ticker": "SPY", "needed": 60, "available": 12, "missing": 48},
                    }
                }
            ]
        }
    )

    error: ErrorDetail
