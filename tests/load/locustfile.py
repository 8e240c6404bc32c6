"""Load test for the trendcast API with Locust (locust is not a trendcast dependency: `pip install locust`).

    locust -f tests/load/locustfile.py --host http://127.0.0.1:8000 --users 64 --spawn-rate 16 --headless -t 1m

Before starting it reads GET /api/v1/model/info (window, feature count) and GET /api/v1/tickers, then mixes:
scaled-window predictions (most traffic), ticker predictions (cache hits after the first), small batches and the
occasional model-info read. Set TRENDCAST_API_KEY when the server requires keys. Run the server with
TRENDCAST_RATE_LIMIT_ENABLED=false (or a high TRENDCAST_RATE_LIMIT), or most requests will be 429s.

The bodies are encoded once, at the start, and shared by every user: with 1000 users, building and encoding a
60 x 51 window per request (or keeping 8 per user) would cost Locust more CPU and memory than the server spends
answering, and Locust shares the machine's cores with the server in `benchmarks/bench_api.py --locust`.

pytest does not collect this file (it is not named test_*), and importing it needs locust.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from locust import HttpUser, between, events, task

API_KEY = os.environ.get("TRENDCAST_API_KEY")
shape: dict[str, Any] = {"window": 60, "n_features": 51, "tickers": []}


JSON = {"Content-Type": "application/json"}
BODIES = 16  # distinct windows (and batches of 4 of them), encoded once


@events.test_start.add_listener
def read_model_shape(environment: Any, **_: Any) -> None:
    """Ask the server what the model expects, so the windows have the right shape; encode the bodies once."""
    import requests  # a dependency of locust

    headers = {"X-API-Key": API_KEY} if API_KEY else {}
    info = requests.get(f"{environment.host}/api/v1/model/info", headers=headers, timeout=10).json()
    shape.update(window=info["window"], n_features=info["n_features"])
    tickers = requests.get(f"{environment.host}/api/v1/tickers", headers=headers, timeout=10).json()["tickers"]
    shape["tickers"] = [t["ticker"] for t in tickers]
    windows = [scaled_window() for _ in range(BODIES)]
    shape["sequences"] = [json.dumps({"sequence": w}).encode() for w in windows]
    shape["batches"] = [
        json.dumps({"items": [{"sequence": w} for w in random.sample(windows, 4)]}).encode() for _ in range(BODIES)
    ]


def scaled_window() -> list[list[float]]:
    return [[round(random.gauss(0.0, 1.0), 6) for _ in range(shape["n_features"])] for _ in range(shape["window"])]


class TrendcastUser(HttpUser):
    wait_time = between(0.0, 0.05)

    def on_start(self) -> None:
        if API_KEY:
            self.client.headers["X-API-Key"] = API_KEY

    @task(20)
    def predict_sequence(self) -> None:
        body = random.choice(shape["sequences"])
        self.client.post("/api/v1/predict", data=body, headers=JSON, name="predict sequence")

    @task(4)
    def predict_ticker(self) -> None:
        if shape["tickers"]:
            body = {"ticker": random.choice(shape["tickers"])}
            self.client.post("/api/v1/predict", json=body, name="predict ticker")

    @task(2)
    def predict_batch(self) -> None:
        body = random.choice(shape["batches"])
        self.client.post("/api/v1/predict/batch", data=body, headers=JSON, name="predict batch of 4")

    @task(1)
    def model_info(self) -> None:
        self.client.get("/api/v1/model/info", name="model info")
