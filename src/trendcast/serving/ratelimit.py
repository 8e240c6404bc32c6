"""Per-client rate limits with the `limits` library: moving window, in-process or shared through Redis.

    Settings.rate_limit          default for every /api/v1 route, per client and route ("100/minute")
    Settings.rate_limit_predict  override for /api/v1/predict and /api/v1/predict/batch (None = the default)
    Settings.rate_limit_enabled  false turns limiting off (benchmarks)
    Settings.redis_url           set: counters live in Redis, shared by every worker and replica;
                                 unset: in the worker's memory (each worker counts on its own)

The client is the peer address; X-Forwarded-For is believed only from Settings.trusted_proxies (default: nobody),
so a client cannot pick a fresh bucket by sending the header. A batch costs one unit per item: the first unit is
taken before the body is read, the rest once the items are counted. Over the limit: 429 with Retry-After (seconds until a slot frees) and X-RateLimit-* headers.
If Redis stops answering, requests are let through and a warning is logged (availability over strictness);
/ready reports Redis as down meanwhile.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from trendcast.config import Settings
from trendcast.errors import ConfigError

logger = logging.getLogger("trendcast.serving")

PREDICT_PREFIX = "/api/v1/predict"


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int  # seconds until the next request would be allowed (0 when allowed now)


def parse_limit(text: str, setting: str) -> RateLimitItem:
    try:
        return parse(text)
    except ValueError as exc:
        raise ConfigError(f"{setting}={text!r} is not a rate limit; write e.g. '100/minute' or '10/second'") from exc


def async_redis_uri(url: str) -> str:
    """redis://... -> async+redis://... (the scheme `limits` uses for its asyncio Redis storage)."""
    return url if url.startswith("async+") else "async+" + url


def make_storage(settings: Settings) -> Storage:
    if settings.redis_url:
        return RedisStorage(
            async_redis_uri(settings.redis_url),
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix=f"{settings.redis_key_prefix}:ratelimit",
        )
    return MemoryStorage()


class RateLimiter:
    """Moving-window limits keyed by (route template, client)."""

    def __init__(self, default: RateLimitItem, predict: RateLimitItem, storage: Storage) -> None:
        self.default, self.predict = default, predict
        self.storage = storage
        self._strategy = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter | None:
        """None when limiting is disabled."""
        if not settings.rate_limit_enabled:
            return None
        default = parse_limit(settings.rate_limit, "TRENDCAST_RATE_LIMIT")
        predict = (
            parse_limit(settings.rate_limit_predict, "TRENDCAST_RATE_LIMIT_PREDICT")
            if settings.rate_limit_predict
            else default
        )
        return cls(default, predict, make_storage(settings))

    def limit_for(self, route: str) -> RateLimitItem:
        return self.predict if route.startswith(PREDICT_PREFIX) else self.default

    async def hit(self, route: str, client: str, cost: int = 1) -> RateDecision:
        """Count `cost` requests (a batch counts its items) against (route, client)."""
        item = self.limit_for(route)
        try:
            allowed = await self._strategy.hit(item, route, client, cost=cost)
            stats = await self._strategy.get_window_stats(item, route, client)
        except StorageError as exc:
            logger.warning("rate limit storage unavailable, letting the request through: %s", exc.storage_error)
            return RateDecision(True, item.amount, item.amount, 0)
        retry = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(allowed, item.amount, max(stats.remaining, 0), retry)

    async def healthy(self) -> bool:
        try:
            return bool(await self.storage.check())
        except Exception:  # any failure of the backend means "not healthy", never an error of /ready
            return False
