"""The web dashboard: GET / serves the page, /static/... its script, styles and the vendored chart library.

The page is static: every number on it comes from the JSON API (/api/v1/tickers, prices, history, backtest,
predict, explain, model/card), fetched by `static/dashboard.js`, so the HTML and files need no API key; the data
calls carry the key the user types (kept in sessionStorage) when keys are configured.

    GET /                                    index.html, Cache-Control: no-store (the middleware's default)
    GET /static/dashboard.{js,css}           Cache-Control: no-cache (revalidated by ETag on every load)
    GET /static/vendor/<name>-<version>/...  Cache-Control: one year, immutable (the version is in the path)

`DASHBOARD_CSP` allows only this origin: no inline script or style, no CDN, fetches to the same origin only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_PATH = "/static"
VENDOR_CACHE = "public, max-age=31536000, immutable"
OWN_CACHE = "no-cache"

DASHBOARD_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
async def dashboard() -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")


class DashboardFiles(StaticFiles):
    """StaticFiles with the cache policy above (the service middleware keeps a Cache-Control a response sets)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = VENDOR_CACHE if path.startswith("vendor/") else OWN_CACHE
        return response


def install_pages(app: FastAPI) -> dict[str, str]:
    """Add the page and the static files to `app`; return their Content-Security-Policy by path (`*`: prefix)."""
    app.include_router(router)
    app.mount(STATIC_PATH, DashboardFiles(directory=STATIC_DIR), name="static")
    return {"/": DASHBOARD_CSP, f"{STATIC_PATH}/*": DASHBOARD_CSP}
