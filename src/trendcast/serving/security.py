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
allows exactly what Swagger UI and ReDoc load (their CDN scripts and styles, the inline Swagger bootstrap script by
its SHA-256 hash, ReDoc's blob: worker). Strict-Transport-Security is added in production.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable

from fastapi.openapi.docs import get_swagger_ui_html

API_KEY_HEADER = "X-API-Key"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

DOCS_PATH, REDOC_PATH, OPENAPI_PATH = "/api/docs", "/api/redoc", "/api/openapi.json"
CDN = "https://cdn.jsdelivr.net"


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


def _script_hash(html: str) -> str:
    """CSP source for the last inline <script> of a page (Swagger UI's bootstrap code)."""
    start = html.rindex("<script>") + len("<script>")
    body = html[start : html.index("</script>", start)]
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


def swagger_html(title: str) -> bytes:
    return bytes(get_swagger_ui_html(openapi_url=OPENAPI_PATH, title=f"{title} - Swagger UI").body)


API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def docs_csp(swagger_page: bytes) -> str:
    """The policy for the documentation pages: what Swagger UI and ReDoc need, nothing more."""
    inline = _script_hash(swagger_page.decode())
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {CDN} {inline}",
            f"style-src 'self' {CDN} https://fonts.googleapis.com 'unsafe-inline'",
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
            "font-src 'self' https://fonts.gstatic.com",
            "connect-src 'self'",
            "worker-src blob:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


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
