"""One bad request never fails its neighbours: when Postgres refuses a row the validator passed, the group commit
splits the group until that request is alone; it gets a 422 naming the field, the others land and get 202. The
database being down is a 503 for everyone, never a 500."""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest

from api import group_commit
from api.group_commit import GroupCommit
from leadscore_pipeline.db.engine import engine_for
from leadscore_pipeline.ingest import accept
from leadscore_pipeline.ingest.accept import CheckedRecords, RejectedEvents
from leadscore_pipeline.settings import get_settings

# What the validator might miss and Postgres refuses: text holding NUL, jsonb holding the \u0000 escape, and an
# id too long for an index entry (random, so it does not compress; psycopg files this under OperationalError).
POISON_NAME = "poison-name"
POISON_METADATA = "poison-metadata"
POISON_INDEX = "poison-index"
UNINDEXABLE_ID = "".join(random.Random(7).choices(string.ascii_letters, k=10_000))
DEAD_DATABASE = "postgresql://postgres@127.0.0.1:1/postgres"  # nothing listens on port 1


def with_poison(check_records: Callable[..., CheckedRecords]) -> Callable[..., CheckedRecords]:
    """The real validator, then the poison put into the rows it passed: Postgres, not the validator, refuses them."""

    def check(records, **kwargs) -> CheckedRecords:
        checked = check_records(records, **kwargs)
        event_id = pl.col("event_id")
        events = checked.events.with_columns(
            name=pl.when(event_id == POISON_NAME).then(pl.lit("Ann\x00")).otherwise("name"),
            metadata=pl.when(event_id == POISON_METADATA).then(pl.lit('{"note": "\\u0000"}')).otherwise("metadata"),
            event_id=pl.when(event_id == POISON_INDEX).then(pl.lit(UNINDEXABLE_ID)).otherwise(event_id),
        )
        return CheckedRecords(events, checked.errors)

    return check


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_commit, "check_records", with_poison(group_commit.check_records))
    monkeypatch.setattr(accept, "check_records", with_poison(accept.check_records))


def event(event_id: str) -> dict:
    return {
        "event_id": event_id,
        "event_type": "PAGE_VIEW",
        "email": "ann@acme.io",
        "timestamp": "2026-11-01T10:00:00Z",
    }


def landed_ids(conn) -> list[str]:
    return sorted(row[0] for row in conn.execute("select event_id from raw_deliveries").fetchall())


async def land_together(records: list[dict]) -> list[str | BaseException]:
    """Every record queued before the worker's first round, so they form one group."""
    commit = GroupCommit(get_settings())
    try:
        return await asyncio.gather(*(commit.land(record) for record in records), return_exceptions=True)
    finally:
        await commit.close()


def test_rows_postgres_refuses_fail_alone_and_the_rest_of_their_group_lands(db, conn, poisoned):
    ids = [f"g{i:03d}" for i in range(200)]
    ids[17], ids[80], ids[150] = POISON_NAME, POISON_INDEX, POISON_METADATA
    outcomes = asyncio.run(land_together([event(i) for i in ids]))

    for index in (17, 80, 150):
        assert isinstance(outcomes[index], RejectedEvents), outcomes[index]
    (name_error,) = outcomes[17].errors
    (index_error,) = outcomes[80].errors
    (metadata_error,) = outcomes[150].errors
    assert name_error.field == "event" and "0x00" in name_error.error
    assert index_error.field == "event" and "index row" in index_error.error
    assert metadata_error.field == "metadata" and "\\u0000" in metadata_error.error
    good = [i for i in ids if not i.startswith("poison")]
    assert [o for o in outcomes if not isinstance(o, RejectedEvents)] == good
    assert landed_ids(conn) == good


def test_over_http_199_of_200_concurrent_requests_get_202_and_the_bad_one_a_422(client, conn, poisoned):
    ids = [f"h{i:03d}" for i in range(200)]
    ids[99] = POISON_METADATA
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda event_id: client.post("/api/events", json=event(event_id)), ids))
    assert [r.status_code for r in responses].count(202) == 199
    assert responses[99].status_code == 422
    (error,) = responses[99].json()["detail"]
    assert error["field"] == "metadata" and "cannot store" in error["error"]
    assert landed_ids(conn) == sorted(i for i in ids if i != POISON_METADATA)


def test_a_batch_with_a_row_postgres_refuses_is_422_at_its_index(client, conn, poisoned):
    response = client.post("/api/events/batch", json=[event("b0"), event("b1"), event(POISON_NAME)])
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["index"] == 2 and error["field"] == "event"
    assert landed_ids(conn) == []


@pytest.fixture
def database_down(db: str, monkeypatch: pytest.MonkeyPatch):
    dead = engine_for(DEAD_DATABASE)
    monkeypatch.setattr(group_commit, "get_engine", lambda: dead)
    yield
    dead.dispose()


def test_database_down_is_503_for_the_whole_group_without_splitting_it(database_down, monkeypatch):
    attempts = []
    land_group = GroupCommit._land_group
    monkeypatch.setattr(GroupCommit, "_land_group", lambda self, *args: attempts.append(1) or land_group(self, *args))
    outcomes = asyncio.run(land_together([event(f"d{i}") for i in range(8)]))
    assert len(attempts) == 1  # one try: halves would fail the same way
    assert all(type(outcome).__name__ == "OperationalError" for outcome in outcomes), outcomes


def test_database_down_over_http_is_503_naming_the_database(client, database_down):
    response = client.post("/api/events", json=event("down"))
    assert response.status_code == 503
    assert response.json()["detail"][0]["field"] == "database"
