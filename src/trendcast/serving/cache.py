"""Cache of ticker predictions, keyed by (model version, ticker, as_of): Redis when configured, else in-process.

Building a ticker's window means loading its bars and computing every indicator over its history, which costs far
more than the forward pass, and the answer only changes when the model or the bars do:

- a new model version changes the key, so a reload never serves old answers;
- a window whose `as_of` already has a later bar in the store is closed: nothing that can still arrive changes it,
  so it is kept for a day (CLOSED_TTL_S);
- a window at the edge of the data (as_of omitted, or not before the last stored bar) changes when the next bar is
  ingested, so it is kept for OPEN_TTL_S only and a new bar shows within that time.

With Redis (Settings.redis_url) every worker and replica shares entries under `<redis_key_prefix>:prediction:`; a
Redis error counts as a miss (logged), never as a failed request. The in-process cache holds at most
MEMORY_MAX_ENTRIES entries and drops the oldest first.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from trendcast.config import Settings

logger = logging.getLogger("trendcast.serving")

CLOSED_TTL_S = 24 * 3600
OPEN_TTL_S = 60
MEMORY_MAX_ENTRIES = 10_000


def cache_key(model_version: str, ticker: str, as_of: date | None) -> str:
    return f"{model_version}|{ticker}|{as_of.isoformat() if as_of else 'latest'}"


def ttl_for(closed: bool) -> int:
    return CLOSED_TTL_S if closed else OPEN_TTL_S


class PredictionCache(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...
    async def set(self, key: str, value: dict[str, Any], ttl_s: int) -> None: ...
    async def healthy(self) -> bool: ...
    async def close(self) -> None: ...


class MemoryCache:
    """A bounded TTL dict for one worker."""

    def __init__(self, max_entries: int = MEMORY_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    async def get(self, key: str) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < self._clock():
            del self._entries[key]
            return None
        return entry[1]

    async def set(self, key: str, value: dict[str, Any], ttl_s: int) -> None:
        self._entries[key] = (self._clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    """Entries as orjson bytes under `<prefix>:prediction:<key>` with a TTL."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis: Redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._prefix = f"{prefix}:prediction:"

    async def get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self._redis.get(self._prefix + key)
        except RedisError as exc:
            logger.warning("prediction cache unavailable (treated as a miss): %s", exc)
            return None
        if raw is None:
            return None
        value: dict[str, Any] = orjson.loads(raw)
        return value

    async def set(self, key: str, value: dict[str, Any], ttl_s: int) -> None:
        try:
            await self._redis.set(self._prefix + key, orjson.dumps(value), ex=ttl_s)
        except RedisError as exc:
            logger.warning("prediction cache unavailable (entry not stored): %s", exc)

    async def healthy(self) -> bool:
        try:
            pong: bool = await self._redis.ping()  # type: ignore[misc]  # redis-py types ping as sync | async
            return bool(pong)
        except RedisError:
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def make_cache(settings: Settings) -> PredictionCache:
    if settings.redis_url:
        return RedisCache(settings.redis_url, settings.redis_key_prefix)
    return MemoryCache()
