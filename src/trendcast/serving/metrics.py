"""Prometheus metrics of the service, exposed on GET /metrics.

    trendcast_http_requests_total{method,route,status}          requests by route template (not raw path)
    trendcast_http_request_duration_seconds{method,route}      request latency histogram
    trendcast_predictions_total{predicted_class,source}        predictions by class; source = sequence | ticker
    trendcast_prediction_confidence                            histogram of the top probability
    trendcast_inference_duration_seconds{backend}              one forward pass (a micro-batch)
    trendcast_inference_batch_size                             samples per forward pass
    trendcast_rate_limit_rejections_total{route}               429s
    trendcast_prediction_cache_total{result}                   hit | miss
    trendcast_model_info{name,version,alias,backend}           1 for the model being served
    trendcast_feature_psi{feature}                             PSI of recent request inputs vs the training reference
    trendcast_feature_drifted{feature}                         1 when PSI >= alert and the Holm-corrected KS agrees
    trendcast_class_mix{predicted_class,source}                predicted-class shares: reference | recent
    trendcast_class_mix_psi                                    PSI of the recent predicted-class mix vs the reference

Several Gunicorn/uvicorn workers: when PROMETHEUS_MULTIPROC_DIR is set (to an empty directory, before the workers
start), prometheus-client writes every value to per-process files there and /metrics aggregates all workers'
files. `trendcast_model_info` is then a gauge per worker (`pid` label), since Info metrics do not work in that
mode; a worker that reloaded shows the new version, its siblings the one they still serve.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    gc_collector,
    generate_latest,
    multiprocess,
    platform_collector,
    process_collector,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONFIDENCE_BUCKETS = (0.34, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def multiprocess_dir() -> str | None:
    """The directory prometheus-client uses for multiprocess mode (it reads the same variable itself)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServiceMetrics:
    """The service's metrics in their own registry (so several apps in one process do not collide)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry(auto_describe=True)
        if not self.multiprocess:
            process_collector.ProcessCollector(registry=self.registry)
            platform_collector.PlatformCollector(registry=self.registry)
            gc_collector.GCCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "trendcast_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "trendcast_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "trendcast_predictions", "Predictions by predicted class", ["predicted_class", "source"], registry=r
        )
        self.confidence = Histogram(
            "trendcast_prediction_confidence",
            "Probability of the predicted class",
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "trendcast_inference_duration_seconds",
            "One forward pass (one micro-batch)",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "trendcast_inference_batch_size", "Samples per forward pass", buckets=BATCH_BUCKETS, registry=r
        )
        self.rate_limited = Counter(
            "trendcast_rate_limit_rejections", "Requests rejected with 429", ["route"], registry=r
        )
        self.cache = Counter("trendcast_prediction_cache", "Ticker prediction cache lookups", ["result"], registry=r)
        self._model_labels: dict[str, str] | None = None
        self.feature_psi = Gauge(
            "trendcast_feature_psi",
            "PSI of recent inputs vs the training reference",
            ["feature"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.feature_drifted = Gauge(
            "trendcast_feature_drifted",
            "1 when the feature drifted (PSI alert and KS)",
            ["feature"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.class_mix = Gauge(
            "trendcast_class_mix",
            "Predicted-class shares",
            ["predicted_class", "source"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.class_mix_psi = Gauge(
            "trendcast_class_mix_psi", "PSI of the predicted-class mix", registry=r, multiprocess_mode="livemax"
        )
        if self.multiprocess:
            self._model_gauge = Gauge(
                "trendcast_model_info",
                "The model being served (1)",
                ["name", "version", "alias", "backend"],
                multiprocess_mode="liveall",
                registry=r,
            )
        else:
            self._model_info = Info("trendcast_model", "The model being served", registry=r)

    def set_model(self, name: str, version: str, alias: str, backend: str) -> None:
        labels = {"name": name, "version": version, "alias": alias, "backend": backend}
        if not self.multiprocess:
            self._model_info.info(labels)
        else:
            if self._model_labels is not None:  # the old series stays in this worker's file: mark it 0
                self._model_gauge.labels(**self._model_labels).set(0)
            self._model_gauge.labels(**labels).set(1)
        self._model_labels = labels

    def set_drift(self, report: dict[str, Any]) -> None:
        """Gauges from a monitoring.drift report (DriftReport.to_json())."""
        for feature in report["features"]:
            if feature["psi"] is not None:
                self.feature_psi.labels(feature["name"]).set(feature["psi"])
            self.feature_drifted.labels(feature["name"]).set(1.0 if feature["drifted"] else 0.0)
        mix = report.get("class_mix") or {}
        for source in ("reference", "current"):
            for name, share in (mix.get(source) or {}).items():
                label = "recent" if source == "current" else source
                self.class_mix.labels(name, label).set(share)
        if mix.get("psi") is not None:
            self.class_mix_psi.set(mix["psi"])

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of the exposition: this process, or every worker in multiprocess mode."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
