"""The published OpenAPI document: FastAPI's, plus the request bodies that the hot path parses by hand.

/api/v1/predict and /api/v1/explain read raw bodies (orjson + NumPy), so FastAPI does not see a body parameter;
this module adds their real contract: `oneOf` the sequence form and the ticker form, from the strict Pydantic
models in `schemas`. Once a model is loaded the sequence's exact shape (window x n_features) is written into the
schema (minItems = maxItems), with a correctly shaped example, so clients and schemathesis generate valid windows.
The document is rebuilt after a reload (the shape may change). /api/v1/predict and /api/v1/predict/batch also list
the binary window bodies of `serving.binary` (`format: binary`, described with the model's shape) so that Swagger
offers them. The API key is marked optional on /api/v1 when
the server has no user keys (it is then only needed on /api/v1/admin).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from trendcast.serving.binary import BINARY_ROUTES, NPY, OCTET_STREAM, SHAPE_HEADER
from trendcast.serving.dependencies import Services
from trendcast.serving.schemas import (
    BatchRequest,
    ExplainSequenceRequest,
    ExplainTickerRequest,
    SequenceRequest,
    TickerRequest,
)

REF = "#/components/schemas/{model}"
BODIES: dict[str, tuple[type[BaseModel], ...]] = {
    "/api/v1/predict": (SequenceRequest, TickerRequest),
    "/api/v1/predict/batch": (BatchRequest,),
    "/api/v1/explain": (ExplainSequenceRequest, ExplainTickerRequest),
}
SEQUENCE_MODELS = ("SequenceRequest", "ExplainSequenceRequest")


def _components(models: list[type[BaseModel]]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _fix_sequence(schema: dict[str, Any], window: int, n_features: int) -> None:
    sequence = schema["properties"]["sequence"]
    sequence.update(minItems=window, maxItems=window)
    sequence["items"].update(minItems=n_features, maxItems=n_features)
    sequence["description"] += f" This server's model: {window} rows x {n_features} features."


def _request_body(models: tuple[type[BaseModel], ...], examples: dict[str, Any]) -> dict[str, Any]:
    refs = [{"$ref": REF.format(model=m.__name__)} for m in models]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"required": True, "content": {"application/json": {"schema": schema, "examples": examples}}}


def _binary_bodies(path: str, services: Services) -> dict[str, Any]:
    """The binary content entries of a predict route, with this server's window shape once a model is loaded."""
    current = services.slot.current
    window, n = (str(current.window), str(current.n_features)) if current is not None else ("window", "n_features")
    if path == "/api/v1/predict":
        count, npy_shape = "exactly one window", f"({window}, {n}) or (1, {window}, {n})"
    else:
        limit = services.settings.batch_max_items
        count, npy_shape = f"1 to {limit} windows", f"(k, {window}, {n}) with k <= {limit} (a 2-D array is one window)"
    octets = (
        f"Scaled windows as raw float32, little-endian, row-major (oldest row first): {count} of {window} x {n}, "
        f"back to back (`np.asarray(windows, '<f4').tobytes()`). The count follows from the length; an optional "
        f"`{SHAPE_HEADER}: k,{window},{n}` header states it and is checked."
    )
    npy = f"Scaled windows as one .npy file (`np.save`, float32 best; float64 and integers are converted): {npy_shape}."
    return {
        media: {"schema": {"type": "string", "format": "binary", "description": text}}
        for media, text in ((OCTET_STREAM, octets), (NPY, npy))
    }


def _examples(path: str, services: Services) -> dict[str, Any]:
    current = services.slot.current
    ticker = {"ticker": "MSFT", "as_of": "2012-12-28"}
    sequence: dict[str, Any] | None = None
    if current is not None:
        sequence = {"sequence": [[0.0] * current.n_features for _ in range(current.window)]}
    if path == "/api/v1/predict/batch":
        items = [sequence, ticker] if sequence else [ticker]
        return {"mixed": {"summary": "A window and a ticker", "value": {"items": items}}}
    out: dict[str, Any] = {"ticker": {"summary": "A stored ticker on a date", "value": dict(ticker)}}
    if sequence is not None:
        out["sequence"] = {
            "summary": "A scaled window (all zeros = every feature at its training median)",
            "value": sequence,
        }
    if path == "/api/v1/explain":
        for example in out.values():
            example["value"]["top_k"] = 5
    return out


def build_openapi(app: FastAPI, services: Services) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    models = [m for group in BODIES.values() for m in group]
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(_components(models))
    current = services.slot.current
    if current is not None:
        for name in SEQUENCE_MODELS:
            _fix_sequence(components[name], current.window, current.n_features)
    components["BatchRequest"]["properties"]["items"]["maxItems"] = services.settings.batch_max_items
    for path, group in BODIES.items():
        body = _request_body(group, _examples(path, services))
        if path in BINARY_ROUTES:
            body["content"].update(_binary_bodies(path, services))
            body["description"] = (
                "JSON (the default), or scaled windows as a binary body: faster for windows, nothing to parse. "
                "The windows are already scaled, exactly as `sequence`; see docs/api.md, Binary bodies."
            )
        schema["paths"][path]["post"]["requestBody"] = body
    if not services.api_keys:
        _make_key_optional(schema)
    return schema


def _make_key_optional(schema: dict[str, Any]) -> None:
    """Without user keys configured, /api/v1 works without X-API-Key: say so (`{}` = no requirement), except on the
    admin routes, which always need an admin key."""
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            if "security" in operation and not path.startswith("/api/v1/admin"):
                operation["security"] = [{}, *operation["security"]]


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, app.state.services)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
