"""The app in-process (ASGI, lifespan run): what happens without a model, with a broken model, big bodies, CORS,
the published schema, and the `serve` command."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from tests.unit.serving.conftest import running
from tests.unit.serving.support import FEATURES, WINDOW
from trendcast.config import Settings
from trendcast.errors import ModelNotReadyError
from trendcast.models.bundle import ModelBundle
from trendcast.serving import commands, create_app
from trendcast.serving.inference import ServedModel, load_model_dir

SEQUENCE = {"sequence": np.zeros((WINDOW, len(FEATURES))).tolist()}


def call(app: Any, requests: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    async def scenario() -> list[Any]:
        async with running(app) as client:
            return [await client.request(method, path, **kwargs) for method, path, kwargs in requests]

    return asyncio.run(scenario())


def no_model(settings: Settings) -> ServedModel:
    raise ModelNotReadyError("no model version has alias 'champion'; run `trendcast train` first")


def test_without_a_model_the_service_is_up_but_not_ready(settings: Settings) -> None:
    health, ready, predict = call(
        create_app(settings, no_model),
        [("GET", "/health", {}), ("GET", "/ready", {}), ("POST", "/api/v1/predict", {"json": SEQUENCE})],
    )
    assert health.status_code == 200
    assert ready.status_code == 503 and ready.json()["error"]["details"]["checks"]["model"] is False
    assert predict.status_code == 503 and predict.json()["error"]["code"] == "model_not_ready"
    assert "trendcast train" in predict.json()["error"]["message"]


class ExplodingModel:
    """A loaded model whose predictions fail with an internal error (a bug, not bad input)."""

    def __init__(self, inner: ModelBundle) -> None:
        self.inner = inner
        self.calls = 0

    def __call__(self, settings: Settings) -> ServedModel:
        model = self.inner.model
        original = model.predict_scaled

        def predict_scaled(x: np.ndarray) -> np.ndarray:
            self.calls += 1
            if self.calls > 1:  # the warm-up passes, traffic fails
                raise RuntimeError("secret internal detail /etc/passwd")
            return original(x)

        model.predict_scaled = predict_scaled  # type: ignore[method-assign]
        return replace(self.inner, model=model)


def test_an_internal_error_is_a_generic_500(settings: Settings) -> None:
    loader = ExplodingModel(load_model_dir(settings))
    (response,) = call(create_app(settings, loader), [("POST", "/api/v1/predict", {"json": SEQUENCE})])
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error" and error["request_id"] == response.headers["x-request-id"]
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"


def test_declared_oversized_body_is_refused_unread(settings: Settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2048})
    (response,) = call(create_app(small), [("POST", "/api/v1/predict", {"content": b"x" * 4096})])
    assert response.status_code == 413 and response.json()["error"]["details"] == {"max_body_bytes": 2048}


def test_cors_when_configured(settings: Settings) -> None:
    with_cors = settings.model_copy(update={"cors_origins": ["https://app.example"]})
    (preflight,) = call(
        create_app(with_cors),
        [
            (
                "OPTIONS",
                "/api/v1/predict",
                {
                    "headers": {
                        "Origin": "https://app.example",
                        "Access-Control-Request-Method": "POST",
                        "Access-Control-Request-Headers": "X-API-Key",
                    }
                },
            )
        ],
    )
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    (other,) = call(create_app(settings), [("GET", "/health", {"headers": {"Origin": "https://app.example"}})])
    assert "access-control-allow-origin" not in other.headers


def test_schema_publishes_the_model_shape_and_key_requirement(settings: Settings) -> None:
    (open_schema,) = call(create_app(settings), [("GET", "/api/openapi.json", {})])
    paths = open_schema.json()["paths"]
    assert paths["/api/v1/model/info"]["get"]["security"][0] == {}  # no user keys: the key is optional
    assert {} not in paths["/api/v1/admin/reload"]["post"]["security"]
    example = paths["/api/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["examples"]["sequence"]
    assert np.asarray(example["value"]["sequence"]).shape == (WINDOW, len(FEATURES))
    keyed = settings.model_copy(update={"api_keys": [SecretStr("k")]})
    (keyed_schema,) = call(create_app(keyed), [("GET", "/api/openapi.json", {})])
    assert keyed_schema.json()["paths"]["/api/v1/model/info"]["get"]["security"] == [{"APIKeyHeader": []}]


def test_serve_runs_the_factory_with_uvicorn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(app=app, **kwargs))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("TRENDCAST_DATA_DIR", str(tmp_path))
    commands.serve(host="0.0.0.0", port=9001, workers=1)
    assert seen["app"] == commands.FACTORY and seen["factory"] is True
    assert (seen["host"], seen["port"], seen["workers"]) == ("0.0.0.0", 9001, 1)


def test_several_workers_get_an_empty_multiprocess_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "prom"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"old")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    assert commands.prepare_multiprocess_dir(2) == folder and list(folder.iterdir()) == []
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert commands.prepare_multiprocess_dir(1) is None


def test_a_failed_reload_keeps_the_old_model(settings: Settings) -> None:
    loaded = load_model_dir(settings)
    calls = {"n": 0}

    def flaky(current: Settings) -> ServedModel:
        calls["n"] += 1
        if calls["n"] > 1:
            raise ModelNotReadyError("no model version has alias 'champion'")
        return loaded

    admin = {"headers": {"X-API-Key": "admin-secret"}}
    reload, info = call(
        create_app(settings, flaky), [("POST", "/api/v1/admin/reload", admin), ("GET", "/api/v1/model/info", {})]
    )
    assert reload.status_code == 503 and reload.json()["error"]["code"] == "model_not_ready"
    assert info.status_code == 200 and info.json()["version"] == loaded.version
