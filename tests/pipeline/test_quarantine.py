"""Quarantine: a delivery that a micro-batch step cannot process is set aside; everything else is scored
exactly as if it had never landed, the watermarks reach the end, and a replay agrees."""

from __future__ import annotations

import random
import string

import psycopg
import pytest

from leadscore_pipeline.definitions import defs
from leadscore_pipeline.ingest.validate import MAX_NAME_CHARS
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.partitions import MICROBATCH, MODE_TAG, THROUGH_SEQ_TAG, all_buckets_tags
from leadscore_pipeline.quarantine import is_data_error, run_setting_aside
from leadscore_pipeline.refresh import Scope
from tests.conftest import reset_database
from tests.frozen import NOW
from tests.pipeline.helpers import event, land, scores

# Random letters: a repetitive string compresses and fits an index entry, and would break nothing.
_letters = random.Random(7406)


def random_text(length: int = 20_000) -> str:
    return "".join(_letters.choices(string.ascii_lowercase, k=length))


def land_unvalidated(conn: psycopg.Connection, event_id: str, lead_key: str, when: str, **fields: str) -> int:
    """Insert a delivery straight into raw_deliveries, as a version with a laxer validator landed it."""
    row = {"event_type": "FORM_SUBMISSION", "email": lead_key, "company": None, **fields}
    return conn.execute(
        """insert into raw_deliveries (event_id, event_type, event_time, lead_key, email, company, source,
                                       channel, received_at)
           values (%s, %s, %s, %s, %s, %s, 'api', 'api', %s) returning seq""",
        (event_id, row["event_type"], when, lead_key, row["email"], row["company"], NOW),
    ).fetchone()[0]


