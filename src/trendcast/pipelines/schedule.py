"""`trendcast schedule`: retrain on a cron expression, never twice at once, never twice for the same fire time.

A long-running APScheduler 3 scheduler (UTC) fires the retrain job on a cron trigger and, optionally, a drift check
every `drift_interval_s` that retrains at once when drift is over the alert threshold. Each run goes through
`guarded_run`, which takes two guards so that several schedulers (replicas, a restarted pod next to the old one)
retrain once:

1. a non-blocking *lock*, so two retrains never overlap;
2. a *slot claim*, so a scheduler that gets the lock after another one finished the same scheduled fire time does
   not retrain again. A slot is the fire time in ISO UTC at minute resolution (`2024-01-07T02:00Z`), or
   `drift-<minute>` for a drift-triggered retrain.

The lock follows the bar store: with PostgreSQL (`TRENDCAST_DATABASE_URL=postgresql...`) it is a session-level
advisory lock and the claims are rows of `trendcast_schedule_runs`, so schedulers on different hosts agree; otherwise
it is a file lock at `<data_dir>/retrain.lock` with the claimed slots in `retrain.lock.json` beside it, which only
protects schedulers sharing that directory.

A failed retrain is logged and reported as an outcome; the scheduler keeps running. With `metrics_port`
(`trendcast schedule --metrics-port`, default 9102) the scheduler serves Prometheus metrics over HTTP with
prometheus-client's `start_http_server`: every fire's outcome (promoted, refused, failed, skipped), retrain
durations and the time of the last retrain that decided, read from the APScheduler job events (`retrain_outcome`);
at start that time is the newest registered version's creation, so the alert on stale models works before the
first run. The README shows the equivalents
(cron, Kubernetes CronJob, CI schedule) for people who do not want a long-running scheduler.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from filelock import FileLock, Timeout

from trendcast.config import Settings
from trendcast.errors import ConfigError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from trendcast.serving.metrics import SchedulerMetrics

logger = logging.getLogger("trendcast.schedule")

DEFAULT_LOCK_NAME = "trendcast-retrain"
DEFAULT_CRON = "0 2 * * SUN"  # Sundays 02:00 UTC
RUNS_TABLE = "trendcast_schedule_runs"
MISFIRE_GRACE_S = 3600  # a fire time missed by up to an hour (scheduler busy or paused) still runs, once

RAN = "ran"
LOCK_HELD = "another scheduler holds the retrain lock"
SLOT_TAKEN = "slot already run by another scheduler"

_KEPT_SLOTS = 64  # claimed slots remembered by the file lock
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TRIGGER_STEPS = 100_000
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class RetrainLock(Protocol):
    """A lock shared by every scheduler that may retrain the same model, plus the record of claimed slots."""

    def acquire(self) -> bool:
        """Try once, without waiting; True when this process now holds the lock."""
        ...

    def release(self) -> None:
        """Give the lock back; a no-op when it is not held."""
        ...

    def claim(self, slot: str) -> bool:
        """Record `slot` as run (the lock must be held); True only for the first claim of that slot."""
        ...


def host_id() -> str:
    """Who claimed a slot: `<hostname>:<pid>`."""
    return f"{socket.gethostname()}:{os.getpid()}"


class FileRetrainLock:
    """An OS file lock (`filelock`, non-blocking) plus the recently claimed slots in a JSON file beside it.

    Examples:
        >>> lock = FileRetrainLock(Path(".trendcast/retrain.lock"))  # doctest: +SKIP
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.slots_path = self.path.with_name(self.path.name + ".json")
        self._lock = FileLock(str(self.path), timeout=0)  # thread-local: another thread of this process is refused too

    def acquire(self) -> bool:
        if self._lock.is_locked:  # already held by this thread: not re-entrant, like the PostgreSQL lock
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def claim(self, slot: str) -> bool:
        if not self._lock.is_locked:
            raise RuntimeError(f"Claiming slot {slot!r} needs the retrain lock {self.path}; call acquire() first.")
        recent = self._recent_slots()
        if slot in recent:
            return False
        state = {
            "last_slot": slot,
            "claimed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": host_id(),
            "recent": [*recent, slot][-_KEPT_SLOTS:],
        }
        tmp = self.slots_path.with_name(self.slots_path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.slots_path)  # atomic: a crash leaves the old file or the new one
        return True

    def _recent_slots(self) -> list[str]:
        if not self.slots_path.is_file():
            return []
        try:
            state = json.loads(self.slots_path.read_text())
            return [str(slot) for slot in state["recent"]]
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("unreadable slot file %s (%s); starting it afresh", self.slots_path, exc)
            return []


