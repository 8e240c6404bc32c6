"""POST /api/v1/predict, /api/v1/predict/batch and /api/v1/explain.

Bodies are read raw and parsed with orjson; a `sequence` is checked with NumPy (shape, numbers only, finite as
float32) instead of validating every float through Pydantic, which would cost more than the forward pass. The
ticker form is small and goes through the strict Pydantic model. OpenAPI still publishes the exact request models
(`serving.openapi`), so the contract is documented and checked by the schemathesis test. The two predict routes
also take scaled windows as binary bodies (`serving.binary`: raw float32 or a .npy file), which skip JSON entirely.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import pydantic
from fastapi import APIRouter, Request
from starlette.responses import Response

from trendcast.errors import TrendcastError
from trendcast.serving.binary import SHAPE_HEADER, binary_media_type, decode_windows, read_body
from trendcast.serving.cache import cache_key, ttl_for
from trendcast.serving.dependencies import (
    ModelDep,
    Services,
    ServicesDep,
    current_model,
    enforce_rate_limit,
    services_of,
)
from trendcast.serving.errors import ApiError, for_item
from trendcast.serving.inference import (
    EXACT,
    BodyScan,
    ServingModel,
    TickerWindow,
    parse_sequence,
)
from trendcast.serving.json_body import check_structure
from trendcast.serving.schemas import (
    BatchPredictionPublic,
    ErrorResponse,
    ExplanationPublic,
    PredictionPublic,
    TickerRequest,
)

router = APIRouter(prefix="/api/v1", tags=["predictions"])

_ERR = {"model": ErrorResponse}
PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_ERR, "description": "Body is not JSON; a binary body of the wrong length or a corrupt .npy"},
    401: {**_ERR, "description": "Missing or invalid API key (when keys are configured)"},
    404: {**_ERR, "description": "Unknown ticker"},
    413: {**_ERR, "description": "Body larger than max_body_bytes"},
    415: {**_ERR, "description": "Content-Type not accepted (JSON, or the binary window types on the predict routes)"},
    422: {**_ERR, "description": "Wrong shape, non-numbers, NaN/inf, bad date, too little history, bad X-Shape"},
    429: {**_ERR, "description": "Rate limit exceeded (see Retry-After)"},
    503: {**_ERR, "description": "No model loaded, or the price store is unavailable"},
}
DEFAULT_TOP_K = 5


# -- bodies ---------------------------------------------------------------------------------------------------------
def parse_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise ApiError(400, "empty_body", "The request body is empty; send a JSON object.")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid_json",
            f"The body is not valid JSON ({exc}). NaN and Infinity are not JSON numbers: send finite values.",
        ) from exc
    if not isinstance(payload, dict):
        raise ApiError(422, "invalid_body", 'The body must be a JSON object, e.g. {"ticker": "MSFT"}.')
    check_structure(raw, payload)
    return payload


async def binary_windows(request: Request, serving: ServingModel) -> np.ndarray | None:
    """(k, window, n_features) float32 windows from a binary body (serving.binary), or None for a JSON body."""
    media_type = binary_media_type(request.headers.get("content-type"))
    if media_type is None:
        return None
    body = await read_body(request)
    return decode_windows(body, media_type, request.headers.get(SHAPE_HEADER), serving.window, serving.n_features)


def _one_window(x: np.ndarray) -> np.ndarray:
    if len(x) != 1:
        raise ApiError(
            422,
            "invalid_sequence",
            f"The body holds {len(x)} windows; /api/v1/predict takes exactly one: send several to "
            "/api/v1/predict/batch. (Raw float64 bytes read as float32 look like twice the windows: send float32.)",
            {"windows": len(x)},
        )
    return x


def validate_ticker_request(item: dict[str, Any], where: str = "") -> TickerRequest:
    try:
        return TickerRequest.model_validate_json(orjson.dumps(item))
    except orjson.JSONEncodeError as exc:  # a value nested past orjson's limit inside a list the walk skipped
        raise ApiError(422, "too_deeply_nested", f"Invalid request{where}: a field nests too deep.") from exc
    except pydantic.ValidationError as exc:
        details = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        first = details[0]
        field = ".".join(first["loc"]) or "body"
        raise ApiError(
            422,
            "validation_error",
            f'Invalid request{where}: {field}: {first["msg"]}. Send {{"sequence": [[...], ...]}} or '
            '{"ticker": "MSFT", "as_of": "YYYY-MM-DD"}.',
            details,
        ) from exc


def _only_sequence(item: dict[str, Any], where: str = "") -> Any:
    if len(item) != 1:
        extra = sorted(k for k in item if k != "sequence")
        raise ApiError(
            422,
            "invalid_body",
            f'Unexpected field(s) {extra}{where}: send either {{"sequence": ...}} or '
            '{"ticker": ..., "as_of": ...}, not both.',
            {"unexpected": extra},
        )
    return item["sequence"]


# -- one prediction ------------------------------------------------------------------------------------------------
def prediction_dict(
    proba: np.ndarray,
    serving: ServingModel,
    services: Services,
    started: float,
    *,
    source: str,
    ticker: str | None = None,
    as_of: date | None = None,
    window_end: str | None = None,
    cached: bool = False,
) -> dict[str, Any]:
    """The PredictionPublic body for one row of probabilities; also counts it in the metrics."""
    names = serving.class_names
    k = int(np.argmax(proba))
    confidence = float(proba[k])
    services.metrics.predictions.labels(names[k], source).inc()
    services.metrics.confidence.observe(confidence)
    if ticker is not None and window_end is not None and not cached:  # judged against the label once it is stored
        version = serving.served.version
        services.metrics.ticker_prediction(ticker, date.fromisoformat(window_end), version, k, serving.model)
    return {
        "prediction_id": str(uuid.uuid4()),
        "predicted_class": k,
        "predicted_label": names[k],
        "confidence": confidence,
        "probabilities": {n: float(p) for n, p in zip(names, proba, strict=True)},
        "model": {"name": serving.served.name, "version": serving.served.version},
        "ticker": ticker,
        "as_of": as_of.isoformat() if as_of else None,
        "window_end": window_end,
        "cached": cached,
        "timestamp": datetime.now(UTC).isoformat(),
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "label_mode": serving.model.config.labels.mode,  # what the probabilities refer to
    }


def stored_window(services: Services, ticker: str, as_of: date | None, serving: ServingModel) -> TickerWindow:
    """The model's input for a stored ticker (blocking: store and features; call it in a worker thread), from the
    worker's feature cache (serving.ticker_cache: one freshness query and a slice instead of every indicator)."""
    return services.features.window(services.store.get(), ticker, as_of, serving.model, serving.served.version)


