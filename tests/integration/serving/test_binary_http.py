"""Binary request bodies over real HTTP (uvicorn): raw float32 and .npy windows give the JSON path's probabilities,
a chunked body is read whole, and a malformed body gets a 4xx in the one error shape."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.integration.serving.conftest import Server
from tests.unit.serving.support import FEATURES, WINDOW

pytestmark = pytest.mark.integration

N_FEATURES = len(FEATURES)


def windows(k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, WINDOW, N_FEATURES)).astype(np.float32)


def probabilities(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    body = response.json()
    return np.asarray([list(p["probabilities"].values()) for p in body.get("predictions", [body])])


def test_raw_float32_window_matches_json(server: Server) -> None:
    x = windows(1)
    json_response = server.client.post("/api/v1/predict", json={"sequence": x[0].tolist()})
    headers = {"Content-Type": "application/octet-stream", "X-Shape": f"1,{WINDOW},{N_FEATURES}"}
    binary = server.client.post("/api/v1/predict", content=x.astype("<f4").tobytes(), headers=headers)
    np.testing.assert_allclose(probabilities(binary), probabilities(json_response), rtol=0, atol=1e-7)
    assert binary.headers["content-type"] == "application/json" and binary.headers["x-request-id"]


def test_npy_batch_matches_json(server: Server) -> None:
    x = windows(3, seed=1)
    items = {"items": [{"sequence": w.tolist()} for w in x]}
    json_response = server.client.post("/api/v1/predict/batch", json=items)
    buffer = io.BytesIO()
    np.save(buffer, x.astype(np.float64))
    binary = server.client.post(
        "/api/v1/predict/batch", content=buffer.getvalue(), headers={"Content-Type": "application/x-npy"}
    )
    np.testing.assert_allclose(probabilities(binary), probabilities(json_response), rtol=0, atol=1e-7)


def test_a_chunked_body_is_read_whole(server: Server) -> None:
    x = windows(2, seed=2)
    raw = x.tobytes()

    def chunks() -> Iterator[bytes]:
        yield from (raw[i : i + 7] for i in range(0, len(raw), 7))  # splits floats across chunks

    chunked = server.client.post(
        "/api/v1/predict/batch", content=chunks(), headers={"Content-Type": "application/octet-stream"}
    )
    whole = server.client.post(
        "/api/v1/predict/batch", content=raw, headers={"Content-Type": "application/octet-stream"}
    )
    np.testing.assert_array_equal(probabilities(chunked), probabilities(whole))


@pytest.mark.parametrize(
    ("path", "content_type", "body", "status", "code"),
    [
        ("/api/v1/predict", "application/octet-stream", bytes(4 * WINDOW * N_FEATURES + 4), 400, "invalid_binary_body"),
        ("/api/v1/predict/batch", "application/x-npy", b"\x93NUMPY\x01\x00garbage", 400, "invalid_binary_body"),
        ("/api/v1/explain", "application/octet-stream", bytes(4 * WINDOW * N_FEATURES), 415, "unsupported_media_type"),
    ],
)
def test_a_malformed_binary_body_gets_a_4xx(
    server: Server, path: str, content_type: str, body: bytes, status: int, code: str
) -> None:
    response = server.client.post(path, content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["request_id"] == response.headers["x-request-id"]
    assert set(error) == {"code", "message", "request_id", "details"} and "Traceback" not in response.text