def advisory_key(name: str) -> int:
    """A stable, non-negative 63-bit key for `pg_advisory_lock` (the same in every process, unlike `hash()`)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class PostgresRetrainLock:
    """A session-level PostgreSQL advisory lock on one dedicated connection, and slot claims in a table.

    The connection is opened by `acquire()` and closed by `release()`, so nothing idles between weekly runs; if the
    process dies, PostgreSQL ends the session and frees the lock. Use an engine with `NullPool` (as
    `retrain_lock` does) so that closing really ends the session.
    """

    def __init__(self, engine: sa.Engine, name: str = DEFAULT_LOCK_NAME) -> None:
        self.engine = engine
        self.name = name
        self.key = advisory_key(name)
        self._in_process = threading.Lock()  # one holder per instance (cron and drift jobs share it)
        self._conn: sa.Connection | None = None
        self._table_ready = False

    def acquire(self) -> bool:
        if not self._in_process.acquire(blocking=False):
            return False
        try:
            conn = self.engine.connect()
        except BaseException:
            self._in_process.release()
            raise
        if self._try_lock(conn):
            self._conn = conn
            return True
        self._in_process.release()
        return False

    def _try_lock(self, conn: sa.Connection) -> bool:
        """Closes `conn` unless the lock was taken on it."""
        import sqlalchemy as sa

        try:
            got = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(CAST(:key AS bigint))"), {"key": self.key}).scalar()
            )
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
        return got

    def release(self) -> None:
        import sqlalchemy as sa

        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.rollback()  # leave a failed claim's transaction before unlocking
            conn.execute(sa.text("SELECT pg_advisory_unlock(CAST(:key AS bigint))"), {"key": self.key})
            conn.commit()
        except sa.exc.SQLAlchemyError as exc:
            logger.warning("could not unlock %s (%s); dropping the connection, which frees it", self.name, exc)
            conn.invalidate()
        finally:
            conn.close()
            self._in_process.release()

    def claim(self, slot: str) -> bool:
        import sqlalchemy as sa

        if self._conn is None:
            raise RuntimeError(f"Claiming slot {slot!r} needs the advisory lock {self.name!r}; call acquire() first.")
        self._ensure_table(self._conn)
        insert = sa.text(f"INSERT INTO {RUNS_TABLE} (slot, host) VALUES (:slot, :host) ON CONFLICT (slot) DO NOTHING")
        result = self._conn.execute(insert, {"slot": slot, "host": host_id()})
        self._conn.commit()
        return result.rowcount == 1

    def _ensure_table(self, conn: sa.Connection) -> None:
        """CREATE TABLE IF NOT EXISTS races between sessions; a transaction lock on a fixed key serialises it."""
        import sqlalchemy as sa

        if self._table_ready:
            return
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(CAST(:key AS bigint))"), {"key": advisory_key(RUNS_TABLE)})
        conn.execute(
            sa.text(
                f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} "
                "(slot text PRIMARY KEY, started_at timestamptz NOT NULL DEFAULT now(), host text)"
            )
        )
        conn.commit()
        self._table_ready = True


def retrain_lock(settings: Settings, name: str = DEFAULT_LOCK_NAME) -> RetrainLock:
    """The lock that matches the bar store: PostgreSQL advisory lock, else a file lock under `data_dir`.

    The file is `<data_dir>/retrain.lock` for the default name and `<data_dir>/<name>.lock` for any other.
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"Lock name {name!r} must use only letters, digits, '.', '_' and '-', e.g. {DEFAULT_LOCK_NAME!r}."
        )
    url = settings.resolved_database_url
    if url.startswith("postgresql"):
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        return PostgresRetrainLock(sa.create_engine(url, poolclass=NullPool), name)
    filename = "retrain.lock" if name == DEFAULT_LOCK_NAME else f"{name}.lock"
    return FileRetrainLock(settings.data_dir / filename)


def claim_slot(lock: RetrainLock, slot: str) -> bool:
    """True only for the first process that claims `slot`; the lock must be held. Same as `lock.claim(slot)`."""
    return lock.claim(slot)


@dataclass(frozen=True)
class RunOutcome:
    """What one scheduled fire did. `reason` is "ran", LOCK_HELD, SLOT_TAKEN or "failed: <ExcType>: <msg>"."""

    slot: str
    ran: bool
    reason: str
    result: Any = None


def guarded_run(lock: RetrainLock, slot: str, job: Callable[[], Any]) -> RunOutcome:
    """Acquire without waiting, claim `slot`, run `job`, release. Never raises an `Exception`: a failing job (or a
    failing lock backend) is logged and returned as a failed outcome, so the scheduler keeps running."""
    try:
        return _locked_run(lock, slot, job)
    except Exception as exc:
        logger.exception("retrain for slot %s failed", slot)
        return RunOutcome(slot=slot, ran=False, reason=f"failed: {type(exc).__name__}: {exc}")


