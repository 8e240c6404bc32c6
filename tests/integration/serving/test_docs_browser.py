"""Swagger UI and ReDoc render offline: headless Chromium with every request outside 127.0.0.1 blocked sees the
operations, with no console error (CSP violations included); with docs_require_key they need an API key."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import require_service
from tests.integration.dashboard_support import CHROMIUM, CHROMIUM_ARGS
from tests.integration.serving.conftest import USER_KEY, Server, base_env, start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keyed_server(serving_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with user keys and the docs behind them."""
    env = base_env(serving_root, TRENDCAST_API_KEYS=f'["{USER_KEY}"]', TRENDCAST_DOCS_REQUIRE_KEY="true")
    running = start_server(tmp_path_factory.mktemp("docs-keyed"), "docs-keyed", env)
    yield running
    running.stop()


def _render(base_url: str, path: str, selector: str, credentials: dict[str, str] | None = None) -> dict[str, object]:
    """Open a page with the network closed beyond 127.0.0.1; its console errors, blocked URLs and selector texts."""
    from playwright.sync_api import Route, sync_playwright

    errors: list[str] = []
    blocked: list[str] = []

    def only_local(route: Route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(http_credentials=credentials)  # type: ignore[arg-type]
            page = context.new_page()
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.route("**/*", only_local)
            page.goto(base_url + path, wait_until="load")
            page.wait_for_selector(selector, timeout=20_000)
            texts = page.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")
        finally:
            browser.close()
    return {"errors": errors, "blocked": blocked, "texts": texts}


def _require_chromium() -> None:
    require_service("chromium", CHROMIUM.exists, "apt-get install -y chromium")


def test_swagger_ui_renders_the_operations_offline(server: Server) -> None:
    _require_chromium()
    seen = _render(server.base_url, "/api/docs", ".opblock-summary-path")
    assert seen["errors"] == [] and seen["blocked"] == []
    assert "/api/v1/predict" in seen["texts"] and "/api/v1/model/info" in seen["texts"]  # type: ignore[operator]


def test_redoc_renders_the_operations_offline(server: Server) -> None:
    _require_chromium()
    seen = _render(server.base_url, "/api/redoc", "h2")  # one heading per operation, titled by its summary
    assert seen["errors"] == [] and seen["blocked"] == []
    assert "The model being served" in seen["texts"] and "Stored tickers and their date ranges" in seen["texts"]  # type: ignore[operator]


def test_docs_need_a_key_when_configured(keyed_server: Server) -> None:
    client = keyed_server.client
    for path in ("/api/docs", "/api/redoc", "/api/openapi.json"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith("Basic ")
        assert refused.json()["error"]["code"] == "unauthorized"
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401
    basic = "Basic " + base64.b64encode(f"me:{USER_KEY}".encode()).decode()
    assert client.get("/api/docs", headers={"Authorization": basic}).status_code == 200
    assert client.get("/api/openapi.json", headers={"X-API-Key": USER_KEY}).status_code == 200
    assert client.get("/api/docs-assets/redoc.standalone.js").status_code == 200  # library code is public


def test_keyed_docs_render_with_basic_auth(keyed_server: Server) -> None:
    _require_chromium()
    seen = _render(
        keyed_server.base_url,
        "/api/docs",
        ".opblock-summary-path",
        credentials={"username": "me", "password": USER_KEY},
    )
    assert seen["errors"] == [] and seen["blocked"] == []
    assert "/api/v1/predict" in seen["texts"]  # type: ignore[operator]
