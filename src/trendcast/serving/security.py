"""API keys, security headers and request ids.

API keys: the service keeps only the SHA-256 digests of the configured keys (Settings.api_keys / admin_api_keys,
or one key a line in the *_file secret files). A presented `X-API-Key` is hashed and compared with every digest
with `hmac.compare_digest`, so neither the comparison time nor an early exit tells which key (or how much of it)
matched. Keys are never logged.

    no api_keys configured        /api/v1/* is open (admin routes still need an admin key)
    api_keys configured           /api/v1/* needs one of api_keys or admin_api_keys (401 otherwise)
    /api/v1/admin/*               needs an admin key: 401 without a valid key, 403 with a non-admin key,
                                  403 when no admin key is configured at all (the admin API is off)

Headers on every response: X-Request-ID, X-Content-Type-Options, X-Frame-Options, Referrer-Policy,
Cross-Origin-Opener-Policy, Permissions-Policy, Cache-Control (API responses are not cacheable by proxies) and a
Content-Security-Policy: `default-src 'none'` for the JSON API, and for /api/docs and /api/redoc a policy that
allows exactly what Swagger UI and ReDoc load: their scripts and styles from this server (the assets ship in the
`fastapi-offline` package and are served under /api/docs-assets, so the pages work without the internet), the inline
Swagger bootstrap script by its SHA-256 hash, ReDoc's blob: worker. Strict-Transport-Security is added in production.

Docs behind a key: with Settings.docs_require_key and API keys configured, /api/docs, /api/redoc and
/api/openapi.json need a key too, sent as `X-API-Key` or as the password of HTTP Basic auth (any user name), so a
browser asks for it and Swagger UI's fetch of the schema carries it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

import fastapi_offline
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

API_KEY_HEADER = "X-API-Key"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

DOCS_PATH, REDOC_PATH, OPENAPI_PATH = "/api/docs", "/api/redoc", "/api/openapi.json"
DOCS_ASSETS_PATH = "/api/docs-assets"
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, .css, redoc.standalone.js


class KeyRing:
    """SHA-256 digests of a set of API keys, checked in constant time per key."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(_digest(key) for key in keys if key)

    def __bool__(self) -> bool:
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def matches(self, presented: str | None) -> bool:
        if not presented:
            return False
        digest = _digest(presented)
        found = False
        for known in self._digests:  # no early exit: every digest is compared
            found |= hmac.compare_digest(digest, known)
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def request_id_from(incoming: bytes | None) -> str:
    """Honour a well-formed incoming X-Request-ID (letters, digits, . _ : -; at most 128), else a new uuid4 hex."""
    if incoming:
        text = incoming.decode("latin-1")
        if _REQUEST_ID_RE.match(text):
            return text
    return uuid.uuid4().hex


def _inline_hash(html: str, tag: str) -> str:
    """CSP source for the last inline <script> or <style> of a page (Swagger UI's bootstrap code, ReDoc's reset)."""
    start = html.rindex(f"<{tag}>") + len(tag) + 2
    body = html[start : html.index(f"</{tag}>", start)]
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


def swagger_html(title: str) -> bytes:
    return bytes(
        get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
        ).body
    )


def redoc_html(title: str) -> bytes:
    return bytes(
        get_redoc_html(
            openapi_url=OPENAPI_PATH,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        ).body
    )


REDOC_REMOTE_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def redoc_script() -> bytes:
    """redoc.standalone.js as served: ReDoc's side menu loads its logo from cdn.redoc.ly at run time (there is no
    option to turn it off), which the docs CSP blocks with a console error and which fails offline; the served copy
    points that one image at the local favicon. Nothing else in the file changes."""
    script = (DOCS_ASSETS_DIR / "redoc.standalone.js").read_bytes()
    return script.replace(REDOC_REMOTE_LOGO, f"{DOCS_ASSETS_PATH}/favicon.png".encode())


API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def docs_csp(swagger_page: bytes) -> str:
    """The policy for the documentation pages: this server only, plus the pages' own inline bootstrap by hash.

    Both libraries set styles from script at run time (React style props, styled-components), which CSP counts as
    inline styles, so style-src keeps 'unsafe-inline'; scripts do not."""
    script = _inline_hash(swagger_page.decode(), "script")
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {script}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def basic_auth_password(authorization: str | None) -> str | None:
    """The password of an `Authorization: Basic` header (the user name is ignored), else None."""
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def security_headers(production: bool) -> list[tuple[bytes, bytes]]:
    """Headers added to every response (the CSP is chosen per path by the middleware)."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
        (b"cache-control", b"no-store"),
    ]
    if production:
        headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
    return headers