def _locked_run(lock: RetrainLock, slot: str, job: Callable[[], Any]) -> RunOutcome:
    if not lock.acquire():
        return RunOutcome(slot=slot, ran=False, reason=LOCK_HELD)
    try:
        if not lock.claim(slot):
            return RunOutcome(slot=slot, ran=False, reason=SLOT_TAKEN)
        return RunOutcome(slot=slot, ran=True, reason=RAN, result=job())
    finally:
        lock.release()


def parse_cron(expression: str) -> CronTrigger:
    """A UTC cron trigger from a five-field crontab expression (minute hour day month day-of-week).

    Days of the week must be names (SUN, MON-FRI): APScheduler 3 reads 0 as Monday where crontab reads Sunday, so
    numbers are refused rather than silently shifted by a day.

    Examples:
        >>> parse_cron("0 2 * * SUN")  # Sundays 02:00 UTC
        <CronTrigger (month='*', day='*', day_of_week='sun', hour='2', minute='0', timezone='UTC')>
    """
    example = f'e.g. "{DEFAULT_CRON}" for Sundays 02:00 UTC'
    fields = expression.split()
    if len(fields) == 5 and any(char.isdigit() for char in fields[4]):
        raise ConfigError(
            f"Cron expression {expression!r}: write the day of the week as a name (SUN, MON-FRI), {example}."
        )
    try:
        return CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise ConfigError(
            f"Invalid cron expression {expression!r}: {exc}. Use five fields "
            f"'minute hour day-of-month month day-of-week' in UTC, {example}."
        ) from exc


def minute_slot(moment: datetime) -> str:
    """ISO UTC at minute resolution, e.g. `2024-01-07T02:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def scheduled_slot(trigger: BaseTrigger, now: datetime | None = None) -> str:
    """The slot of the fire time a running job belongs to: the trigger's latest fire time at or before `now`.

    Why not the alternatives: APScheduler does not pass the fire time to the job, and `job.next_run_time` is
    advanced to the *next* fire time while the job is being handed to the thread pool, so reading it races;
    `now` floored to the minute differs between schedulers when one fires late (busy, paused, up to the misfire
    grace). The trigger's own schedule is the same in every scheduler, so all of them compute the same slot.
    """
    now = now or datetime.now(UTC)
    for lookback_s in (120, MISFIRE_GRACE_S + 60):  # the short window first: few steps for frequent triggers
        fire_time = _latest_fire_time(trigger, now, timedelta(seconds=lookback_s))
        if fire_time is not None:
            return minute_slot(fire_time)
    return minute_slot(now)  # no fire time within the misfire grace: the job was run by hand


def _latest_fire_time(trigger: BaseTrigger, now: datetime, lookback: timedelta) -> datetime | None:
    latest: datetime | None = None
    fire_time: datetime | None = trigger.get_next_fire_time(None, now - lookback)
    for _ in range(_MAX_TRIGGER_STEPS):
        if fire_time is None or fire_time > now:
            break
        latest = fire_time
        fire_time = trigger.get_next_fire_time(latest, now)
    return latest


def _log_outcome(outcome: RunOutcome, source: str) -> None:
    """One line per outcome; its fields are JSON fields under TRENDCAST_LOG_JSON."""
    fields = {"slot": outcome.slot, "ran": outcome.ran, "reason": outcome.reason, "source": source}
    level = logging.WARNING if outcome.reason.startswith("failed") else logging.INFO
    logger.log(level, "retrain %s (%s): %s", outcome.slot, source, outcome.reason, extra=fields)


def _scheduled_retrain(lock: RetrainLock, trigger: BaseTrigger, job: Callable[[], Any]) -> RunOutcome:
    outcome = guarded_run(lock, scheduled_slot(trigger), job)
    _log_outcome(outcome, "cron")
    return outcome  # also the APScheduler event's retval, for listeners


def _drift_retrain(
    lock: RetrainLock, trigger: BaseTrigger, drift_check: Callable[[], bool], job: Callable[[], Any]
) -> RunOutcome | None:
    slot = "drift-" + scheduled_slot(trigger)  # checks fire on epoch-aligned times, so schedulers share the slot
    try:
        drifted = drift_check()
    except Exception:
        logger.exception("drift check failed; retrying in the next interval")
        return None
    if not drifted:
        return None
    outcome = guarded_run(lock, slot, job)
    _log_outcome(outcome, "drift")
    return outcome


def build_scheduler(
    settings: Settings,
    trigger: BaseTrigger,
    job: Callable[[], Any],
    *,
    lock: RetrainLock | None = None,
    drift_check: Callable[[], bool] | None = None,
    drift_interval_s: float = 3600.0,
    scheduler: BaseScheduler | None = None,
    metrics: SchedulerMetrics | None = None,
) -> BaseScheduler:
    """Add the guarded retrain (and the optional drift check) to a scheduler, not started.

    `drift_check()` returns True when drift is over the alert threshold; the retrain then runs at once under the
    same lock, with slot `drift-<minute>`. Default scheduler: `BlockingScheduler(timezone="UTC")`. With `metrics`,
    each retrain is timed and each fire's outcome counted (a drift check that did not retrain counts nothing).
    """
    if drift_interval_s <= 0:
        raise ConfigError(f"drift_interval_s must be positive, got {drift_interval_s}; e.g. 3600 for hourly checks.")
    lock = lock if lock is not None else retrain_lock(settings)
    scheduler = scheduler if scheduler is not None else BlockingScheduler(timezone="UTC")
    if metrics is not None:
        job = metrics.duration.time()(job)
        scheduler.add_listener(functools.partial(_count_outcome, metrics), EVENT_JOB_EXECUTED)
    once = {"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_S}
    retrain = functools.partial(_scheduled_retrain, lock, trigger, job)
    scheduler.add_job(retrain, trigger, id="trendcast-retrain", name="trendcast retrain", **once)
    if drift_check is not None:
        drift_trigger = IntervalTrigger(seconds=drift_interval_s, start_date=_EPOCH, timezone="UTC")
        check = functools.partial(_drift_retrain, lock, drift_trigger, drift_check, job)
        scheduler.add_job(check, drift_trigger, id="trendcast-drift-check", name="trendcast drift check", **once)
    return scheduler


def run_schedule(
    settings: Settings,
    cron: str,
    job: Callable[[], Any],
    *,
    drift_check: Callable[[], bool] | None = None,
    drift_interval_s: float = 3600.0,
    metrics_port: int | None = None,
    metrics_addr: str = "0.0.0.0",
) -> None:
    """Run the retrain on `cron` (UTC) until interrupted; Ctrl-C or SIGTERM-as-SystemExit stops it cleanly.

    `metrics_port`: serve the scheduler's Prometheus metrics on `metrics_addr:metrics_port` (None or 0: do not)."""
    trigger = parse_cron(cron)
    metrics = serve_metrics(settings, metrics_port, metrics_addr) if metrics_port else None
    scheduler = build_scheduler(
        settings, trigger, job, drift_check=drift_check, drift_interval_s=drift_interval_s, metrics=metrics
    )
    next_fire = trigger.get_next_fire_time(None, datetime.now(UTC))
    logger.info(
        "retrain scheduled on %r (UTC); next at %s",
        cron,
        next_fire,
        extra={"cron": cron, "next_run": next_fire.isoformat() if next_fire else None},
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        logger.info("scheduler stopping")
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)  # a retrain already running finishes and releases its lock


