"""The app factory: `create_app(settings, model_loader)` builds the FastAPI app; its lifespan loads the model once.

    ServiceMiddleware          request id, 413 body guard, security headers, 500 guard, metrics, access log
      CORSMiddleware           only when Settings.cors_origins is set
        FastAPI routes
          /health /ready /metrics            no key, no rate limit
          /api/v1/...                        rate limit, then API key (when keys are configured)
          /api/v1/admin/...                  rate limit, then admin key
          /api/docs /api/redoc /api/openapi.json   open, or an API key with docs_require_key
          /api/docs-assets/...               Swagger UI / ReDoc assets (fastapi-offline), no CDN
          / and /static/...                  the dashboard page and its files (routes/pages.py), no key

`app_from_env()` is the zero-argument factory that uvicorn (`--factory`) and Gunicorn (`gunicorn.conf.py`) call in
each worker: settings from the environment, the default loader (TRENDCAST_MODEL_DIR, else the registry champion).
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, JSONResponse, Response

from trendcast.config import Settings, load_settings
from trendcast.serving.background import ChampionPoller, DriftMonitor, OutcomeResolver, Periodic, ProcessSampler
from trendcast.serving.cache import make_cache
from trendcast.serving.dependencies import Services, StoreHandle, admin_guard, api_guard, docs_guard
from trendcast.serving.errors import install_error_handlers
from trendcast.serving.inference import ModelLoader, ModelSlot, default_loader
from trendcast.serving.logging import configure_logging
from trendcast.serving.metrics import ServiceMetrics
from trendcast.serving.middleware import RequestLimits, ServiceMiddleware
from trendcast.serving.model_sync import GenerationWatcher, try_initial_load
from trendcast.serving.openapi import install_openapi
from trendcast.serving.ratelimit import RateLimiter
from trendcast.serving.routes import admin, dashboard, health, model, predictions, tickers
from trendcast.serving.routes.pages import install_pages
from trendcast.serving.security import (
    API_KEY_HEADER,
    DOCS_ASSETS_DIR,
    DOCS_ASSETS_PATH,
    DOCS_PATH,
    OPENAPI_PATH,
    REDOC_PATH,
    REQUEST_ID_HEADER,
    KeyRing,
    docs_csp,
    redoc_html,
    redoc_script,
    swagger_html,
)
from trendcast.serving.ticker_cache import TickerFeatureCache

logger = logging.getLogger("trendcast.serving")

DESCRIPTION = """Direction forecasts (Down / Neutral / Up) for the next `horizon` trading days.

