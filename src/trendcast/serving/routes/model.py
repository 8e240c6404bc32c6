"""GET /api/v1/model/info: which model answers, what it expects, and how it scored when it was promoted."""

from __future__ import annotations

from fastapi import APIRouter

from trendcast.serving.dependencies import ModelDep
from trendcast.serving.inference import INT8_BACKEND, ServingModel
from trendcast.serving.routes.predictions import PREDICT_ERRORS
from trendcast.serving.schemas import ModelInfo, QuantizationInfo

router = APIRouter(prefix="/api/v1", tags=["model"])


def model_info(serving: ServingModel) -> ModelInfo:
    served, model = serving.served, serving.model
    return ModelInfo(
        name=served.name,
        version=served.version,
        alias=served.alias,
        run_id=served.run_id,
        model_type=model.name,
        backend=serving.backend.name,
        quantization=quantization_info(serving),
        trained_through=model.trained_through.date() if model.trained_through is not None else None,
        features=list(model.feature_names),
        n_features=len(model.feature_names),
        window=model.window,
        horizon=model.horizon,
        class_names=list(model.class_names),
        label_mode=model.config.labels.mode,
        metrics=dict(served.metrics),
        loaded_at=serving.loaded_at,
    )


def quantization_info(serving: ServingModel) -> QuantizationInfo | None:
    record = serving.served.quantization
    if record is None:
        return None
    return QuantizationInfo(
        file=record.file,
        agreement=record.agreement,
        max_abs_diff=record.max_abs_diff,
        n=record.n,
        source=record.source,
        min_agreement=record.thresholds.min_agreement,
        max_abs_diff_allowed=record.thresholds.max_abs_diff,
        accepted=record.accepted,
        served=serving.backend.name == INT8_BACKEND,
    )


@router.get(
    "/model/info",
    summary="The model being served",
    responses={k: v for k, v in PREDICT_ERRORS.items() if k in (401, 429, 503)},
)
async def info(serving: ModelDep) -> ModelInfo:
    """Name, registry version and alias, trained-through date, the features in input order, window and horizon,
    the walk-forward metrics it was promoted with, the backend that answers, and how its int8 graph compared with
    float32 (`quantization`). A `sequence` for /api/v1/predict is `window` rows of `n_features` values in this
    feature order."""
    return model_info(serving)
