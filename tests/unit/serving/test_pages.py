"""The dashboard's page and static files in-process: no API key needed, the dashboard CSP on / and /static/*, the
cache policy per file, no path traversal, and every file the page names exists (so it works offline)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pydantic import SecretStr

from tests.unit.serving.conftest import running
from trendcast.config import Settings
from trendcast.serving import create_app
from trendcast.serving.routes.pages import DASHBOARD_CSP, STATIC_DIR


def get(settings: Settings, paths: list[str]) -> list[Any]:
    async def scenario() -> list[Any]:
        async with running(create_app(settings)) as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(scenario())


def test_page_and_files_are_served_without_a_key_with_the_dashboard_csp(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_keys": [SecretStr("user-key-0123456789abcdef")]})
    page, script, styles, tickers = get(
        keyed, ["/", "/static/dashboard.js", "/static/dashboard.css", "/api/v1/tickers"]
    )
    assert page.status_code == script.status_code == styles.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for response in (page, script, styles):
        assert response.headers["content-security-policy"] == DASHBOARD_CSP
    assert "'unsafe-inline'" not in DASHBOARD_CSP
    assert page.headers["cache-control"] == "no-store"
    assert script.headers["cache-control"] == styles.headers["cache-control"] == "no-cache"
    assert tickers.status_code == 401  # the data still needs the key
    assert tickers.headers["content-security-policy"].startswith("default-src 'none'; frame-ancestors")


def test_every_file_the_page_names_is_served_and_vendor_files_are_cached_long(settings: Settings) -> None:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    named = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any("/vendor/" in path for path in named) and "/static/dashboard.js" in named
    responses = get(settings, named)
    assert [r.status_code for r in responses] == [200] * len(named)
    for path, response in zip(named, responses, strict=True):
        expected = "public, max-age=31536000, immutable" if "/vendor/" in path else "no-cache"
        assert response.headers["cache-control"] == expected, path
    assert not re.search(r"<script>|<style|style=|https?://(?!www\.tradingview\.com/)", html)  # nothing inline


def test_no_path_traversal_out_of_the_static_folder(settings: Settings) -> None:
    escaped, missing = get(settings, ["/static/%2e%2e/routes/pages.py", "/static/nope.js"])
    assert escaped.status_code == 404 and missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
