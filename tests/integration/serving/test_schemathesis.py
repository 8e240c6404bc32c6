"""Property-based contract test: schemathesis generates valid and invalid requests from the published OpenAPI
document and sends them to a live server. No 5xx, every status, header and body as documented, invalid data
rejected with a 4xx.

The operations are driven through schemathesis' Python API (`as_strategy` + Hypothesis) rather than its pytest
plugin, which does not run under the pytest version used here. Examples per operation and mode are bounded so the
whole contract test takes well under a minute.

The binary window bodies of the predict routes (application/octet-stream, application/x-npy) are left out: for
`format: binary` schemathesis sends random bytes, which never have a window's exact length (all 400s, using up
about a third of the examples meant for JSON), and it cannot serialise application/x-npy at all. They are tested
in tests/unit/serving/test_binary_body.py (including a fuzz of random bytes) and test_binary_http.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.serving.conftest import ADMIN_KEY, Server

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = 30  # per operation and generation mode
JSON_ONLY = ("application/json",)
WITH_BODY = ("POST /api/v1/predict", "POST /api/v1/predict/batch", "POST /api/v1/explain")


def run_operation(operation: Any, mode: GenerationMode, server: Server) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=server.base_url, headers={"X-API-Key": ADMIN_KEY}, checks=CHECKS)

    check()


def json_bodies_only(document: dict[str, Any]) -> dict[str, Any]:
    """The published document without the binary request bodies (see the module doc)."""
    for operations in document["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media_type in [m for m in content if m not in JSON_ONLY]:
                del content[media_type]
    return document


def test_api_contract(server: Server) -> None:
    document = httpx.get(f"{server.base_url}/api/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(json_bodies_only(document))
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    labels = {op.label for op in operations}
    assert {
        "POST /api/v1/predict",
        "POST /api/v1/predict/batch",
        "POST /api/v1/explain",
        "GET /api/v1/model/info",
        "GET /api/v1/tickers",
        "POST /api/v1/admin/reload",
        "GET /health",
        "GET /ready",
    } <= labels
    for operation in operations:
        run_operation(operation, GenerationMode.POSITIVE, server)
        if operation.label in WITH_BODY:  # the others take no input that could be made invalid
            run_operation(operation, GenerationMode.NEGATIVE, server)