async def ticker_probabilities(
    request: TickerRequest, services: Services, serving: ServingModel
) -> tuple[np.ndarray, str, bool]:
    """(probabilities, window end date, served from cache) for a stored ticker, through the prediction cache."""
    ticker = request.ticker.upper()
    key = cache_key(serving.served.version, ticker, request.as_of)
    hit = await services.cache.get(key)
    if hit is not None:
        services.metrics.cache.labels("hit").inc()
        return np.asarray(hit["proba"], dtype=np.float64), str(hit["window_end"]), True
    services.metrics.cache.labels("miss").inc()
    window = await asyncio.to_thread(stored_window, services, ticker, request.as_of, serving)
    proba = (await serving.predict(window.scaled[None]))[0]
    end = window.window_end.isoformat()
    await services.cache.set(key, {"proba": proba.tolist(), "window_end": end}, ttl_for(window.closed))
    return proba, end, False


async def predict_item(
    item: dict[str, Any], scan: BodyScan, services: Services, serving: ServingModel, started: float, where: str = ""
) -> dict[str, Any]:
    if "sequence" in item:
        x = parse_sequence(_only_sequence(item, where), serving.window, serving.n_features, scan)
        proba = (await serving.predict(x[None]))[0]
        return prediction_dict(proba, serving, services, started, source="sequence")
    request = validate_ticker_request(item, where)
    proba, end, cached = await ticker_probabilities(request, services, serving)
    return prediction_dict(
        proba,
        serving,
        services,
        started,
        source="ticker",
        ticker=request.ticker.upper(),
        as_of=request.as_of,
        window_end=end,
        cached=cached,
    )


def _json(data: dict[str, Any]) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


