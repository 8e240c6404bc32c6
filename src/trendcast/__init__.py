"""trendcast: honest, explained stock direction forecasts.

The curated public API; everything else is internal. Heavy modules (torch, MLflow) load lazily on first use.

Examples:
    >>> from trendcast import ExperimentConfig, build_window_set, random_walk_bars
    >>> ws = build_window_set(random_walk_bars(n_tickers=2, n_days=200), window=20, labels=ExperimentConfig().labels)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "BarStore": "trendcast.data.store",
    "BundledSource": "trendcast.data.sources",
    "CLASS_NAMES": "trendcast.config",
    "CsvSource": "trendcast.data.sources",
    "DirectionModel": "trendcast.models.base",
    "ExperimentConfig": "trendcast.config",
    "InMemorySource": "trendcast.data.sources",
    "Settings": "trendcast.config",
    "TrendcastError": "trendcast.errors",
    "WindowScaler": "trendcast.features.scaling",
    "WindowSet": "trendcast.features.windows",
    "YahooSource": "trendcast.data.sources",
    "build_window_set": "trendcast.features.windows",
    "catalog": "trendcast.features.indicators",
    "compute_features": "trendcast.features.feature_set",
    "create_model": "trendcast.models.registry",
    "ingest": "trendcast.pipelines.ingest",
    "load_settings": "trendcast.config",
    "planted_signal_bars": "trendcast.data.synthetic",
    "random_walk_bars": "trendcast.data.synthetic",
    "run_walk_forward": "trendcast.evaluation.walk_forward",
    "summarise_predictions": "trendcast.evaluation.metrics",
    "validate_bars": "trendcast.data.validation",
    "walk_forward_splits": "trendcast.evaluation.walk_forward_splits",
}

__all__ = sorted(["__version__", *_EXPORTS])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trendcast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
