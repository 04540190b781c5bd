"""Lead buckets: a rebuild swaps fresh partitions in without queueing readers, the bucket count follows its setting,
and history re-split into another count scores the same."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator

import psycopg
import pytest

from leadscore_pipeline.buckets import LEAD_BUCKETS, lead_bucket_sql
from leadscore_pipeline.db import partitions
from leadscore_pipeline.db.embedded import drop_database, ensure_database
from leadscore_pipeline.db.migrate import migrate
from leadscore_pipeline.db.rebucket import BucketCountMismatch, rebucket
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope, score_buckets
from leadscore_pipeline.settings import get_settings
from tests.frozen import NOW
from tests.pipeline.helpers import assert_serving_tables_exact, event, land, scores
from tests.pipeline.test_refresh import microbatch, replay

LEADS = [f"lead{n}@acme.io" for n in range(40)]
TYPES = ("PAGE_VIEW", "EMAIL_OPEN", "DEMO_REQUEST", "PURCHASE", "REFUND")


def land_stream(conn: psycopg.Connection) -> None:
    land(
        conn,
        *(
            event(f"e{n}", TYPES[n % len(TYPES)], f"2026-11-{1 + n % 20:02d}T10:00:00Z", email=LEADS[n % len(LEADS)])
            for n in range(300)
        ),
    )


def partition_oids(conn: psycopg.Connection) -> dict[str, int]:
    return dict(
        conn.execute(
            """select c.relname, c.oid::bigint from pg_inherits i join pg_class c on c.oid = i.inhrelid
               where i.inhparent in ('clean_events'::regclass, 'score_history'::regclass)"""
        ).fetchall()
    )


def history(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "select lead_key, event_id, points, decay, change, score_after from score_history order by 1, 2"
    ).fetchall()


def test_a_replay_swaps_every_bucket_in_as_a_fresh_partition(conn):
    land_stream(conn)
    microbatch(conn)
    before, scored, explained = partition_oids(conn), scores(conn), history(conn)
    replay(conn)
    after = partition_oids(conn)
    assert sorted(after) == sorted(before) and len(after) == 2 * LEAD_BUCKETS
    assert all(after[name] != before[name] for name in after)  # new tables, not rows written into the old ones
    assert scores(conn) == scored and history(conn) == explained
    assert_serving_tables_exact(conn)  # the event totals moved with the swapped clean_events partitions
    leftovers = conn.execute("select relname from pg_class where relname like '%\\_next%'").fetchall()
    assert leftovers == []
    misnamed = conn.execute(
        """select c.relname from pg_inherits i join pg_index x on x.indrelid = i.inhrelid
           join pg_class c on c.oid = x.indexrelid join pg_class p on p.oid = i.inhrelid
           where c.relname not like p.relname || '\\_%'"""
    ).fetchall()
    assert misnamed == []  # each partition's keys and indexes carry its name, as the migration's do


def test_a_swap_waits_for_readers_without_holding_new_ones_up(conn, db, monkeypatch):
    land_stream(conn)
    microbatch(conn)
    scored = scores(conn)
    refused = threading.Event()
    real_sleep = partitions.time.sleep

    def note_refusal(seconds: float) -> None:
        refused.set()
        real_sleep(seconds)

    monkeypatch.setattr(partitions.time, "sleep", note_refusal)
    with psycopg.connect(libpq_url(db)) as long_reader:
        long_reader.execute("select count(*) from score_history")  # its transaction holds the table open
        errors: list[BaseException] = []

        def rescore() -> None:
            try:
                with psycopg.connect(libpq_url(db), autocommit=True) as writer:
                    score_buckets(writer, Scope(buckets=tuple(range(LEAD_BUCKETS))), get_settings().scoring)
            except BaseException as exc:  # re-raised in the test's thread
                errors.append(exc)

        swapper = threading.Thread(target=rescore)
        swapper.start()
        assert refused.wait(timeout=60), "the swap never found the table busy"
        # A queued exclusive lock would make this reader wait behind the long one: it must not.
        with psycopg.connect(libpq_url(db), autocommit=True) as reader:
            reader.execute("set lock_timeout = '2s'")
            assert reader.execute("select count(*) from score_history").fetchone()[0] == 300
        assert swapper.is_alive()  # still waiting for the long reader
        long_reader.rollback()
        swapper.join(timeout=60)
    assert not swapper.is_alive() and errors == []
    assert scores(conn) == scored


@pytest.fixture
def own_database(postgres_server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of the test's own, so its bucket count can differ from the session's."""
    name = f"leadscore_buckets_{os.getpid()}_{secrets.token_hex(3)}"
    url = ensure_database(postgres_server_url, name)
    monkeypatch.setenv("LEADSCORE_DATABASE_URL", url)
    yield url
    monkeypatch.undo()
    get_settings.cache_clear()
    drop_database(postgres_server_url, name)