@router.post(
    "/predict",
    summary="Predict the direction for one window",
    response_model=PredictionPublic,
    responses=PREDICT_ERRORS,
)
async def predict(request: Request) -> Response:
    """Send either a scaled window `{"sequence": [[...], ...]}` (window x features, see /api/v1/model/info) or a
    stored ticker `{"ticker": "MSFT", "as_of": "2012-12-28"}`; get the class, its probability and all three.
    The window may also come as binary: raw float32 (`application/octet-stream`) or a .npy file (`application/x-npy`)."""
    started = time.perf_counter()
    services = services_of(request)
    serving = current_model(services)
    x = await binary_windows(request, serving)
    if x is not None:
        proba = (await serving.predict(_one_window(x)))[0]
        return _json(prediction_dict(proba, serving, services, started, source="sequence"))
    raw = await request.body()
    return _json(await predict_item(parse_object(raw), BodyScan.of(raw), services, serving, started))


# -- batch -----------------------------------------------------------------------------------------------------------
def _check_batch_size(count: int, limit: int, what: str = "items") -> None:
    if count > limit:
        raise ApiError(
            422,
            "too_many_items",
            f"{count} {what} sent; at most {limit} per batch. Split the batch.",
            {"max_items": limit},
        )


def _batch_items(payload: dict[str, Any], limit: int) -> list[Any]:
    items = payload.get("items")
    if set(payload) != {"items"} or not isinstance(items, list) or not items:
        raise ApiError(422, "invalid_body", 'Send {"items": [...]} with 1 or more prediction requests.')
    _check_batch_size(len(items), limit)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiError(422, "invalid_body", f"items[{i}] must be a JSON object.", {"item": i})
    return items


