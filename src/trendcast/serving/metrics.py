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
    trendcast_model_loaded                                     1 when the worker serves a model, 0 until it loaded one
    trendcast_ticker_predictions_total{ticker}                 ticker predictions (cached answers included)
    trendcast_prediction_outcomes_total{ticker,outcome}        ticker predictions judged once their label is stored:
                                                               hit | miss (see serving.outcomes for the limits)
    trendcast_worker_cpu_seconds                               CPU time of the worker (user + system); rate() = cores
    trendcast_worker_resident_memory_bytes                     resident memory of the worker
    trendcast_worker_open_fds / trendcast_worker_max_fds       open file descriptors and their limit
    trendcast_worker_start_time_seconds                        when the worker started (one series per live worker)

The `trendcast_worker_*` gauges are copied every few seconds from prometheus-client's own ProcessCollector (which
reads /proc/self), by `serving.background.ProcessSampler`. They exist because in multiprocess mode prometheus-client
cannot expose the process collector (/metrics is answered by one worker, from the files of all of them), so the
standard `process_*` series are only there with a single process; these gauges are the same in both modes, so the
infrastructure dashboard needs one query. Linux only (elsewhere they stay unset).

`trendcast schedule --metrics-port 9102` serves the scheduler's own registry (`SchedulerMetrics`, with the standard
`process_*` and `python_*` collectors) through prometheus-client's `start_http_server`:

    trendcast_retrain_runs_total{outcome}                      promoted | refused (gates failed) | failed | skipped
                                                               (another scheduler held the lock or ran the slot)
    trendcast_retrain_duration_seconds                         histogram of retrain runs that ran (failed included)
    trendcast_retrain_last_success_timestamp_seconds           end of the last retrain that decided (promoted or
                                                               refused); at start, the newest registered version's
                                                               creation time (0 when the registry has none)

Several Gunicorn/uvicorn workers: when PROMETHEUS_MULTIPROC_DIR is set (to an empty directory, before the workers
start), prometheus-client writes every value to per-process files there and /metrics aggregates all workers'
files: counters and histograms are summed over the workers (exited ones included), `trendcast_model_info`,
`trendcast_model_loaded` and the `trendcast_worker_*` gauges are one series per live worker (`pid` label; Info
metrics do not work in that mode, and a worker that reloaded shows the new version while its siblings show the one
they still serve), and the drift gauges take the largest value over the live workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

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

from trendcast.serving.outcomes import OUTCOMES, Outcome, PendingOutcomes

if TYPE_CHECKING:
    from trendcast.models.base import DirectionModel

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONFIDENCE_BUCKETS = (0.34, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
RETRAIN_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0)
RETRAIN_OUTCOMES = ("promoted", "refused", "failed", "skipped")
# ProcessCollector family -> the per-worker gauge it is copied into
WORKER_GAUGES = {
    "process_cpu_seconds": ("trendcast_worker_cpu_seconds", "CPU time of the worker (user + system), seconds"),
    "process_resident_memory_bytes": ("trendcast_worker_resident_memory_bytes", "Resident memory of the worker"),
    "process_open_fds": ("trendcast_worker_open_fds", "Open file descriptors of the worker"),
    "process_max_fds": ("trendcast_worker_max_fds", "File descriptor limit of the worker"),
    "process_start_time_seconds": ("trendcast_worker_start_time_seconds", "Start of the worker, since the epoch"),
}


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
        self.model_loaded = Gauge(
            "trendcast_model_loaded", "1 when this worker serves a model", registry=r, multiprocess_mode="liveall"
        )
        self.model_loaded.set(0)
        self.ticker_predictions = Counter(
            "trendcast_ticker_predictions", "Ticker predictions (cached answers included)", ["ticker"], registry=r
        )
        self.prediction_outcomes = Counter(
            "trendcast_prediction_outcomes",
            "Ticker predictions judged against the label once it is stored",
            ["ticker", "outcome"],
            registry=r,
        )
        self.outcomes = PendingOutcomes()
        self._process = process_collector.ProcessCollector(registry=None)
        self._worker = {
            family: Gauge(name, doc, registry=r, multiprocess_mode="liveall")
            for family, (name, doc) in WORKER_GAUGES.items()
        }
        self.sample_process()
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
        self.model_loaded.set(1)

    def ticker_prediction(
        self, ticker: str, window_end: date, version: str, predicted: int, model: DirectionModel
    ) -> None:
        """Count a ticker prediction and keep it until its outcome can be judged (see serving.outcomes)."""
        self.ticker_predictions.labels(ticker).inc()
        for outcome in OUTCOMES:  # both series exist (at 0) before the first outcome, so rate() sees that one
            self.prediction_outcomes.labels(ticker, outcome)
        self.outcomes.record(ticker, window_end, version, predicted, model)

    def count_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        """Count judged predictions and forget them."""
        judged = list(outcomes)
        for outcome in judged:
            self.prediction_outcomes.labels(outcome.prediction.ticker, outcome.name).inc()
        self.outcomes.settle(judged)

    def sample_process(self) -> None:
        """Copy this process's CPU, memory and fds, as prometheus-client's ProcessCollector reads them from /proc,
        into the `trendcast_worker_*` gauges."""
        for family in self._process.collect():
            gauge = self._worker.get(family.name)
            if gauge is not None and family.samples:
                gauge.set(family.samples[0].value)

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


class SchedulerMetrics:
    """The retrain scheduler's metrics, in their own registry with the standard process and Python collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        r = self.registry
        self.runs = Counter("trendcast_retrain_runs", "Scheduled retrain fires by outcome", ["outcome"], registry=r)
        for outcome in RETRAIN_OUTCOMES:
            self.runs.labels(outcome)
        self.duration = Histogram(
            "trendcast_retrain_duration_seconds", "Duration of retrain runs", buckets=RETRAIN_BUCKETS, registry=r
        )
        self.last_success = Gauge(
            "trendcast_retrain_last_success_timestamp_seconds",
            "End of the last retrain that decided (promoted or refused), since the epoch",
            registry=r,
        )

    def record(self, outcome: str) -> None:
        """Count one fire; `outcome` is one of RETRAIN_OUTCOMES, and promoted/refused also mark the last success."""
        if outcome not in RETRAIN_OUTCOMES:
            raise ValueError(f"Unknown retrain outcome {outcome!r}; use one of {', '.join(RETRAIN_OUTCOMES)}.")
        self.runs.labels(outcome).inc()
        if outcome in ("promoted", "refused"):
            self.last_success.set_to_current_time()
