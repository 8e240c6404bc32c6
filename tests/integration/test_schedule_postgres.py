"""The retrain lock on a real PostgreSQL server: advisory lock across sessions and processes, slot claims in a table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.conftest import port_open, require_service
from tests.unit.pipelines.test_schedule import ledger_lines, run_schedulers
from trendcast.pipelines.schedule import LOCK_HELD, RAN, RUNS_TABLE, SLOT_TAKEN, PostgresRetrainLock, guarded_run

pytestmark = pytest.mark.integration
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Run:
    name: str  # lock name, unique per test
    slot: str  # slot, unique per test


@pytest.fixture
def pg_run() -> Iterator[Run]:
    require_service("PostgreSQL at 127.0.0.1:5432", lambda: port_open("127.0.0.1", 5432), "start it or set CI=false")
    tag = uuid.uuid4().hex[:12]
    run = Run(name=f"trendcast-test-{tag}", slot=f"test-{tag}-2024-01-07T02:00Z")
    yield run
    engine = sa.create_engine(URL, poolclass=NullPool)
    with engine.begin() as conn:
        if sa.inspect(conn).has_table(RUNS_TABLE):
            conn.execute(sa.text(f"DELETE FROM {RUNS_TABLE} WHERE slot = :slot"), {"slot": run.slot})
    engine.dispose()


def _lock(name: str) -> PostgresRetrainLock:
    return PostgresRetrainLock(sa.create_engine(URL, poolclass=NullPool), name)


def test_advisory_lock_excludes_another_session_until_released(pg_run: Run) -> None:
    first, second = _lock(pg_run.name), _lock(pg_run.name)
    assert first.acquire()
    assert not second.acquire()
    assert not first.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_slot_row_is_claimed_once_and_records_the_host(pg_run: Run) -> None:
    lock = _lock(pg_run.name)
    assert guarded_run(lock, pg_run.slot, lambda: "model-v2").reason == RAN
    assert guarded_run(_lock(pg_run.name), pg_run.slot, lambda: "model-v3").reason == SLOT_TAKEN
    with lock.engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT host FROM {RUNS_TABLE} WHERE slot = :slot"), {"slot": pg_run.slot}).all()
    assert len(rows) == 1 and ":" in rows[0].host


def test_busy_lock_is_reported_and_a_failed_job_frees_it(pg_run: Run) -> None:
    holder = _lock(pg_run.name)
    assert holder.acquire()
    assert guarded_run(_lock(pg_run.name), pg_run.slot, lambda: None).reason == LOCK_HELD
    holder.release()

    def boom() -> None:
        raise ValueError("bad fold")

    assert guarded_run(_lock(pg_run.name), pg_run.slot, boom).reason == "failed: ValueError: bad fold"
    assert holder.acquire()
    holder.release()


def test_two_schedulers_started_together_retrain_once(pg_run: Run, tmp_path: Path) -> None:
    reasons = run_schedulers(tmp_path, slot=pg_run.slot, name=pg_run.name, database_url=URL)
    assert len(ledger_lines(tmp_path)) == 1
    assert reasons.count(RAN) == 1 and set(reasons) - {RAN} <= {LOCK_HELD, SLOT_TAKEN}


def test_a_scheduler_arriving_after_the_run_does_not_repeat_the_slot(pg_run: Run, tmp_path: Path) -> None:
    assert run_schedulers(tmp_path, slot=pg_run.slot, name=pg_run.name, database_url=URL, together=1) == [RAN]
    assert run_schedulers(tmp_path, slot=pg_run.slot, name=pg_run.name, database_url=URL, together=1) == [SLOT_TAKEN]
    assert len(ledger_lines(tmp_path)) == 1
