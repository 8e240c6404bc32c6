"""Every example a user is shown works on what `make run` loads: the curl commands in README.md and docs/api.md and
the request examples in the OpenAPI document, run against a real server over the bundled tickers (AAPL, MSFT, IBM)
with a champion trained through the CLI."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.dashboard_support import build_data_dir
from tests.integration.serving.conftest import REPO, Server, start_server

pytestmark = pytest.mark.integration

DOCUMENTS = (REPO / "README.md", REPO / "docs" / "api.md")


@pytest.fixture(scope="module")
def bundled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = build_data_dir(tmp_path_factory.mktemp("examples"))
    running = start_server(tmp_path_factory.mktemp("examples-server"), "examples", env)
    yield running
    running.stop()


def curl_commands(path: Path) -> list[list[str]]:
    """The `curl` commands of a document's code blocks, continuation lines joined, comments and pipes dropped."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("curl "):
            continue
        line = re.split(r"\s+#\s|\s\|\s", line)[0]
        commands.append(shlex.split(line))
    return commands


def as_request(argv: list[str]) -> tuple[str, str, bytes | None] | None:
    """(method, path, body) of a curl command against the local server; None for ones that need a file or a key."""
    url = next(a for a in argv if "localhost:8000" in a)
    if "-d" in argv and argv[argv.index("-d") + 1].startswith("@"):
        return None  # -d @window.json: the reader's own window
    if any("$" in a for a in argv):
        return None  # needs the reader's admin key
    body = argv[argv.index("-d") + 1].encode() if "-d" in argv else None
    method = argv[argv.index("-X") + 1] if "-X" in argv else ("POST" if body is not None else "GET")
    return method, url.split("localhost:8000", 1)[1], body


def test_the_documents_have_examples() -> None:
    found = [as_request(argv) for doc in DOCUMENTS for argv in curl_commands(doc)]
    assert len([r for r in found if r is not None]) >= 8


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_curl_examples_answer_200(bundled_server: Server, document: Path) -> None:
    for argv in curl_commands(document):
        request = as_request(argv)
        if request is None:
            continue
        method, path, body = request
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = bundled_server.client.request(method, path, content=body, headers=headers)
        assert response.status_code == 200, f"{document.name}: {' '.join(argv)} -> {response.text[:300]}"


def openapi_examples(schema: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(method, path, example body) for every JSON request example in the OpenAPI document."""
    found = []
    components = schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            for example in content.get("examples", {}).values():
                found.append((method.upper(), path, example["value"]))
            refs = [content.get("schema", {}), *content.get("schema", {}).get("oneOf", [])]
            for ref in refs:
                name = ref.get("$ref", "").rsplit("/", 1)[-1]
                for example in components.get(name, {}).get("examples", []):
                    found.append((method.upper(), path, example))
    return found


def test_openapi_request_examples_answer_200(bundled_server: Server) -> None:
    schema = bundled_server.client.get("/api/openapi.json").json()
    examples = openapi_examples(schema)
    assert len(examples) >= 4
    for method, path, body in examples:
        response: httpx.Response = bundled_server.client.request(method, path, json=body)
        assert response.status_code == 200, f"{method} {path} {body} -> {response.text[:300]}"
