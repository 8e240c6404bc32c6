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

from trendcast.data.validation import TICKER_PATTERN

Ticker = Annotated[str, StringConstraints(pattern=TICKER_PATTERN)]  # the pattern ingest applies too
LabelMode = Literal["absolute", "cross_sectional"]  # LabelConfig.mode of the served model

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
        json_schema_extra={"examples": [{"ticker": "MSFT", "as_of": "2012-12-28"}]},
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
ExplainMethod = Annotated[
    Literal["auto", "lime"],
    Field(
        description='"auto": the model\'s own attribution (Integrated Gradients for the Bi-LSTM, TreeSHAP for '
        'LightGBM, exact linear SHAP for logistic regression); "lime": LIME\'s local linear model (any model, under '
        "1 s, contributions that do not add up exactly: see additivity_error and method_details.score)."
    ),
]


class ExplainTickerRequest(TickerRequest):
    """Explain the prediction for a stored ticker."""

    model_config = ConfigDict(
        title="ExplainTickerRequest",
        json_schema_extra={"examples": [{"ticker": "MSFT", "as_of": "2012-12-28", "top_k": 5, "method": "auto"}]},
    )

    top_k: TopK = 5
    method: ExplainMethod = "auto"


class ExplainSequenceRequest(SequenceRequest):
    """Explain the prediction for a scaled window you send (feature values are shown unscaled again)."""

    model_config = ConfigDict(title="ExplainSequenceRequest")

    top_k: TopK = 5
    method: ExplainMethod = "auto"


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
                    "ticker": "MSFT",
                    "as_of": "2012-12-28",
                    "window_end": "2012-12-28",
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
    label_mode: LabelMode | None = Field(
        None,
        description="What the probabilities refer to. absolute: Down / Neutral / Up moves beyond the neutral band; "
        "cross_sectional: Up = forward return above that day's cross-sectional median, Down = at or below it "
        "(Neutral never occurs and has probability 0). Null from services that predate it (read as absolute).",
    )


class BatchPredictionPublic(BaseModel):
    predictions: list[PredictionPublic]
    count: int
    latency_ms: float


class ExplanationPublic(BaseModel):
    prediction: PredictionPublic
    explanation: dict[str, Any] = Field(description="trendcast.explain's explanation object (to_dict()).")


class QuantizationInfo(BaseModel):
    """How the model's int8 graph compared with float32 when it was trained, and whether it answers now."""

    file: str = Field(description="The int8 graph's file in the model folder (removed when not accepted).")
    agreement: float = Field(description="Share of the compared windows with the same predicted class.")
    max_abs_diff: float = Field(description="Largest |p_int8 - p_float32| over the compared windows and classes.")
    n: int = Field(description="Windows compared: a sample of the last walk-forward test fold's.")
    source: str = Field(description="Which windows were compared.")
    min_agreement: float = Field(description="Agreement needed to accept the int8 graph.")
    max_abs_diff_allowed: float = Field(description="Largest probability difference accepted.")
    accepted: bool = Field(description="Both thresholds met: the int8 graph may serve.")
    served: bool = Field(description="The int8 graph answers now (accepted and TRENDCAST_SERVE_QUANTIZED on).")


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str | None
    model_type: str = Field(description="Registry key of the model class, e.g. bilstm, logreg.")
    backend: str = Field(
        description="onnx-int8 (ONNX Runtime, the int8 graph), onnx (ONNX Runtime, float32) or eager (the model's "
        "own predict)."
    )
    quantization: QuantizationInfo | None = Field(
        description="The int8 graph's check against float32; null when the model has none (not an ONNX model, or "
        "saved without the check)."
    )
    trained_through: date | None
    features: list[str]
    n_features: int
    window: int
    horizon: int
    class_names: list[str]
    label_mode: LabelMode = Field(
        "absolute",
        description="absolute: Down / Neutral / Up by the size of the forward return; cross_sectional: Up = above "
        "that day's cross-sectional median, Down = at or below it (binary: Neutral has probability 0).",
    )
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


# -- dashboard (routes/dashboard.py) ----------------------------------------------------------------------------------
Direction = Literal["Down", "Neutral", "Up"]
Day = date  # a field named `date` would shadow the type in its own class body


class PriceBar(BaseModel):
    date: Day
    open: float
    high: float
    low: float
    close: float
    volume: float


class PricesPublic(BaseModel):
    ticker: str
    bars: list[PriceBar] = Field(description="Stored daily bars, oldest first (raw, not adjusted).")
    count: int


class HistoryPoint(BaseModel):
    date: Day = Field(description="Signal date: the close the prediction was computed from.")
    predicted: Direction
    p_down: float
    p_neutral: float
    p_up: float
    confidence: float = Field(description="Probability of the predicted class.")
    actual: Direction | None = Field(description="The realised direction over the horizon; null when not known.")
    correct: bool | None = Field(description="predicted == actual; null when the outcome is not known.")
    fold: int | None = Field(description="Walk-forward fold the prediction was made in (the model never saw it).")


