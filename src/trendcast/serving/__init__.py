"""The prediction service: FastAPI app factory, inference path, limits, keys, metrics.

Run it with `trendcast serve` (uvicorn) or, in production, `gunicorn -c gunicorn.conf.py` (Uvicorn workers).
"""

from trendcast._lazy import lazy_exports

_EXPORTS = {"app_from_env": "trendcast.serving.app", "create_app": "trendcast.serving.app"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
