"""Serving tables (migration 0005): current_scores carries each lead's scored row, and the aggregates the API
reads (totals, companies, event types) stay equal to their recomputation after every writer path."""

from __future__ import annotations

import io
import os
import secrets
import threading
from datetime import timedelta

import psycopg
import pytest
from alembic import command

from leadscore_pipeline.buckets import LEAD_BUCKETS
from leadscore_pipeline.db.embedded import drop_database, ensure_database
from leadscore_pipeline.db.migrate import alembic_config
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.ingest.csv_batches import land_csv
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope, decay_scores, dedup_deliveries
from leadscore_pipeline.refresh_analytics import refresh_lead_stats
from leadscore_pipeline.settings import get_settings
from tests.conftest import reset_database
from tests.frozen import NOW
from tests.pipeline import test_quarantine
from tests.pipeline.helpers import STALE_SERVING_ROWS, aggregate_mismatches, assert_serving_tables_exact, event, land

TOTALS = "select leads, total_points, cold, warm, hot, qualified, events, duplicates, conflicts, rejections"


def microbatch(conn: psycopg.Connection) -> None:
    run_all_steps(conn, Scope(incremental=True), as_of=NOW)


def replay(conn: psycopg.Connection) -> None:
    run_all_steps(conn, Scope(), as_of=NOW)


def totals(conn: psycopg.Connection) -> dict[str, int]:
    cursor = conn.execute(f"{TOTALS} from serving_totals")
    return dict(zip([c.name for c in cursor.description], cursor.fetchone(), strict=True))


