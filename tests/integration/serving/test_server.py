"""The service over real HTTP: every endpoint, every kind of bad input, keys, headers, reload (also under load)."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.integration.serving.conftest import ADMIN_KEY, Server
from tests.unit.serving.support import FEATURES, TICKERS, WINDOW, fit_tiny_model

pytestmark = pytest.mark.integration

GOOD_SEQUENCE = np.random.default_rng(0).normal(size=(WINDOW, len(FEATURES))).round(4).tolist()


def post(server: Server, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    """POST a JSON body (raw `content=` is declared JSON too, as a client that speaks the API sends it)."""
    if body is not None:
        return server.client.post(path, json=body, **kwargs)
    return server.client.post(path, headers={"Content-Type": "application/json"}, **kwargs)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "request_id", "details"}
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return dict(error)


# -- operational endpoints -------------------------------------------------------------------------------------------
def test_health_and_ready(server: Server) -> None:
    assert server.client.get("/health").json() == {"status": "ok"}
    ready = server.client.get("/ready").json()
    assert ready["status"] == "ready" and ready["checks"] == {"model": True, "store": True}
    assert ready["model_version"] == server.client.get("/api/v1/model/info").json()["version"]


def test_model_info_describes_the_served_model(server: Server) -> None:
    info = server.client.get("/api/v1/model/info").json()
    model = fit_tiny_model("logreg", seed=0)  # the same training as the fixture's model
    assert info["features"] == FEATURES and info["window"] == WINDOW and info["n_features"] == len(FEATURES)
    assert info["model_type"] == "logreg" and info["backend"] == "eager" and info["alias"] == "local"
    assert info["trained_through"] == str(model.trained_through.date())  # type: ignore[union-attr]
    assert info["metrics"] == {"accuracy": 0.41, "log_loss": 1.05}
    assert info["class_names"] == ["Down", "Neutral", "Up"]


def test_tickers_lists_the_store(server: Server) -> None:
    body = server.client.get("/api/v1/tickers").json()
    assert [t["ticker"] for t in body["tickers"]] == TICKERS and body["count"] == 2
    assert all(t["rows"] == 260 and t["first"] == "2015-01-05" for t in body["tickers"])


def test_metrics_count_requests_by_route_template_and_predictions(server: Server) -> None:
    post(server, "/api/v1/predict", {"sequence": GOOD_SEQUENCE}).raise_for_status()
    server.client.get("/no/such/path")
    text = server.client.get("/metrics").text
    assert 'trendcast_http_requests_total{method="POST",route="/api/v1/predict",status="200"}' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "trendcast_prediction_confidence_bucket" in text and "trendcast_predictions_total{" in text
    assert 'trendcast_model_info{alias="local",backend="eager"' in text
    assert "trendcast_inference_duration_seconds_count" in text


# -- predictions -----------------------------------------------------------------------------------------------------
def test_predict_sequence_matches_the_model(server: Server) -> None:
    response = post(server, "/api/v1/predict", {"sequence": GOOD_SEQUENCE})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = fit_tiny_model("logreg", seed=0).predict_scaled(np.asarray([GOOD_SEQUENCE], dtype=np.float32))[0]
    assert [body["probabilities"][c] for c in ("Down", "Neutral", "Up")] == pytest.approx(expected, abs=1e-6)
    assert body["predicted_class"] == int(np.argmax(expected))
    assert body["predicted_label"] == ["Down", "Neutral", "Up"][body["predicted_class"]]
    assert body["confidence"] == pytest.approx(expected.max(), abs=1e-6)
    uuid.UUID(body["prediction_id"])
    assert body["model"]["name"] == "trendcast-direction" and body["model"]["version"].startswith("dir-")
    assert body["latency_ms"] > 0 and body["cached"] is False


def test_predict_ticker_builds_the_window_and_caches(server: Server) -> None:
    first = post(server, "/api/v1/predict", {"ticker": "sig000", "as_of": "2015-06-06"})  # a Saturday
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["ticker"] == "SIG000" and body["as_of"] == "2015-06-06" and body["window_end"] == "2015-06-05"
    second = post(server, "/api/v1/predict", {"ticker": "SIG000", "as_of": "2015-06-06"}).json()
    assert body["cached"] is False and second["cached"] is True
    assert second["probabilities"] == body["probabilities"]
    latest = post(server, "/api/v1/predict", {"ticker": "SIG001"}).json()
    assert latest["window_end"] == "2016-01-01" and latest["as_of"] is None


def test_batch_mixes_sequences_and_tickers(server: Server) -> None:
    items = [{"sequence": GOOD_SEQUENCE}, {"ticker": "SIG001", "as_of": "2015-09-01"}, {"sequence": GOOD_SEQUENCE}]
    body = post(server, "/api/v1/predict/batch", {"items": items}).json()
    assert body["count"] == 3
    single = post(server, "/api/v1/predict", {"sequence": GOOD_SEQUENCE}).json()
    # The micro-batcher puts each request in whatever batch is forming when it arrives, and float32 sums depend on
    # the batch they are computed in: the same window in two batches may differ in the last bits (~1e-8), never more.
    first, third = body["predictions"][0]["probabilities"], body["predictions"][2]["probabilities"]
    for probabilities in (third, single["probabilities"]):
        assert probabilities == pytest.approx(first, abs=1e-6)
    assert body["predictions"][1]["window_end"] == "2015-09-01"


def test_batch_limit(server: Server) -> None:
    limit = 64  # Settings.batch_max_items default
    assert post(server, "/api/v1/predict/batch", {"items": [{"sequence": GOOD_SEQUENCE}] * limit}).status_code == 200
    error = assert_error(
        post(server, "/api/v1/predict/batch", {"items": [{"sequence": GOOD_SEQUENCE}] * (limit + 1)}),
        422,
        "too_many_items",
    )
    assert error["details"] == {"max_items": limit}
    assert_error(post(server, "/api/v1/predict/batch", {"items": []}), 422, "invalid_body")


def test_explain_ticker(server: Server) -> None:
    response = post(server, "/api/v1/explain", {"ticker": "SIG000", "as_of": "2015-10-01", "top_k": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    explanation = body["explanation"]
    assert explanation["ticker"] == "SIG000" and explanation["as_of"] == "2015-10-01"
    assert len(explanation["top_features"]) == 2
    assert explanation["predicted_label"] == body["prediction"]["predicted_label"]
    assert explanation["probabilities"] == pytest.approx(body["prediction"]["probabilities"], abs=1e-6)
    assert isinstance(explanation["sentence"], str) and explanation["sentence"]


def test_explain_sequence(server: Server) -> None:
    response = post(server, "/api/v1/explain", {"sequence": GOOD_SEQUENCE})
    assert response.status_code == 200, response.text
    assert len(response.json()["explanation"]["top_features"]) == len(FEATURES)  # top_k 5, capped at 4 features


# -- bad input: always a clear 4xx in the one error shape ------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"sequence": GOOD_SEQUENCE[:-1]}, 422, "invalid_sequence"),  # too few rows
        ({"sequence": [row[:-1] for row in GOOD_SEQUENCE]}, 422, "invalid_sequence"),  # too few features
        ({"sequence": [GOOD_SEQUENCE]}, 422, "invalid_sequence"),  # 3-D
        ({"sequence": [[1.0, 2.0], [1.0, 2.0, 3.0]]}, 422, "invalid_sequence"),  # ragged
        ({"sequence": []}, 422, "invalid_sequence"),
        ({"sequence": [[]] * WINDOW}, 422, "invalid_sequence"),
        ({"sequence": [["1.5"] * len(FEATURES)] * WINDOW}, 422, "invalid_sequence"),  # strings are not numbers
        ({"sequence": [[True] + [0.0] * (len(FEATURES) - 1)] * WINDOW}, 422, "invalid_sequence"),
        ({"sequence": [[None] * len(FEATURES)] * WINDOW}, 422, "invalid_sequence"),
        ({"sequence": [[1e39] * len(FEATURES)] * WINDOW}, 422, "invalid_sequence"),  # inf as float32
        ({"sequence": "abc"}, 422, "invalid_sequence"),
        ({"sequence": GOOD_SEQUENCE, "ticker": "SIG000"}, 422, "invalid_body"),
        ({"ticker": "NOPE"}, 404, "unknown_ticker"),
        ({"ticker": "SIG000", "as_of": "2015-13-45"}, 422, "validation_error"),
        ({"ticker": "SIG000", "as_of": "yesterday"}, 422, "validation_error"),
        ({"ticker": "SIG000", "as_of": 20150601}, 422, "validation_error"),
        ({"ticker": "bad ticker!"}, 422, "validation_error"),
        ({"foo": 1}, 422, "validation_error"),
        ([1, 2, 3], 422, "invalid_body"),
    ],
)
def test_bad_predict_bodies(server: Server, body: Any, status: int, code: str) -> None:
    assert_error(post(server, "/api/v1/predict", body), status, code)


def test_not_json_and_empty(server: Server) -> None:
    nan_body = json.dumps({"sequence": [[float("nan")] * len(FEATURES)] * WINDOW})  # NaN is not JSON
    assert_error(post(server, "/api/v1/predict", content=nan_body), 400, "invalid_json")
    assert_error(post(server, "/api/v1/predict", content=b"{not json"), 400, "invalid_json")
    assert_error(post(server, "/api/v1/predict", content=b""), 400, "empty_body")


def test_insufficient_history_names_the_missing_days(server: Server) -> None:
    # rsi_14 needs 14 bars before its first value and the window 5 rows: on the 16th bar only 2 rows are usable
    error = assert_error(
        post(server, "/api/v1/predict", {"ticker": "SIG000", "as_of": "2015-01-26"}), 422, "insufficient_history"
    )
    assert error["details"] == {"ticker": "SIG000", "needed": 5, "available": 2, "missing": 3}
    assert "3 days of history are missing" in error["message"]
    before = assert_error(
        post(server, "/api/v1/predict", {"ticker": "SIG000", "as_of": "2014-01-01"}), 422, "insufficient_history"
    )
    assert before["details"]["missing"] == WINDOW + 14  # no bars at all: rsi_14's warm-up, then the window


def test_huge_bodies_are_refused_before_parsing(server: Server) -> None:
    huge = b'{"sequence": [' + b"1.0," * 40_000 + b"1.0]}"  # > 65536 bytes (TRENDCAST_MAX_BODY_BYTES)
    error = assert_error(post(server, "/api/v1/predict", content=huge), 413, "body_too_large")
    assert error["details"] == {"max_body_bytes": 65536}

    def chunks() -> Any:  # no Content-Length: the streaming guard counts
        for _ in range(40):
            yield b"1.0," * 1000

    assert_error(post(server, "/api/v1/predict", content=chunks()), 413, "body_too_large")


def test_unknown_route_and_method(server: Server) -> None:
    assert_error(server.client.get("/api/v1/nothing"), 404, "not_found")
    assert_error(server.client.get("/api/v1/predict"), 405, "method_not_allowed")


# -- headers, docs ---------------------------------------------------------------------------------------------------
def test_security_headers_and_request_id(server: Server) -> None:
    response = server.client.get("/health", headers={"X-Request-ID": "client-chosen-id.42"})
    headers = response.headers
    assert headers["x-request-id"] == "client-chosen-id.42"
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["content-security-policy"].startswith("default-src 'none'")
    generated = server.client.get("/health", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert len(generated) == 32 and generated != "bad id with spaces"
    assert server.log_shows("client-chosen-id.42")  # the access line carries it


def test_docs_pages_and_schema(server: Server) -> None:
    docs = server.client.get("/api/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    csp = docs.headers["content-security-policy"]
    assert "https://" not in csp and "'sha256-" in csp and "frame-ancestors 'none'" in csp
    assert "redoc" in server.client.get("/api/redoc").text
    asset = server.client.get("/api/docs-assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
    schema = server.client.get("/api/openapi.json").json()
    sequence = schema["components"]["schemas"]["SequenceRequest"]["properties"]["sequence"]
    assert sequence["minItems"] == sequence["maxItems"] == WINDOW
    assert sequence["items"]["minItems"] == len(FEATURES)
    assert "ALREADY-SCALED" in sequence["description"]
    body = schema["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert len(body["schema"]["oneOf"]) == 2 and "sequence" in body["examples"]


def test_no_secret_in_logs(server: Server) -> None:
    server.client.post("/api/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    assert ADMIN_KEY not in server.log_text()


# -- admin -----------------------------------------------------------------------------------------------------------
def test_admin_key_checks(server: Server) -> None:
    assert_error(server.client.post("/api/v1/admin/reload"), 401, "unauthorized")
    assert_error(server.client.post("/api/v1/admin/reload", headers={"X-API-Key": "wrong"}), 401, "unauthorized")
    ok = server.client.post("/api/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    assert ok.status_code == 200 and ok.json()["reloaded"] is True


def test_reload_serves_the_new_model(server: Server, serving_root: Path) -> None:
    live = Path(server.env["TRENDCAST_MODEL_DIR"])
    before = server.client.get("/api/v1/model/info").json()
    try:
        shutil.rmtree(live)
        shutil.copytree(serving_root / "model-b", live)
        body = server.client.post("/api/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}).json()
        assert body["previous_version"] == before["version"] and body["model"]["version"] != before["version"]
        assert server.client.get("/api/v1/model/info").json()["metrics"] == {"accuracy": 0.44}
        expected = fit_tiny_model("logreg", seed=1).predict_scaled(np.asarray([GOOD_SEQUENCE], dtype=np.float32))[0]
        got = post(server, "/api/v1/predict", {"sequence": GOOD_SEQUENCE}).json()["probabilities"]
        assert [got[c] for c in ("Down", "Neutral", "Up")] == pytest.approx(expected, abs=1e-6)
    finally:
        shutil.rmtree(live)
        shutil.copytree(serving_root / "model-a", live)
        server.client.post("/api/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}).raise_for_status()


def test_reload_under_load_fails_no_request(server: Server, serving_root: Path) -> None:
    live = Path(server.env["TRENDCAST_MODEL_DIR"])
    stop = threading.Event()
    statuses: list[int] = []
    versions: set[str] = set()

    def hammer() -> None:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            while not stop.is_set():
                response = client.post("/api/v1/predict", json={"sequence": GOOD_SEQUENCE})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.add(response.json()["model"]["version"])

    def wait_for_traffic(count: int) -> None:
        deadline = time.monotonic() + 30
        while len(statuses) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(hammer) for _ in range(4)]
        for i, model in enumerate(("model-b", "model-a", "model-b", "model-a")):
            wait_for_traffic(10 * (i + 1))  # reload while predictions are in flight
            shutil.rmtree(live)
            shutil.copytree(serving_root / model, live)
            server.client.post("/api/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}).raise_for_status()
        wait_for_traffic(len(statuses) + 10)
        stop.set()
        for worker in workers:
            worker.result()  # a client-side exception (connection reset, timeout) fails the test
    assert len(statuses) >= 50 and set(statuses) == {200}
    assert len(versions) == 2  # requests were answered by both models while they were swapped