Predict from a stored ticker (`{"ticker": "MSFT", "as_of": "2012-12-28"}`, the server builds and scales the window)
or from a window you scaled yourself (`{"sequence": [[...], ...]}`, see `GET /api/v1/model/info`). Every error has
the shape `{"error": {"code", "message", "request_id", "details"}}`. Limits: 100 requests/minute per client and
route by default (429 with Retry-After). When the server has API keys, send one in `X-API-Key`.
"""


def _services(settings: Settings, loader: ModelLoader) -> Services:
    return Services(
        settings=settings,
        loader=loader,
        slot=ModelSlot(),
        store=StoreHandle(settings.resolved_database_url),
        metrics=ServiceMetrics(),
        cache=make_cache(settings),
        limiter=RateLimiter.from_settings(settings),
        api_keys=KeyRing(settings.all_api_keys()),
        admin_keys=KeyRing(settings.all_admin_keys()),
        features=TickerFeatureCache(settings.ticker_cache_size),
    )


def _background_tasks(services: Services) -> list[Periodic]:
    """Drift gauges, prediction outcomes and process gauges always; following the champion alias when
    TRENDCAST_MODEL_POLL_SECONDS is set (registry only)."""
    tasks: list[Periodic] = [DriftMonitor(services), OutcomeResolver(services), ProcessSampler(services)]
    poll = services.settings.model_poll_seconds
    if poll is not None and services.settings.model_dir is None:
        tasks.append(ChampionPoller(services, poll))
    return tasks


def _lifespan(services: Services) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await try_initial_load(services)
        if services.settings.redis_url:
            services.watcher = GenerationWatcher(
                services, services.settings.redis_url, services.settings.redis_key_prefix
            )
            await services.watcher.start()
        background = _background_tasks(services)
        for task in background:
            task.start()
        try:
            yield
        finally:
            for task in background:
                await task.stop()
            if services.watcher is not None:
                await services.watcher.stop()
            await services.cache.close()
            services.store.close()
            services.features.close()

    return lifespan


def _docs_router(app: FastAPI) -> tuple[APIRouter, dict[str, str]]:
    """The OpenAPI document, Swagger UI and ReDoc pages (as routes, so metrics see their templates; behind
    `docs_guard`), and the CSP the two pages need. Their assets are mounted by `_mount_docs_assets`."""
    swagger = swagger_html(app.title)
    redoc = redoc_html(app.title)
    router = APIRouter(include_in_schema=False, dependencies=[Depends(docs_guard)])

    @router.get(OPENAPI_PATH)
    async def openapi_document() -> Response:
        return JSONResponse(app.openapi())

    @router.get(DOCS_PATH)
    async def swagger_ui() -> Response:
        return HTMLResponse(swagger)

    @router.get(REDOC_PATH)
    async def redoc_ui() -> Response:
        return HTMLResponse(redoc)

    policy = docs_csp(swagger)
    return router, {DOCS_PATH: policy, REDOC_PATH: policy}


def _mount_docs_assets(app: FastAPI) -> None:
    """Swagger UI's and ReDoc's JavaScript and CSS from the fastapi-offline package: no CDN, works offline (ReDoc's
    script with its one remote image pointed home, see `redoc_script`)."""
    redoc = redoc_script()

    @app.get(f"{DOCS_ASSETS_PATH}/redoc.standalone.js", include_in_schema=False)
    async def redoc_asset() -> Response:
        return Response(redoc, media_type="text/javascript; charset=utf-8")

    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")


def _include_routes(app: FastAPI) -> None:
    app.include_router(health.router)
    for router in (predictions.router, model.router, tickers.router, dashboard.router):
        app.include_router(router, dependencies=[Depends(api_guard)])
    app.include_router(admin.router, dependencies=[Depends(admin_guard)])


def create_app(settings: Settings | None = None, model_loader: ModelLoader | None = None) -> FastAPI:
    """The service. `model_loader(settings)` returns the model to serve (default: TRENDCAST_MODEL_DIR when set,
    else the registry champion behind settings.model_alias); it runs at startup and on every admin reload.

    Examples:
        app = create_app(Settings(model_dir=Path("artifacts/model")))
        uvicorn.run(app)
    """
    settings = settings or load_settings()
    configure_logging(settings)
    services = _services(settings, model_loader or default_loader)
    app = FastAPI(
        title="trendcast",
        version=_version(),
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,  # a redirect built from the Host header would point wherever the client says
        lifespan=_lifespan(services),
    )
    app.state.services = services
    install_error_handlers(app)
    _include_routes(app)
    docs, csp_by_path = _docs_router(app)
    app.include_router(docs)
    csp_by_path.update(install_pages(app))  # the dashboard: GET / and /static/*, no API key
    _mount_docs_assets(app)
    install_openapi(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", API_KEY_HEADER, REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"],
            max_age=600,
        )
    app.add_middleware(
        ServiceMiddleware,
        metrics=services.metrics,
        limits=RequestLimits(settings.max_body_bytes, settings.max_header_bytes, settings.body_timeout_seconds),
        production=settings.environment == "production",
        csp_by_path=csp_by_path,
    )
    return app


def _version() -> str:
    try:
        return importlib.metadata.version("trendcast")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def app_from_env() -> FastAPI:
    """Factory for uvicorn (`--factory`) and Gunicorn: Settings from TRENDCAST_* variables, the default loader."""
    return create_app(load_settings())
