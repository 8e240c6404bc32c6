"""The curated public API stays complete, sorted and importable."""

from __future__ import annotations

import trendcast


def test_all_is_sorted_and_resolves() -> None:
    assert trendcast.__all__ == sorted(trendcast.__all__)
    for name in trendcast.__all__:
        assert getattr(trendcast, name) is not None, name


def test_unknown_attribute_raises() -> None:
    import pytest

    with pytest.raises(AttributeError):
        _ = trendcast.not_a_thing