class HistoryPublic(BaseModel):
    ticker: str
    model: ModelRef
    model_type: str
    source: Literal["walk_forward"] = Field(
        description="Out-of-sample walk-forward predictions of the served model's kind, saved with the model."
    )
    horizon: int = Field(description="Trading days ahead each prediction looks.")
    points: list[HistoryPoint]
    count: int
    hit_rate: float | None = Field(description="Share of correct predictions among those with a known outcome.")
    known: int = Field(description="Points with a known outcome.")


class EquityPoint(BaseModel):
    date: Day
    strategy: float = Field(description="Strategy equity after costs, starting at 1.0.")
    buy_and_hold: float = Field(description="Buy-and-hold equity, starting at 1.0.")
    strategy_drawdown: float = Field(description="Strategy equity / running peak - 1 (0 or negative).")
    buy_and_hold_drawdown: float


class BacktestMetrics(BaseModel):
    """Backtest statistics (trendcast.backtest.metrics); null where undefined (e.g. no trade, no loss)."""

    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None = Field(description="Deepest fall from a peak, a negative fraction.")
    annual_return: float | None = Field(description="Compound annual growth rate (CAGR).")
    total_return: float | None
    volatility: float | None = Field(description="Annualised standard deviation of daily returns.")
    win_rate: float | None = Field(description="Share of days with a positive return.")
    win_rate_trades: float | None = Field(description="Share of closed trades with a positive return.")
    profit_factor: float | None = Field(description="Sum of gains / sum of losses over days.")
    exposure: float | None = Field(description="Average share of capital in the market.")
    trades: int | None = Field(description="Round trips (buy-and-hold: 1).")
    turnover: float | None = Field(description="Annualised traded volume as a multiple of capital.")
    total_costs: float | None = Field(description="Costs paid, as a fraction of starting capital.")


class BacktestMetricsPair(BaseModel):
    strategy: BacktestMetrics
    buy_and_hold: BacktestMetrics


class BacktestPublic(BaseModel):
    ticker: str
    model_type: str
    execution: Literal["next_open", "next_close"] = Field(
        description="When a signal from the close of day t trades: the open or the close of day t + 1."
    )
    costs_bps: float = Field(description="Commission + slippage per unit of position traded, in basis points.")
    entry_rule: str | None = Field(
        None,
        description="The entry rule the backtest applied, e.g. 'long when P(Up)-P(Down) > its training-fold 50% "
        "quantile (fold thresholds 0.012..0.034)'; null when no prediction falls in the range.",
    )
    equity: list[EquityPoint] = Field(description="From the bar before the first trade (1.0) to the last exit.")
    metrics: BacktestMetricsPair
    count: int = Field(description="Equity points.")


class Interval(BaseModel):
    value: float | None
    low: float | None = Field(description="95% block-bootstrap interval over days; null when not computed.")
    high: float | None


class ModelScorePublic(BaseModel):
    model: str = Field(description="Model kind as evaluated, e.g. lightgbm, majority; champion = the previous one.")
    served: bool = Field(description="This is the kind of the model being served.")
    accuracy: Interval
    auc: Interval = Field(description="Macro one-vs-rest AUC, the primary metric.")
    log_loss: Interval
    n: int = Field(description="Out-of-sample predictions scored.")


class GatePublic(BaseModel):
    name: str = Field(description="finite, skill, champion or calibration (pipelines/retrain.py).")
    passed: bool
    detail: str = Field(description="What the gate found, in words.")


class DecisionPublic(BaseModel):
    promoted: bool
    reason: str
    gates: list[GatePublic]


class ModelCardPublic(BaseModel):
    name: str
    version: str
    alias: str
    model_type: str
    run_id: str | None
    trained_through: date | None
    horizon: int
    window: int
    label_mode: LabelMode = Field(
        "absolute", description="absolute or cross_sectional (Up / Down relative to the day's median), as model/info."
    )
    primary_metric: Literal["auc"]
    scores: list[ModelScorePublic] = Field(
        description="Pooled out-of-sample scores of every model evaluated with it (baselines included), the served "
        "kind first; empty when the model was saved without its training report."
    )
    decision: DecisionPublic | None = Field(description="The promotion decision recorded for this version, if any.")
    verdict: Literal["better", "not_better", "unknown"] = Field(
        description="Whether the served model beats every baseline out of sample (rule in docs/api.md)."
    )
    statement: str = Field(description="The verdict as one plain sentence with its numbers.")


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
                        "message": "MSFT: 12 usable bars up to 2000-06-08, 60 needed; 48 days of history are missing.",
                        "details": {"ticker": "MSFT", "needed": 60, "available": 12, "missing": 48},
                    }
                }
            ]
        }
    )

    error: ErrorDetail