@router.post(
    "/predict/batch",
    summary="Predict for several windows or tickers",
    response_model=BatchPredictionPublic,
    responses=PREDICT_ERRORS,
)
async def predict_batch(request: Request) -> Response:
    """`{"items": [...]}` with up to `batch_max_items` items of either form; sequences share one forward pass.
    The first invalid item fails the whole batch (4xx naming `items[i]`). Windows may also come as one binary body
    (`application/octet-stream` or `application/x-npy`, up to `batch_max_items` windows): one prediction each."""
    started = time.perf_counter()
    services = services_of(request)
    serving = current_model(services)
    x = await binary_windows(request, serving)
    if x is not None:
        return await _predict_windows(request, x, services, serving, started)
    raw = await request.body()
    items = _batch_items(parse_object(raw), services.settings.batch_max_items)
    await enforce_rate_limit(request, services, cost=len(items) - 1)  # the first unit was taken by the guard
    scan = BodyScan(numbers_only=False, may_hold_bools=BodyScan.of(raw).may_hold_bools)
    windows: dict[int, np.ndarray] = {}
    tickers: dict[int, TickerRequest] = {}
    for i, item in enumerate(items):
        try:
            if "sequence" in item:
                windows[i] = parse_sequence(_only_sequence(item), serving.window, serving.n_features, scan)
            else:
                tickers[i] = validate_ticker_request(item)
        except (ApiError, TrendcastError) as exc:
            raise for_item(exc, i) from exc
    probas = (await serving.predict(np.stack(list(windows.values())))) if windows else np.zeros((0, 3))
    by_item = dict(zip(windows, probas, strict=True))
    results: list[dict[str, Any]] = []
    for i in range(len(items)):
        if i in by_item:
            results.append(prediction_dict(by_item[i], serving, services, started, source="sequence"))
            continue
        req = tickers[i]
        try:
            proba, end, cached = await ticker_probabilities(req, services, serving)
        except (ApiError, TrendcastError) as exc:
            raise for_item(exc, i) from exc
        results.append(
            prediction_dict(
                proba,
                serving,
                services,
                started,
                source="ticker",
                ticker=req.ticker.upper(),
                as_of=req.as_of,
                window_end=end,
                cached=cached,
            )
        )
    return _json(
        {"predictions": results, "count": len(results), "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
    )


async def _predict_windows(
    request: Request, x: np.ndarray, services: Services, serving: ServingModel, started: float
) -> Response:
    """The batch response for (k, window, n_features) windows from a binary body: one forward pass."""
    _check_batch_size(len(x), services.settings.batch_max_items, "windows")
    await enforce_rate_limit(request, services, cost=len(x) - 1)  # the first unit was taken by the guard
    probas = await serving.predict(x)
    results = [prediction_dict(proba, serving, services, started, source="sequence") for proba in probas]
    return _json(
        {"predictions": results, "count": len(results), "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
    )


# -- explain ---------------------------------------------------------------------------------------------------------
def _top_k(payload: dict[str, Any]) -> int:
    value = payload.pop("top_k", DEFAULT_TOP_K)
    if type(value) is not int or not 1 <= value <= 20:
        raise ApiError(422, "validation_error", "top_k must be an integer from 1 to 20.", {"top_k": value})
    return value


def _method(payload: dict[str, Any]) -> Literal["auto", "lime"]:
    value = payload.pop("method", "auto")
    if value not in ("auto", "lime"):
        raise ApiError(422, "validation_error", 'method must be "auto" or "lime".', {"method": value})
    return "lime" if value == "lime" else "auto"


def _unscale(serving: ServingModel, x: np.ndarray) -> np.ndarray:
    """Back from scaled to raw feature values (exact except where the scaler clipped)."""
    scaler = serving.model.scaler
    if scaler is None or scaler.center_ is None or scaler.scale_ is None:
        raise ApiError(503, "model_not_ready", "The loaded model has no fitted scaler.")
    return np.asarray(x, dtype=np.float64) * scaler.scale_ + scaler.center_


def _explain(
    serving: ServingModel,
    window: np.ndarray,
    dates: list[pd.Timestamp] | None,
    ticker: str | None,
    top_k: int,
    method: Literal["auto", "lime"] = "auto",
) -> dict[str, Any]:
    from trendcast.explain.explanation import explain_window

    background = serving.served.background()
    if method == "lime" and background is None:
        raise ApiError(
            409,
            "no_background",
            "LIME samples from the explainer background saved with the model, and this model has none; retrain "
            'with this version (`trendcast train`) to save one, or use "method": "auto".',
        )
    explanation = explain_window(serving.model, window, dates, ticker, top_k, background, method=method)
    result: dict[str, Any] = explanation.to_dict()
    return result


EXPLAIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **PREDICT_ERRORS,
    409: {**_ERR, "description": 'method "lime" on a model saved without an explainer background (no_background)'},
}


@router.post("/explain", summary="Explain one prediction", response_model=ExplanationPublic, responses=EXPLAIN_ERRORS)
async def explain(request: Request, services: ServicesDep, serving: ModelDep) -> Response:
    """Which features pushed the prediction, by how much (attributions that add up to the model output), the
    Bi-LSTM's attention over the window's days, and a one-sentence summary. Body: a ticker form or a sequence form,
    each with an optional `top_k` (default 5) and `method`: "auto" (default: Integrated Gradients for the Bi-LSTM,
    TreeSHAP for LightGBM, exact linear SHAP for logistic regression) or "lime" (LIME's local linear model)."""
    started = time.perf_counter()
    raw = await request.body()
    payload = parse_object(raw)
    top_k = _top_k(payload)
    method = _method(payload)
    if "sequence" in payload:
        x = parse_sequence(_only_sequence(payload), serving.window, serving.n_features, EXACT)
        proba = (await serving.predict(x[None]))[0]
        prediction = prediction_dict(proba, serving, services, started, source="sequence")
        window, dates, ticker = _unscale(serving, x), None, None
    else:
        req = validate_ticker_request(payload)
        tw = await asyncio.to_thread(stored_window, services, req.ticker.upper(), req.as_of, serving)
        proba = (await serving.predict(tw.scaled[None]))[0]
        prediction = prediction_dict(
            proba,
            serving,
            services,
            started,
            source="ticker",
            ticker=tw.ticker,
            as_of=req.as_of,
            window_end=tw.window_end.isoformat(),
        )
        window, dates, ticker = tw.unscaled, [pd.Timestamp(d) for d in tw.dates], tw.ticker
    explanation = await asyncio.to_thread(_explain, serving, window, dates, ticker, top_k, method)
    prediction["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return _json({"prediction": prediction, "explanation": explanation})
