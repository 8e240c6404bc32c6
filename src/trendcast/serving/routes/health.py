"""Operational endpoints, outside /api and outside API keys and rate limits (probes and scrapers call them).

GET /health   liveness: the process answers; touches nothing else.
GET /ready    readiness: a model is loaded, the bar store answers, and Redis answers when configured; 503 otherwise.
GET /metrics  Prometheus exposition (all workers in multiprocess mode).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.responses import Response

from trendcast.serving.dependencies import ServicesDep
from trendcast.serving.errors import ApiError
from trendcast.serving.schemas import ErrorResponse, HealthPublic, ReadyPublic

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness probe")
async def health() -> HealthPublic:
    """Answers 200 as long as the process serves HTTP. Checks nothing else, so a slow database never restarts it."""
    return HealthPublic(status="ok")


@router.get("/ready", summary="Readiness probe", responses={503: {"model": ErrorResponse, "description": "Not ready"}})
async def ready(services: ServicesDep) -> ReadyPublic:
    """200 when a model is loaded, the bar store answers and (if configured) Redis answers; 503 with the failed
    checks in `error.details.checks` otherwise."""
    checks = {"model": services.slot.current is not None, "store": await asyncio.to_thread(services.store.ping)}
    if services.settings.redis_url:
        limiter_ok = services.limiter is None or await services.limiter.healthy()
        checks["redis"] = limiter_ok and await services.cache.healthy()
    current = services.slot.current
    if current is None or not all(checks.values()):
        failed = ", ".join(name for name, ok in checks.items() if not ok)
        raise ApiError(503, "not_ready", f"Not ready: {failed} unavailable.", {"checks": checks})
    return ReadyPublic(status="ready", checks=checks, model_version=current.served.version)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format",
        }
    },
)
async def metrics(services: ServicesDep) -> Response:
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
