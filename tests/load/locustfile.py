"""Load test for the trendcast API with Locust (locust is not a trendcast dependency: `pip install locust`).

    locust -f tests/load/locustfile.py --host http://127.0.0.1:8000 --users 64 --spawn-rate 16 --headless -t 1m

Before starting it reads GET /api/v1/model/info (window, feature count) and GET /api/v1/tickers, then mixes:
scaled-window predictions (most traffic), ticker predictions (cache hits after the first), small batches and the
occasional model-info read. Set TRENDCAST_API_KEY when the server requires keys. Run the server with
TRENDCAST_RATE_LIMIT_ENABLED=false (or a high TRENDCAST_RATE_LIMIT), or most requests will be 429s.

pytest does not collect this file (it is not named test_*), and importing it needs locust.
"""

from __future__ import annotations

import os
import random
from typing import Any

from locust import HttpUser, between, events, task

API_KEY = os.environ.get("TRENDCAST_API_KEY")
shape: dict[str, Any] = {"window": 60, "n_features": 51, "tickers": []}


@events.test_start.add_listener
def read_model_shape(environment: Any, **_: Any) -> None:
    """Ask the server what the model expects, so the windows have the right shape."""
    import httpx

    headers = {"X-API-Key": API_KEY} if API_KEY else {}
    with httpx.Client(base_url=environment.host, headers=headers, timeout=10) as client:
        info = client.get("/api/v1/model/info").json()
        shape.update(window=info["window"], n_features=info["n_features"])
        shape["tickers"] = [t["ticker"] for t in client.get("/api/v1/tickers").json()["tickers"]]


def scaled_window() -> list[list[float]]:
    return [[random.gauss(0.0, 1.0) for _ in range(shape["n_features"])] for _ in range(shape["window"])]


class TrendcastUser(HttpUser):
    wait_time = between(0.0, 0.05)

    def on_start(self) -> None:
        if API_KEY:
            self.client.headers["X-API-Key"] = API_KEY
        self.windows = [scaled_window() for _ in range(8)]  # built once: measure the server, not the client

    @task(20)
    def predict_sequence(self) -> None:
        self.client.post("/api/v1/predict", json={"sequence": random.choice(self.windows)}, name="predict sequence")

    @task(4)
    def predict_ticker(self) -> None:
        if shape["tickers"]:
            body = {"ticker": random.choice(shape["tickers"])}
            self.client.post("/api/v1/predict", json=body, name="predict ticker")

    @task(2)
    def predict_batch(self) -> None:
        items = [{"sequence": window} for window in random.sample(self.windows, 4)]
        self.client.post("/api/v1/predict/batch", json={"items": items}, name="predict batch of 4")

    @task(1)
    def model_info(self) -> None:
        self.client.get("/api/v1/model/info", name="model info")