def migrate_with_buckets(url: str, buckets: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSCORE_LEAD_BUCKETS", str(buckets))
    get_settings.cache_clear()
    try:
        migrate(url)
    finally:
        monkeypatch.delenv("LEADSCORE_LEAD_BUCKETS")
        get_settings.cache_clear()


def bucket_layout(conn: psycopg.Connection) -> tuple[int, int, int, int]:
    """(recorded count, partitions per table, bucket_state rows, deliveries in a bucket other than the hash's)."""
    return conn.execute(
        f"""select (select lead_buckets from pipeline_state),
                   (select count(*) from pg_inherits where inhparent = 'score_history'::regclass),
                   (select count(*) from bucket_state),
                   (select count(*) from raw_deliveries
                    where lead_bucket <> {lead_bucket_sql(4)})"""
    ).fetchone()


def test_a_fresh_database_takes_the_bucket_setting_and_one_with_history_refuses_a_change(own_database, monkeypatch):
    migrate_with_buckets(own_database, 4, monkeypatch)
    with psycopg.connect(libpq_url(own_database), autocommit=True) as conn:
        land_stream(conn)
        assert bucket_layout(conn) == (4, 4, 4, 0)
        assert conn.execute("select max(lead_bucket) from raw_deliveries").fetchone()[0] == 3
    with pytest.raises(BucketCountMismatch, match=r"LEADSCORE_LEAD_BUCKETS is 16.* split into 4 buckets"):
        migrate_with_buckets(own_database, 16, monkeypatch)


def run_steps_with_buckets(url: str, buckets: int, scope: str) -> None:
    """The pipeline's steps in a process whose LEADSCORE_LEAD_BUCKETS is `buckets` (read once per process)."""
    script = (
        "import psycopg; from datetime import datetime; from leadscore_pipeline.microbatch import run_all_steps; "
        "from leadscore_pipeline.refresh import Scope; from leadscore_pipeline.db.urls import libpq_url; "
        f"conn = psycopg.connect(libpq_url({url!r}), autocommit=True); "
        f"run_all_steps(conn, {scope}, as_of=datetime.fromisoformat({NOW.isoformat()!r}))"
    )
    env = os.environ | {"LEADSCORE_LEAD_BUCKETS": str(buckets), "LEADSCORE_DATABASE_URL": url}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=300)


def test_history_re_split_into_another_bucket_count_scores_the_same(own_database, monkeypatch):
    migrate_with_buckets(own_database, 16, monkeypatch)
    with psycopg.connect(libpq_url(own_database), autocommit=True) as conn:
        land_stream(conn)
        run_steps_with_buckets(own_database, 16, "Scope(incremental=True)")
        scored, explained = scores(conn), history(conn)
        board = conn.execute("select lead_key, score, tier from current_scores order by 1").fetchall()
        assert len(scored) == len(LEADS)

        rebucket(conn, 4)
        assert bucket_layout(conn) == (4, 4, 4, 0)
        assert conn.execute("select count(*) from current_scores").fetchone()[0] == 0  # rebuilt by the pipeline
        run_steps_with_buckets(own_database, 4, "Scope(incremental=True)")
        assert scores(conn) == scored and history(conn) == explained
        assert conn.execute("select lead_key, score, tier from current_scores order by 1").fetchall() == board
        assert conn.execute("select max(lead_bucket) from score_history").fetchone()[0] == 3
        assert_serving_tables_exact(conn)

        run_steps_with_buckets(own_database, 4, "Scope(buckets=(0, 1, 2, 3))")  # a replay at the new count
        assert scores(conn) == scored and history(conn) == explained
        assert_serving_tables_exact(conn)


def test_an_event_redelivered_under_a_lead_of_another_bucket_is_rebuilt_in_its_first_deliverys(conn):
    def bucket(email: str) -> int:
        return conn.execute(f"select {lead_bucket_sql(LEAD_BUCKETS, '%s')}", (email,)).fetchone()[0]

    first = "ann@acme.io"
    other = next(f"bo{n}@acme.io" for n in range(100) if bucket(f"bo{n}@acme.io") != bucket(first))
    land(conn, event("e1", "PURCHASE", "2026-11-01T10:00:00Z", email=first))
    land(conn, event("e1", "PURCHASE", "2026-11-01T10:00:00Z", email=other))  # the same id, another lead
    land(conn, event("e2", "DEMO_REQUEST", "2026-11-02T10:00:00Z", email=other))
    microbatch(conn)
    clean = "select event_id, lead_key, lead_bucket, duplicates, conflicts from clean_events order by event_id"
    by_microbatch, scored = conn.execute(clean).fetchall(), scores(conn)
    assert by_microbatch[0][:2] == ("e1", first) and by_microbatch[0][3:] == (1, 1)

    conn.execute("truncate clean_events, split_events; update pipeline_state set split_through = 0")
    for group in ((bucket(other),), (bucket(first),)):  # the other lead's bucket first: it must not take e1
        run_all_steps(conn, Scope(buckets=group), as_of=NOW)
    assert conn.execute(clean).fetchall() == by_microbatch and scores(conn) == scored
    assert conn.execute("select event_id from split_events").fetchall() == [("e1",)]
    assert_serving_tables_exact(conn)