def microbatch(conn: psycopg.Connection) -> None:
    run_all_steps(conn, Scope(incremental=True), as_of=NOW)


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every derived table, without landing sequence numbers (a run without the poison numbers differently)."""
    queries = {
        "clean_events": "select event_id, lead_key, event_type, event_time, company, duplicates, conflicts"
        " from clean_events",
        "lead_scores": "select lead_key, email, company, event_count, score_at_last_event, last_event_at"
        " from lead_scores",
        "score_history": "select lead_key, event_id, event_type, event_time, points, decay, change, score_after"
        " from score_history",
        "current_scores": "select lead_key, score, tier from current_scores",
        "daily_event_counts": "select lead_bucket, day, event_type, events from daily_event_counts",
        "lead_event_stats": "select lead_key, event_type, events, points, conversions from lead_event_stats",
    }
    return {name: sorted(conn.execute(sql).fetchall()) for name, sql in queries.items()}


def watermarks(conn: psycopg.Connection) -> set[int]:
    return set(
        conn.execute(
            """select unnest(array[deduped_through, counted_through, scored_through, served_through, stats_through])
               from pipeline_state"""
        ).fetchone()
    )


def deliver(conn: psycopg.Connection, poison: bool) -> dict[str, int]:
    """Good events of several leads with poison among them (when `poison`), over three micro-batches.
    Returns the seqs of the poison deliveries."""
    poisons = {}
    land(
        conn,
        event("a1", "PAGE_VIEW", "2026-11-01T10:00:00Z", metadata={"company": "Acme"}),
        event("b1", "DEMO_REQUEST", "2026-11-01T11:00:00Z", email="bob@globex.com", metadata={"company": "Globex"}),
    )
    if poison:  # an email too long for clean_events' lead index: fails the dedup step
        poisons["long email"] = land_unvalidated(conn, "p-email", f"{random_text()}@x.io", "2026-11-02T00:00:00Z")
    land(conn, event("b2", "PAGE_VIEW", "2026-11-02T10:00:00Z", email="bob@globex.com"))
    if poison:  # ann's company too long for lead_scores' company index: fails the score step
        poisons["long company"] = land_unvalidated(
            conn, "p-co", "ann@acme.io", "2026-11-05T00:00:00Z", company=random_text()
        )
    land(
        conn,
        # The poison's event again, fixed: it becomes the event once the poison is set aside.
        event("p-co", "DEMO_REQUEST", "2026-11-05T00:00:00Z", metadata={"company": "Acme Fixed"}),
        event("a2", "PURCHASE", "2026-11-03T00:00:00Z", metadata={"company": "Acme Corp"}),
    )
    microbatch(conn)

    land(
        conn,
        event("a3", "EMAIL_OPEN", "2026-11-06T00:00:00Z"),
        event("c1", "PURCHASE", "2026-11-04T00:00:00Z", email="cy@initech.com"),
    )
    if poison:  # last in its batch
        poisons["long email, last"] = land_unvalidated(conn, "p-email-2", f"{random_text()}@y.io", "2026-11-07")
    microbatch(conn)

    if poison:  # first in its batch; bob's later event has no company, so this one would be his
        poisons["long company, first"] = land_unvalidated(
            conn, "p-co-2", "bob@globex.com", "2026-11-08T00:00:00Z", event_type="PURCHASE", company=random_text()
        )
    land(
        conn,
        event("b3", "EMAIL_OPEN", "2026-11-09T00:00:00Z", email="bob@globex.com"),
        event("a4", "REFUND", "2026-11-10T00:00:00Z"),
    )
    microbatch(conn)
    return poisons


def test_poison_deliveries_are_set_aside_and_everything_else_is_scored_exactly(database_url, conn):
    reset_database(database_url)
    deliver(conn, poison=False)
    clean_run = snapshot(conn)

    reset_database(database_url)
    poisons = deliver(conn, poison=True)
    quarantined = {
        seq: (step, reason)
        for seq, step, reason in conn.execute("select seq, step, reason from quarantined_deliveries").fetchall()
    }
    assert set(quarantined) == set(poisons.values())
    for name, table, step in [
        ("long email", "clean_events", "dedup"),
        ("long email, last", "clean_events", "dedup"),
        ("long company", "lead_scores", "score"),
        ("long company, first", "lead_scores", "score"),
    ]:
        found_step, reason = quarantined[poisons[name]]
        assert found_step == step, name
        assert "index row" in reason and f"COPY {table}" in reason and len(reason) <= 1000, reason

    assert snapshot(conn) == clean_run
    landed = conn.execute("select max(seq) from raw_deliveries").fetchone()[0]
    assert watermarks(conn) == {landed}

    run_all_steps(conn, Scope(), as_of=NOW)  # a replay skips the quarantined deliveries too
    assert snapshot(conn) == clean_run


def test_a_long_event_type_passes_the_analytics_steps(conn):
    # Keys that cannot overflow (migration 0004): an event the scoring accepts never stalls the analytics.
    event_type = random_text(3_000).upper()
    lead_key = f"{random_text(1_500)}@x.io"  # with the type, too long for a (lead_key, event_type) key
    land_unvalidated(conn, "long-type", lead_key, "2026-11-01T00:00:00Z", event_type=event_type)
    microbatch(conn)
    assert conn.execute("select count(*) from quarantined_deliveries").fetchone()[0] == 0
    assert conn.execute("select events from daily_event_counts").fetchall() == [(1,)]
    assert conn.execute("select events from lead_event_stats where lead_key = %s", (lead_key,)).fetchall() == [(1,)]


def test_a_long_legacy_name_is_served_cut_to_the_field_limit(conn):
    # lead_scores does not index names, so scoring passes; the serving table's sort index must hold it too.
    land_unvalidated(conn, "long-name-1", "ann@acme.io", "2026-11-01T00:00:00Z")
    name = random_text(20_000)
    conn.execute(
        """insert into raw_deliveries (event_id, event_type, event_time, lead_key, email, name, source, channel,
                                       received_at)
           values ('long-name-2', 'PAGE_VIEW', '2026-11-02T00:00:00Z', 'ann@acme.io', 'ann@acme.io', %s, 'api',
                   'api', %s)""",
        (name, NOW),
    )
    microbatch(conn)
    assert conn.execute("select count(*) from quarantined_deliveries").fetchone()[0] == 0
    served = conn.execute("select name, score from current_scores where lead_key = 'ann@acme.io'").fetchone()
    assert served == (name[:MAX_NAME_CHARS], 25)  # FORM_SUBMISSION 20 + PAGE_VIEW 5


def test_only_errors_the_data_causes_count_as_data_errors(conn):
    conn.execute("create temp table keyed (k text primary key)")
    conn.execute("insert into keyed values ('a')")
    caused_by_data = [
        ("insert into keyed values (%s)", (random_text(),)),  # index row too large
        ("insert into keyed values ('a')", None),  # unique violation
        ("select %s::text", ("nul \x00 inside",)),  # psycopg refuses NUL itself
        ("select 'x'::integer", None),  # invalid text representation
    ]
    for sql, params in caused_by_data:
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(sql, params)
        assert is_data_error(raised.value), sql

    with pytest.raises(psycopg.Error) as refused:
        psycopg.connect("postgresql://postgres@127.0.0.1:1/none", connect_timeout=2)
    assert not is_data_error(refused.value)
    conn.execute("set statement_timeout = 10")
    with pytest.raises(psycopg.Error) as cancelled:
        conn.execute("select pg_sleep(1)")
    assert not is_data_error(cancelled.value)


class FakeStep:
    """A step over seqs 1..through whose runs fail on data while their range holds a poison seq."""

    def __init__(self, poison: set[int]):
        self.poison, self.done, self.runs = poison, 0, []

    def run(self, upto: int) -> int:
        self.runs.append(upto)
        if any(self.done < seq <= upto for seq in self.poison):
            raise psycopg.errors.ProgramLimitExceeded("index row requires 20016 bytes, maximum size is 8191")
        self.done = max(self.done, upto)
        return upto

    def withdraw(self, seq: int) -> None:
        self.poison.discard(seq)


def test_a_failing_range_is_split_in_order_down_to_the_poison(conn):
    step = FakeStep({5, 6, 13})
    results, quarantined = run_setting_aside(conn, "fake", step.run, 0, 16, step.withdraw)
    assert quarantined == [5, 6, 13]
    assert step.done == 16 and results[-1] == 16
    assert results == sorted(results)  # every part runs after the one before it

    healthy = FakeStep(set())
    assert run_setting_aside(conn, "fake", healthy.run, 0, 16) == ([16], [])
    assert healthy.runs == [16]  # without a failure, one run: splitting costs nothing


def test_an_error_that_is_not_the_datas_fails_the_step_and_sets_nothing_aside(conn):
    def lost_connection(upto: int) -> int:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    with pytest.raises(psycopg.OperationalError):
        run_setting_aside(conn, "fake", lost_connection, 0, 16)
    assert conn.execute("select count(*) from quarantined_deliveries").fetchone()[0] == 0


def test_a_microbatch_run_with_a_poison_delivery_succeeds_and_reports_it(conn, instance):
    land(conn, event("e1", "PURCHASE", "2026-11-01T10:00:00Z"))
    land_unvalidated(conn, "bad", f"{random_text()}@x.io", "2026-11-02T00:00:00Z")
    land(conn, event("e2", "DEMO_REQUEST", "2026-11-03T10:00:00Z"))
    tags = {**all_buckets_tags(), MODE_TAG: MICROBATCH, THROUGH_SEQ_TAG: "3"}
    result = defs.resolve_job_def("score_deliveries").execute_in_process(instance=instance, tags=tags)
    assert result.success
    assert scores(conn) == {"ann@acme.io": 150}
    dedup = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == "clean_events"]
    assert {m.materialization.metadata["quarantined"].value for m in dedup} == {1}  # one per lead bucket
