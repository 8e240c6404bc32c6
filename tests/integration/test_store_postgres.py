"""Round trip through a real PostgreSQL server: the same data, bit for bit; idempotent upserts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import port_open, require_service
from tests.unit.data.test_store import _clean, assert_bit_identical
from trendcast.data.store import BarStore

pytestmark = pytest.mark.integration
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_store() -> Iterator[BarStore]:
    require_service("PostgreSQL at 127.0.0.1:5432", lambda: port_open("127.0.0.1", 5432), "start it or set CI=false")
    schema = f"tc_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    store = BarStore(URL + f"?options=-csearch_path%3D{schema}")
    try:
        yield store
    finally:
        store.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_postgres_round_trip_bit_identical_and_idempotent(pg_store: BarStore) -> None:
    bars = _clean()
    pg_store.upsert(bars)
    pg_store.upsert(bars)
    assert pg_store.engine.dialect.name == "postgresql"
    assert pg_store.count() == len(bars)
    assert_bit_identical(pg_store.load(), bars)
