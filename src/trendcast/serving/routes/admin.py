"""POST /api/v1/admin/reload: load the current champion (admin API key required).

The new model is loaded and warmed up off the event loop, then swapped in with one reference assignment: requests
in flight finish on the old model, none fails. With Redis configured the other workers follow (see model_sync).
If loading fails the old model stays and the error is returned (503 when no model is registered).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from trendcast.serving.dependencies import ServicesDep
from trendcast.serving.model_sync import load_model
from trendcast.serving.routes.model import model_info
from trendcast.serving.routes.predictions import PREDICT_ERRORS
from trendcast.serving.schemas import ErrorResponse, ReloadPublic

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.post(
    "/reload",
    summary="Reload the champion model",
    responses={
        **{k: v for k, v in PREDICT_ERRORS.items() if k in (401, 429, 503)},
        403: {"model": ErrorResponse, "description": "Not an admin key, or the admin API is off"},
    },
)
async def reload(request: Request, services: ServicesDep) -> ReloadPublic:
    """Load the model the loader returns now (the registry alias, or the model folder) and serve it."""
    old, new = await load_model(services)
    if services.watcher is not None:
        await services.watcher.announce()
    request.app.openapi_schema = None  # window and feature count in the published schema may have changed
    return ReloadPublic(reloaded=True, previous_version=old.served.version if old else None, model=model_info(new))
