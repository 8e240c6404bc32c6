"""The prediction service: FastAPI app factory, inference path, limits, keys, metrics.

Run it with `trendcast serve` (uvicorn) or, in production, `gunicorn -c gunicorn.conf.py` (Uvicorn workers).
"""

from trendcast.serving.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
