"""What routes depend on, as `Annotated` aliases: the services of this worker, the current model, the store, and
the guards (API key, admin key, rate limit) that routers attach.

Every dependency is `async def` on purpose: FastAPI runs plain `def` dependencies in a thread pool, and that hop
cost more than the rest of a prediction request's framework overhead together. For the same reason the prediction
routes take only the `Request` and call `services_of` / `current_model` themselves.

`Services` is built once per worker by the lifespan in `app.py` and kept on `app.state.services`. Tests override
the model through `create_app(settings, model_loader=...)`, the same seam production uses.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from trendcast.config import Settings
from trendcast.data.store import BarStore
from trendcast.errors import ModelNotReadyError
from trendcast.serving.cache import PredictionCache
from trendcast.serving.errors import ApiError
from trendcast.serving.inference import ModelLoader, ModelSlot, ServingModel
from trendcast.serving.metrics import ServiceMetrics
from trendcast.serving.ratelimit import RateLimiter
from trendcast.serving.security import API_KEY_HEADER, KeyRing, basic_auth_password
from trendcast.serving.ticker_cache import TickerFeatureCache

if TYPE_CHECKING:
    from trendcast.serving.model_sync import GenerationWatcher


class StoreHandle:
    """Opens the bar store on first use and again after a failure, so the service starts while the database is down.

    Opening and querying block (SQLAlchemy), so callers use it from worker threads (`asyncio.to_thread`), never on
    the event loop; the lock keeps two threads from opening it twice."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: BarStore | None = None
        self._lock = threading.Lock()

    def get(self) -> BarStore:
        with self._lock:
            if self._store is None:
                self._store = BarStore(self.url)  # raises SourceError -> 503 store_unavailable
            return self._store

    def ping(self) -> bool:
        try:
            return self.get().ping()
        except Exception:  # any failure to open or query means "unreachable" for /ready
            return False

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


@dataclass
class Services:
    """Per-worker services, built once by the lifespan."""

    settings: Settings
    loader: ModelLoader
    slot: ModelSlot
    store: StoreHandle
    metrics: ServiceMetrics
    cache: PredictionCache
    limiter: RateLimiter | None
    api_keys: KeyRing
    admin_keys: KeyRing
    features: TickerFeatureCache  # stored tickers' feature matrices (the ticker form of the predict routes)
    watcher: GenerationWatcher | None = None  # set when Redis is configured: keeps all workers on one model
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def current_model(services: Services) -> ServingModel:
    """The current model; the reference is read once, so a reload during the request does not affect it."""
    current = services.slot.current
    if current is None:
        raise ModelNotReadyError(
            "no model is loaded yet: register a champion (`trendcast train`) or set "
            "TRENDCAST_MODEL_DIR, then POST /api/v1/admin/reload"
        )
    return current


async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_model(services: ServicesDep) -> ServingModel:
    return current_model(services)


ModelDep = Annotated[ServingModel, Depends(get_model)]


async def get_store(services: ServicesDep) -> BarStore:
    return await asyncio.to_thread(services.store.get)


StoreDep = Annotated[BarStore, Depends(get_store)]

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="API key; required on /api/v1 when the server has keys configured, and an admin key on /api/v1/admin.",
)
ApiKeyDep = Annotated[str | None, Security(api_key_header)]


async def api_guard(request: Request, key: ApiKeyDep) -> None:
    """Every /api/v1 route: the rate limit, then (when API keys are configured) one of the keys; admin keys count.

    One dependency with no sub-dependency but the key header keeps FastAPI's per-request dependency solving short:
    it is a measurable share of a prediction request's cost."""
    services = services_of(request)
    await enforce_rate_limit(request, services)
    if services.api_keys and not (services.api_keys.matches(key) or services.admin_keys.matches(key)):
        raise _unauthorized("missing" if not key else "invalid")


async def admin_guard(request: Request, key: ApiKeyDep) -> None:
    """/api/v1/admin: the rate limit, then an admin key (401 without a valid key, 403 with a non-admin key or when
    no admin key is configured)."""
    services = services_of(request)
    await enforce_rate_limit(request, services)
    if not services.admin_keys:
        raise ApiError(
            403,
            "admin_disabled",
            "The admin API is off: no admin key is configured. "
            "Set TRENDCAST_ADMIN_API_KEYS or TRENDCAST_ADMIN_API_KEYS_FILE.",
        )
    if services.admin_keys.matches(key):
        return
    if services.api_keys.matches(key):
        raise ApiError(403, "forbidden", "This API key may not use the admin API; send an admin key.")
    raise _unauthorized("missing" if not key else "invalid")


async def docs_guard(request: Request, key: ApiKeyDep) -> None:
    """/api/docs, /api/redoc and /api/openapi.json: open unless Settings.docs_require_key and API keys are configured;
    then a key as `X-API-Key` or as the password of HTTP Basic auth (a browser prompts for it)."""
    services = services_of(request)
    if not (services.settings.docs_require_key and services.api_keys):
        return
    presented = key or basic_auth_password(request.headers.get("authorization"))
    if services.api_keys.matches(presented) or services.admin_keys.matches(presented):
        return
    raise ApiError(
        401,
        "unauthorized",
        f"The API docs need an API key: send it in {API_KEY_HEADER} or as the Basic auth password.",
        headers={"WWW-Authenticate": 'Basic realm="trendcast API docs", charset="UTF-8"'},
    )


def _unauthorized(what: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        f"{what.capitalize()} API key: send a valid key in the {API_KEY_HEADER} header.",
        headers={"WWW-Authenticate": API_KEY_HEADER},
    )


def _client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def enforce_rate_limit(request: Request, services: Services, cost: int = 1) -> None:
    """Count this request (`cost` units) against (route template, client); 429 with Retry-After when over the
    limit. A batch route calls it again with the items beyond the first once it has counted them."""
    limiter = services.limiter
    if limiter is None or cost < 1:
        return
    route = getattr(request.scope.get("route"), "path", request.url.path)
    decision = await limiter.hit(route, _client_of(request), cost)
    request.state.rate_limit = decision
    if not decision.allowed:
        services.metrics.rate_limited.labels(route).inc()
        what = f"this batch needs {cost} more" if cost > 1 else "the limit is reached"
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests ({what}): the limit is {decision.limit} per "
            f"{limiter.limit_for(route).get_expiry()} s per client on this route, a batch counting one per item; "
            f"retry in {decision.retry_after_s} s.",
            {"limit": decision.limit, "retry_after_s": decision.retry_after_s, "cost": cost},
            headers={"Retry-After": str(decision.retry_after_s)},
        )
