"""The retrain schedule: file lock, slot claims, guarded runs, cron parsing, scheduler wiring, and two real processes
contending for the same slot (the PostgreSQL variant is in tests/integration/test_schedule_postgres.py)."""

from __future__ import annotations

import _thread
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from trendcast.config import Settings
from trendcast.errors import ConfigError
from trendcast.pipelines.schedule import (
    LOCK_HELD,
    RAN,
    SLOT_TAKEN,
    FileRetrainLock,
    PostgresRetrainLock,
    advisory_key,
    build_scheduler,
    claim_slot,
    guarded_run,
    parse_cron,
    retrain_lock,
    run_schedule,
    scheduled_slot,
)

SLOT = "2024-01-07T02:00Z"


def _settings(data_dir: Path, database_url: str | None = None) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url)


def _wait_for(condition: Callable[[], bool], deadline_s: float = 10.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class Counter:
    def __init__(self, result: Any = None) -> None:
        self.calls = 0
        self.result = result

    def __call__(self) -> Any:
        self.calls += 1
        return self.result


# ---------------------------------------------------------------------------------------------------- locks and slots


def test_file_lock_excludes_another_holder_until_released(tmp_path: Path) -> None:
    first, second = FileRetrainLock(tmp_path / "retrain.lock"), FileRetrainLock(tmp_path / "retrain.lock")
    assert first.acquire()
    assert not second.acquire()
    assert not first.acquire()  # not re-entrant either
    first.release()
    assert second.acquire()
    assert not first.acquire()
    second.release()


def test_failing_job_is_reported_logged_and_releases_the_lock(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lock = FileRetrainLock(tmp_path / "retrain.lock")

    def boom() -> None:
        raise RuntimeError("no bars stored")

    with caplog.at_level(logging.ERROR, logger="trendcast.schedule"):
        outcome = guarded_run(lock, SLOT, boom)
    assert (outcome.ran, outcome.reason, outcome.slot) == (False, "failed: RuntimeError: no bars stored", SLOT)
    assert [r.exc_info is not None for r in caplog.records if r.name == "trendcast.schedule"] == [True]
    assert FileRetrainLock(tmp_path / "retrain.lock").acquire()  # released


def test_same_slot_runs_once_and_a_new_slot_runs_again(tmp_path: Path) -> None:
    lock, job = FileRetrainLock(tmp_path / "retrain.lock"), Counter(result={"promoted": True})
    first = guarded_run(lock, SLOT, job)
    assert (first.ran, first.reason, first.result) == (True, RAN, {"promoted": True})
    again = guarded_run(FileRetrainLock(tmp_path / "retrain.lock"), SLOT, job)
    assert (again.ran, again.reason, again.result) == (False, SLOT_TAKEN, None)
    assert guarded_run(lock, "2024-01-14T02:00Z", job).ran
    assert job.calls == 2
    state = json.loads((tmp_path / "retrain.lock.json").read_text())
    assert state["last_slot"] == "2024-01-14T02:00Z" and state["recent"] == [SLOT, "2024-01-14T02:00Z"]


def test_busy_lock_skips_without_running(tmp_path: Path) -> None:
    holder, job = FileRetrainLock(tmp_path / "retrain.lock"), Counter()
    assert holder.acquire()
    outcome = guarded_run(FileRetrainLock(tmp_path / "retrain.lock"), SLOT, job)
    holder.release()
    assert (outcome.ran, outcome.reason, job.calls) == (False, LOCK_HELD, 0)


def test_claim_needs_the_lock_and_survives_a_corrupt_slot_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = FileRetrainLock(tmp_path / "retrain.lock")
    with pytest.raises(RuntimeError, match="call acquire"):
        lock.claim(SLOT)
    (tmp_path / "retrain.lock.json").write_text("{not json")
    assert lock.acquire()
    with caplog.at_level(logging.WARNING, logger="trendcast.schedule"):
        assert claim_slot(lock, SLOT)
    assert not claim_slot(lock, SLOT)
    lock.release()
    assert "unreadable slot file" in caplog.text


def test_retrain_lock_follows_the_store_url(tmp_path: Path) -> None:
    file_lock = retrain_lock(_settings(tmp_path))
    assert isinstance(file_lock, FileRetrainLock) and file_lock.path == tmp_path / "retrain.lock"
    other = retrain_lock(_settings(tmp_path), name="nightly")
    assert isinstance(other, FileRetrainLock) and other.path == tmp_path / "nightly.lock"
    pg_lock = retrain_lock(_settings(tmp_path, "postgresql+psycopg://u@127.0.0.1:1/db"))  # lazy: connects on acquire
    assert isinstance(pg_lock, PostgresRetrainLock) and pg_lock.key == advisory_key("trendcast-retrain")
    with pytest.raises(ConfigError, match="letters, digits"):
        retrain_lock(_settings(tmp_path), name="../escape")


def test_advisory_key_is_a_stable_63_bit_integer() -> None:
    key = advisory_key("trendcast-retrain")
    assert key == 5898611777503170116  # pinned: identical in every process (hash() is salted per process)
    assert 0 <= key < 2**63 and advisory_key("other") != key


# ---------------------------------------------------------------------------------------------------- cron and slots


def test_parse_cron_reads_crontab_in_utc() -> None:
    trigger = parse_cron("0 2 * * SUN")
    after = datetime(2024, 1, 3, 12, 0, tzinfo=UTC)  # a Wednesday
    assert trigger.get_next_fire_time(None, after) == datetime(2024, 1, 7, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("expression", ["0 2 * *", "61 2 * * *", "0 2 * * FUNDAY", "", "0 2 * * 0"])
def test_parse_cron_rejects_bad_expressions_with_an_example(expression: str) -> None:
    with pytest.raises(ConfigError, match='"0 2 \\* \\* SUN" for Sundays 02:00 UTC'):
        parse_cron(expression)


@pytest.mark.parametrize("minute, second", [(0, 0), (0, 59), (37, 12), (59, 59)])
def test_slot_is_the_scheduled_fire_time_even_when_the_job_starts_late(minute: int, second: int) -> None:
    now = datetime(2024, 1, 7, 2, minute, second, tzinfo=UTC)
    assert scheduled_slot(parse_cron("0 2 * * SUN"), now) == SLOT


def test_slot_falls_back_to_the_current_minute_outside_the_schedule() -> None:
    now = datetime(2024, 1, 10, 9, 30, 45, tzinfo=UTC)  # Wednesday, days after the last fire
    assert scheduled_slot(parse_cron("0 2 * * SUN"), now) == "2024-01-10T09:30Z"


# ---------------------------------------------------------------------------------------------------- the scheduler


def test_build_scheduler_runs_the_guarded_job_on_its_trigger(tmp_path: Path) -> None:
    job = Counter()
    scheduler = BackgroundScheduler(timezone="UTC")
    trigger = IntervalTrigger(seconds=1, timezone="UTC")
    assert build_scheduler(_settings(tmp_path), trigger, job, scheduler=scheduler) is scheduler
    (retrain,) = scheduler.get_jobs()
    assert (retrain.coalesce, retrain.max_instances, retrain.misfire_grace_time) == (True, 1, 3600)
    scheduler.start()
    try:
        assert _wait_for(lambda: job.calls >= 1), "the retrain never ran"
    finally:
        scheduler.shutdown(wait=True)
    state = json.loads((tmp_path / "retrain.lock.json").read_text())  # the default lock: <data_dir>/retrain.lock
    assert state["last_slot"].endswith("Z") and not state["last_slot"].startswith("drift-")


@pytest.mark.parametrize("drifted", [True, False])
def test_drift_over_threshold_retrains_at_once(tmp_path: Path, drifted: bool) -> None:
    job, check = Counter(), Counter(result=drifted)
    lock = FileRetrainLock(tmp_path / "retrain.lock")
    scheduler = BackgroundScheduler(timezone="UTC")
    never_soon = parse_cron("0 2 1 1 *")  # Jan 1, 02:00
    build_scheduler(
        _settings(tmp_path), never_soon, job, lock=lock, drift_check=check, drift_interval_s=0.1, scheduler=scheduler
    )
    scheduler.start()
    try:
        assert _wait_for(lambda: check.calls >= 3), "the drift check never ran"
    finally:
        scheduler.shutdown(wait=True)
    if drifted:  # once per drift minute: later checks in the same minute share its slot
        claimed = json.loads((tmp_path / "retrain.lock.json").read_text())["recent"]
        assert 1 <= job.calls == len(claimed) < check.calls
        assert all(slot.startswith("drift-") for slot in claimed)
    else:
        assert job.calls == 0


def test_run_schedule_logs_outcomes_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job, returned = Counter(), threading.Event()

    def interrupt_after_first_run() -> None:
        _wait_for(lambda: job.calls >= 1)
        time.sleep(0.1)
        if not returned.is_set():
            _thread.interrupt_main()  # what Ctrl-C does

    watcher = threading.Thread(target=interrupt_after_first_run, daemon=True)
    watcher.start()
    try:
        with caplog.at_level(logging.INFO, logger="trendcast.schedule"):
            run_schedule(_settings(tmp_path), "0 2 1 1 *", job, drift_check=lambda: True, drift_interval_s=0.1)
    finally:
        returned.set()
    watcher.join(timeout=5)
    assert job.calls >= 1
    outcomes = [r for r in caplog.records if getattr(r, "source", None) == "drift"]
    assert [(getattr(r, "ran", None), getattr(r, "reason", None)) for r in outcomes][:1] == [(True, RAN)]
    assert "scheduler stopping" in caplog.text


# ---------------------------------------------------------------------------------------------------- two processes


def _append_line_and_sleep(ledger: Path) -> None:
    with ledger.open("a") as out:
        out.write(f"{os.getpid()}\n")
    time.sleep(1.0)


def contend(
    database_url: str | None, data_dir: str, name: str, slot: str, ledger: str, reason_file: str, start: Any
) -> None:
    """One scheduler process: its own lock from `retrain_lock`, then a guarded run of a 1 s job at the same slot."""
    lock = retrain_lock(_settings(Path(data_dir), database_url), name=name)
    if start is not None:
        start.wait(timeout=60)
    outcome = guarded_run(lock, slot, lambda: _append_line_and_sleep(Path(ledger)))
    Path(reason_file).write_text(outcome.reason)


def run_schedulers(
    tmp_path: Path, *, slot: str, name: str = "trendcast-retrain", database_url: str | None = None, together: int = 2
) -> list[str]:
    """Start `together` processes at once (spawned, each builds its own lock) and return their outcome reasons."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(together) if together > 1 else None
    ledger = tmp_path / "ledger.txt"
    reason_files = [tmp_path / f"reason-{time.monotonic_ns()}-{i}.txt" for i in range(together)]
    args = (database_url, str(tmp_path / "data"), name, slot, str(ledger))
    processes = [ctx.Process(target=contend, args=(*args, str(path), start)) for path in reason_files]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0, f"scheduler process exited with {process.exitcode}"
    return [path.read_text() for path in reason_files]


def ledger_lines(tmp_path: Path) -> list[str]:
    ledger = tmp_path / "ledger.txt"
    return ledger.read_text().splitlines() if ledger.exists() else []


def test_two_schedulers_started_together_retrain_once(tmp_path: Path) -> None:
    reasons = run_schedulers(tmp_path, slot=SLOT)
    assert len(ledger_lines(tmp_path)) == 1
    assert reasons.count(RAN) == 1 and set(reasons) - {RAN} <= {LOCK_HELD, SLOT_TAKEN}


def test_a_scheduler_arriving_after_the_run_does_not_repeat_the_slot(tmp_path: Path) -> None:
    assert run_schedulers(tmp_path, slot=SLOT, together=1) == [RAN]
    assert run_schedulers(tmp_path, slot=SLOT, together=1) == [SLOT_TAKEN]
    assert len(ledger_lines(tmp_path)) == 1
