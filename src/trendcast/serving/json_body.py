"""Structural checks on a JSON body after orjson parsed it: nesting depth and duplicate keys.

orjson parses fast but accepts duplicate keys (the last one wins) and nests up to 1,024 levels, deeper than it can
serialise again (254). Both are refused here, at the boundary, with a 422:

- depth: containers nested deeper than MAX_JSON_DEPTH (the deepest valid body, a batch of sequences, nests 5).
- duplicate keys: {"ticker": "ZZZZ", "ticker": "MSFT"} would silently mean MSFT.

Walking every number of a 60 x 51 `sequence` in Python would cost more than parsing it, so the walk skips lists
whose first element is a number (windows of floats). The duplicate check is then made exact by counting quotes:
every key and every string the walk sees accounts for two `"` in the raw bytes; when the raw body holds exactly that
many, no key was dropped by a duplicate (a duplicate adds quotes the parsed object does not have, and the walk never
counts quotes that are not there). When the counts differ (escaped quotes, strings hidden in a skipped list, or a
duplicate), the body is parsed again with the standard library and an `object_pairs_hook` that sees every key: exact,
and only paid by unusual bodies.
"""

from __future__ import annotations

import json
from typing import Any

from trendcast.serving.errors import ApiError

MAX_JSON_DEPTH = 32


def check_structure(raw: bytes, payload: Any) -> None:
    """Raise ApiError 422 for a body nested deeper than MAX_JSON_DEPTH or holding a duplicate key."""
    depth, quotes = _walk(payload)
    if depth > MAX_JSON_DEPTH:
        raise _too_deep()
    if raw.count(b'"') != quotes:
        try:
            json.loads(raw, object_pairs_hook=_refuse_duplicates)
        except RecursionError:  # deep nesting inside a list of numbers, which the walk skipped
            raise _too_deep() from None


def _too_deep() -> ApiError:
    return ApiError(
        422,
        "too_deeply_nested",
        f"The body nests more than {MAX_JSON_DEPTH} levels of arrays and objects; send the documented shape.",
        {"max_depth": MAX_JSON_DEPTH},
    )


def _walk(value: Any, depth: int = 1) -> tuple[int, int]:
    """(deepest container level, quotes accounted for by the keys and strings seen) below `value`."""
    if isinstance(value, str):
        return depth - 1, 2
    if isinstance(value, dict):
        deepest, quotes = depth, 2 * len(value)
        for item in value.values():
            d, q = _walk(item, depth + 1)
            deepest, quotes = max(deepest, d), quotes + q
        return deepest, quotes
    if isinstance(value, list):
        if not value or isinstance(value[0], int | float):  # a row of numbers: not walked (see the module doc)
            return depth, 0
        deepest, quotes = depth, 0
        for item in value:
            d, q = _walk(item, depth + 1)
            deepest, quotes = max(deepest, d), quotes + q
        return deepest, quotes
    return depth - 1, 0


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ApiError(
                422,
                "duplicate_key",
                f"The key {key[:50]!r} appears twice in one object; send each field once.",
                {"key": key[:50]},
            )
        seen[key] = value
    return seen