def companies(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("select company, leads, total_score from company_totals order by company").fetchall()


def deliver(conn: psycopg.Connection) -> None:
    """Three leads over two micro-batches, with a duplicate and a conflicting delivery."""
    land(
        conn,
        event("a1", "PAGE_VIEW", "2026-11-20T10:00:00Z", metadata={"company": "Acme", "name": "Ann"}),
        event("a2", "DEMO_REQUEST", "2026-11-21T10:00:00Z"),
        event("b1", "PURCHASE", "2026-11-22T10:00:00Z", email="bob@globex.com", metadata={"company": "Globex"}),
    )
    microbatch(conn)
    assert_serving_tables_exact(conn)
    land(
        conn,
        event("a1", "PAGE_VIEW", "2026-11-20T10:00:00Z", metadata={"company": "Acme", "name": "Ann"}),  # duplicate
        event("b1", "PURCHASE", "2026-11-23T10:00:00Z", email="bob@globex.com"),  # conflict: other content
        event("c1", "EMAIL_OPEN", "2026-11-24T10:00:00Z", email="cy@initech.com"),  # company: the domain
        event("a3", "PURCHASE", "2026-11-25T10:00:00Z", metadata={"company": "Acme Corp"}),
    )
    microbatch(conn)


def test_microbatches_keep_the_serving_table_and_every_aggregate_exact(conn):
    deliver(conn)
    assert_serving_tables_exact(conn)
    assert totals(conn) == {
        "leads": 3,
        "total_points": 155 + 100 + 10,
        "cold": 1,
        "warm": 1,
        "hot": 1,
        "qualified": 0,
        "events": 5,
        "duplicates": 2,
        "conflicts": 1,
        "rejections": 0,
    }
    assert companies(conn) == [("Acme Corp", 1, 155), ("Globex", 1, 100), ("initech.com", 1, 10)]
    event_types = conn.execute(
        "select event_type, events, unique_leads, points, conversions from event_type_totals order by 1"
    ).fetchall()
    assert event_types == [
        ("DEMO_REQUEST", 1, 1, 50, 1),
        ("DIRECT", 0, 0, 0, 1),
        ("EMAIL_OPEN", 1, 1, 10, 0),
        ("PAGE_VIEW", 1, 1, 5, 0),
        ("PURCHASE", 2, 2, 200, 0),
    ]
    ann = conn.execute(
        """select email, name, company, score, tier, score_at_last_event, event_count, first_event_at,
                  last_event_at, rules_version from current_scores where lead_key = 'ann@acme.io'"""
    ).fetchone()
    assert ann[:7] == ("ann@acme.io", "Ann", "Acme Corp", 155, "hot", 155, 3)
    assert [moment.isoformat() for moment in ann[7:9]] == ["2026-11-20T10:00:00+00:00", "2026-11-25T10:00:00+00:00"]
    assert ann[9] == 1


def test_a_replay_and_a_rules_rescore_keep_them_exact(conn):
    deliver(conn)
    before = totals(conn)
    replay(conn)
    assert_serving_tables_exact(conn)
    assert totals(conn) == before

    conn.execute("update rules set points = 400 where event_type = 'PAGE_VIEW'")
    conn.execute("update rules set active = false where event_type = 'EMAIL_OPEN'")
    conn.execute("update pipeline_state set rules_version = rules_version + 1")
    replay(conn)  # what the rules sensor's run does: every bucket rescored with the new rules
    assert_serving_tables_exact(conn)
    rescored = totals(conn)
    assert (rescored["total_points"], rescored["qualified"], rescored["cold"]) == (550 + 100 + 0, 1, 1)
    assert companies(conn) == [("Acme Corp", 1, 550), ("Globex", 1, 100), ("initech.com", 1, 0)]
    assert conn.execute("select distinct rules_version from current_scores").fetchall() == [(2,)]


def test_the_daily_decay_moves_tiers_and_totals_exactly(conn):
    deliver(conn)
    settings = get_settings()
    later = NOW + timedelta(days=40)  # 13, 16 and 14 midnights past the inactivity window of ann, bob and cy
    decay_scores(conn, Scope(), settings.scoring, settings.tiers, as_of=later)
    assert_serving_tables_exact(conn)
    decayed = totals(conn)
    assert (decayed["total_points"], decayed["hot"], decayed["warm"], decayed["cold"]) == (90 + 20 + 0, 0, 1, 2)
    assert companies(conn) == [("Acme Corp", 1, 90), ("Globex", 1, 20), ("initech.com", 1, 0)]


def test_quarantined_deliveries_leave_the_aggregates_exact_and_as_without_them(database_url, conn):
    reset_database(database_url)
    test_quarantine.deliver(conn, poison=False)
    clean_run = (totals(conn), companies(conn))

    reset_database(database_url)
    poisons = test_quarantine.deliver(conn, poison=True)
    assert conn.execute("select count(*) from quarantined_deliveries").fetchone()[0] == len(poisons) > 0
    assert_serving_tables_exact(conn)
    assert (totals(conn), companies(conn)) == clean_run
    replay(conn)
    assert_serving_tables_exact(conn)
    assert (totals(conn), companies(conn)) == clean_run


def test_csv_rejections_are_counted_as_they_land(conn):
    rows = (
        "event_id,event_type,lead_id,email,timestamp,metadata\n"
        "c1,PAGE_VIEW,,ann@acme.io,2026-11-01T10:00:00Z,{}\n"
        "c2,bad type,,ann@acme.io,2026-11-01T11:00:00Z,{}\n"
        "c3,EMAIL_OPEN,,not-an-email,,\n"
    )
    for number in range(2):
        with conn.transaction():
            land_csv(
                conn, io.BytesIO(rows.encode()), file_name=f"f{number}.csv", channel="csv", settings=get_settings()
            )
    assert totals(conn)["rejections"] == 4

    class Abort(Exception):
        pass

    with pytest.raises(Abort), conn.transaction():  # an upload rolled back after its rejections were written
        land_csv(conn, io.BytesIO(rows.encode()), file_name="f2.csv", channel="csv", settings=get_settings())
        raise Abort
    assert totals(conn)["rejections"] == 4
    conn.execute("delete from ingest_rejections where file_name = 'f0.csv'")  # a delete counts too
    microbatch(conn)
    assert_serving_tables_exact(conn)
    assert (totals(conn)["rejections"], totals(conn)["events"], totals(conn)["duplicates"]) == (2, 1, 1)


def test_a_truncate_zeroes_what_it_empties(conn):
    deliver(conn)
    with conn.transaction():
        rows = b"event_id,event_type,lead_id,email,timestamp,metadata\nx,bad type,,a@b.io,,{}\n"
        land_csv(conn, io.BytesIO(rows), file_name="x.csv", channel="csv", settings=get_settings())
    assert totals(conn)["rejections"] == 1
    conn.execute("truncate current_scores, clean_events, lead_event_stats, ingest_rejections")
    assert aggregate_mismatches(conn) == {}
    assert set(totals(conn).values()) == {0}
    assert companies(conn) == []
    assert conn.execute("select count(*) from event_type_totals").fetchone()[0] == 0


def test_bucket_writers_running_side_by_side_never_deadlock(database_url, conn):
    """Replay partitions write the same companies and event types from different buckets at once: the
    aggregates' guard row makes them queue, never deadlock, and the counts stay exact."""
    land(
        conn,
        *(
            event(
                f"e{n}",
                ("PAGE_VIEW", "PURCHASE", "EMAIL_OPEN")[n % 3],
                "2026-11-20T10:00:00Z",
                email=f"lead{n}@x{n % 5}.io",
                metadata={"company": f"Co {n % 7}"},
            )
            for n in range(400)
        ),
    )
    microbatch(conn)
    settings = get_settings()
    failures: list[BaseException] = []

    def partition(buckets: tuple[int, ...]) -> None:
        try:
            with psycopg.connect(libpq_url(database_url), autocommit=True) as own:
                for round_number in range(4):
                    scope = Scope(buckets=buckets)
                    dedup_deliveries(own, scope)
                    as_of = NOW + timedelta(days=30 * round_number)
                    decay_scores(own, scope, settings.scoring, settings.tiers, as_of=as_of)
                    refresh_lead_stats(own, scope)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=partition, args=(tuple(range(k, LEAD_BUCKETS, 4)),)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert aggregate_mismatches(conn) == {}  # lead_scores keeps the microbatch's as_of, current_scores moved on
    assert totals(conn)["leads"] == 400


@pytest.fixture
def fresh_database_url(postgres_server_url: str):
    name = f"leadscore_migration_{os.getpid()}_{secrets.token_hex(3)}"
    url = ensure_database(postgres_server_url, name)
    yield url
    drop_database(postgres_server_url, name)


def test_the_migration_backfills_the_serving_table_and_fills_the_aggregates(fresh_database_url):
    config = alembic_config(fresh_database_url)
    command.upgrade(config, "0004")
    with psycopg.connect(libpq_url(fresh_database_url), autocommit=True) as conn:
        conn.execute(
            """insert into lead_scores (lead_key, lead_bucket, email, name, company, event_count, first_event_at,
                                        last_event_at, score_at_last_event, rules_version, scored_seq)
               values ('ann@acme.io', 1, 'ann@acme.io', 'Ann', 'Acme', 2, '2026-11-01', '2026-11-02', 60, 3, 2),
                      ('bob@globex.com', 2, 'bob@globex.com', null, 'Globex', 1, '2026-11-03', '2026-11-03', 300, 3, 3),
                      ('id:7', 3, null, null, null, 1, '2026-11-04', '2026-11-04', 5, 3, 4);
               insert into current_scores (lead_key, lead_bucket, score, tier, as_of)
               values ('ann@acme.io', 1, 55, 'warm', '2026-11-28'), ('bob@globex.com', 2, 300, 'qualified', '2026-11-28'),
                      ('id:7', 3, 5, 'cold', '2026-11-28'),
                      ('gone@x.io', 4, 80, 'warm', '2026-11-28');  -- no scored lead: never served
               insert into clean_events (event_id, seq, lead_key, lead_bucket, event_type, event_time, source,
                                         duplicates, conflicts)
               values ('e1', 1, 'ann@acme.io', 1, 'PAGE_VIEW', '2026-11-01', 'api', 2, 1),
                      ('e2', 2, 'ann@acme.io', 1, 'PURCHASE', '2026-11-02', 'api', 0, 0);
               insert into lead_event_stats values ('ann@acme.io', 1, 'PAGE_VIEW', 1, 5, 1),
                                                   ('ann@acme.io', 1, 'PURCHASE', 1, 100, 0);
               insert into ingest_rejections (file_name, line, raw, reason, channel, received_at)
               values ('f.csv', 2, 'x', 'bad', 'csv', '2026-11-28');"""
        )
        command.upgrade(config, "0005")
        assert aggregate_mismatches(conn) == {}
        assert conn.execute("select count(*) from current_scores where lead_key = 'gone@x.io'").fetchone()[0] == 0
        assert conn.execute(STALE_SERVING_ROWS).fetchone()[0] == 0
        assert totals(conn) == {
            "leads": 3,
            "total_points": 360,
            "cold": 1,
            "warm": 1,
            "hot": 0,
            "qualified": 1,
            "events": 2,
            "duplicates": 2,
            "conflicts": 1,
            "rejections": 1,
        }
        assert companies(conn) == [("Acme", 1, 55), ("Globex", 1, 300)]
        # And back: 0005's downgrade leaves 0004's schema.
        command.downgrade(config, "0004")
        columns = conn.execute(
            "select column_name from information_schema.columns where table_name = 'current_scores' order by 1"
        ).fetchall()
        assert [c for (c,) in columns] == [
            "as_of", "change_id", "lead_bucket", "lead_key", "previous_score", "score", "tier"
        ]  # fmt: skip