# -- metrics ------------------------------------------------------------------------------------------------------------
def retrain_outcome(outcome: RunOutcome) -> str:
    """The `outcome` label of one fire: promoted, refused (the gates kept the champion), failed or skipped."""
    if outcome.reason.startswith("failed"):
        return "failed"
    if not outcome.ran:
        return "skipped"
    decision = getattr(outcome.result, "decision", None) or {}
    return "promoted" if decision.get("promoted") else "refused"


def _count_outcome(metrics: SchedulerMetrics, event: JobExecutionEvent) -> None:
    if isinstance(event.retval, RunOutcome):  # None: a drift check that found no drift
        metrics.record(retrain_outcome(event.retval))


def last_registered_time(settings: Settings) -> float | None:
    """Creation time (s since the epoch) of the newest registered version, None before the first registration."""
    from trendcast import tracking

    created = [record.created for record in tracking.list_versions(settings)]
    return max(created) / 1000 if created else None


def serve_metrics(settings: Settings, port: int, addr: str = "0.0.0.0") -> SchedulerMetrics:
    """Start the metrics endpoint (a daemon thread) with the last success taken from the registry."""
    from prometheus_client import start_http_server

    from trendcast.serving.metrics import SchedulerMetrics

    metrics = SchedulerMetrics()
    try:
        last = last_registered_time(settings)
    except Exception as exc:  # the scheduler still starts; the gauge stays 0 until a retrain decides
        logger.warning("registry unreadable, last retrain time unknown: %s: %s", type(exc).__name__, exc)
        last = None
    if last is not None:
        metrics.last_success.set(last)
    start_http_server(port, addr, registry=metrics.registry)
    logger.info("scheduler metrics on http://%s:%d/metrics", addr, port, extra={"metrics_port": port})
    return metrics
