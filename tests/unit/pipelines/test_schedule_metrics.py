"""The scheduler's Prometheus metrics: each fire counted by outcome, retrains timed, the last success initialised
from the registry (the real endpoint is scraped by tests/integration/test_monitoring.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from tests.unit.pipelines.test_schedule import _settings, _wait_for
from trendcast.pipelines import schedule
from trendcast.pipelines.schedule import (
    LOCK_HELD,
    RAN,
    SLOT_TAKEN,
    FileRetrainLock,
    RunOutcome,
    build_scheduler,
    retrain_outcome,
    serve_metrics,
)
from trendcast.serving.metrics import RETRAIN_OUTCOMES as OUTCOMES
from trendcast.serving.metrics import SchedulerMetrics


def decided(promoted: bool) -> SimpleNamespace:
    return SimpleNamespace(decision={"promoted": promoted})  # what RetrainResult carries


@pytest.mark.parametrize(
    "outcome, label",
    [
        (RunOutcome("s", True, RAN, decided(True)), "promoted"),
        (RunOutcome("s", True, RAN, decided(False)), "refused"),
        (RunOutcome("s", False, "failed: ValueError: bad fold"), "failed"),
        (RunOutcome("s", False, LOCK_HELD), "skipped"),
        (RunOutcome("s", False, SLOT_TAKEN), "skipped"),
    ],
)
def test_each_fire_has_one_outcome_label(outcome: RunOutcome, label: str) -> None:
    assert retrain_outcome(outcome) == label


def value(metrics: SchedulerMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    assert found is not None, name
    return found


def run_once(tmp_path: Path, job: Any) -> SchedulerMetrics:
    metrics, scheduler = SchedulerMetrics(), BackgroundScheduler(timezone="UTC")
    lock = FileRetrainLock(tmp_path / "retrain.lock")
    trigger = IntervalTrigger(seconds=1, timezone="UTC")
    build_scheduler(_settings(tmp_path), trigger, job, lock=lock, scheduler=scheduler, metrics=metrics)
    scheduler.start()
    try:
        assert _wait_for(lambda: value(metrics, "trendcast_retrain_duration_seconds_count") >= 1), "never ran"
        assert _wait_for(lambda: sum(value(metrics, "trendcast_retrain_runs_total", outcome=o) for o in OUTCOMES) >= 1)
    finally:
        scheduler.shutdown(wait=True)
    return metrics


def test_a_refused_retrain_counts_as_a_success(tmp_path: Path) -> None:
    metrics = run_once(tmp_path, lambda: decided(False))
    assert value(metrics, "trendcast_retrain_runs_total", outcome="refused") >= 1.0  # later fires: skipped (slot)
    assert value(metrics, "trendcast_retrain_runs_total", outcome="failed") == 0.0
    assert value(metrics, "trendcast_retrain_last_success_timestamp_seconds") > 0


def test_a_failed_retrain_is_timed_but_no_success(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise ValueError("bad fold")

    with caplog.at_level(logging.CRITICAL, logger="trendcast.schedule"):
        metrics = run_once(tmp_path, boom)
    assert value(metrics, "trendcast_retrain_runs_total", outcome="failed") >= 1.0
    assert value(metrics, "trendcast_retrain_duration_seconds_count") >= 1.0
    assert value(metrics, "trendcast_retrain_last_success_timestamp_seconds") == 0.0


def test_the_last_success_starts_at_the_newest_registered_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trendcast import tracking

    served: list[tuple[int, str]] = []
    monkeypatch.setattr("prometheus_client.start_http_server", lambda port, addr, registry: served.append((port, addr)))
    versions = [SimpleNamespace(created=1_700_000_000_000), SimpleNamespace(created=1_700_000_500_000)]
    monkeypatch.setattr(tracking, "list_versions", lambda settings: versions)
    metrics = serve_metrics(_settings(tmp_path), 9102, "127.0.0.1")
    assert served == [(9102, "127.0.0.1")]
    assert value(metrics, "trendcast_retrain_last_success_timestamp_seconds") == 1_700_000_500.0


def test_an_unreadable_registry_leaves_the_last_success_at_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(settings: Any) -> list[Any]:
        raise ConnectionError("registry down")

    monkeypatch.setattr("prometheus_client.start_http_server", lambda port, addr, registry: None)
    monkeypatch.setattr(schedule, "last_registered_time", unreachable)
    with caplog.at_level(logging.WARNING, logger="trendcast.schedule"):
        metrics = serve_metrics(_settings(tmp_path), 9102)
    assert value(metrics, "trendcast_retrain_last_success_timestamp_seconds") == 0.0
    assert "registry unreadable" in caplog.text


def test_unknown_outcomes_are_refused() -> None:
    with pytest.raises(ValueError, match="promoted, refused, failed, skipped"):
        SchedulerMetrics().record("exploded")
