"""In-process fixtures for the serving unit tests: a saved tiny model, a filled store, and an ASGI client that runs
the app's lifespan (no network, no server process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.unit.serving.support import filled_store, tiny_model_dir
from trendcast.config import Settings


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("model") / "logreg", "logreg")


@pytest.fixture
def settings(tmp_path: Path, saved_model: Path) -> Settings:
    """Settings for one test: its own data dir with a filled store, the saved model, an admin key."""
    result = Settings(
        data_dir=tmp_path / "data",
        model_dir=saved_model,
        admin_api_keys=["admin-secret"],
        log_json=True,
        log_level="WARNING",
    )
    filled_store(result.resolved_database_url).close()
    return result


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan started, and a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
