"""The refresh steps against Postgres: micro-batches, late events, duplicates, replay equality."""

from __future__ import annotations

from datetime import UTC, datetime

from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope, decay_scores, score_buckets
from leadscore_pipeline.replay import SCORING_ASSETS
from leadscore_pipeline.settings import get_settings
from tests.pipeline.helpers import event, land, scores

AS_OF = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def microbatch(conn) -> None:
    run_all_steps(conn, Scope(incremental=True), as_of=AS_OF)


def replay(conn) -> None:
    run_all_steps(conn, Scope(), as_of=AS_OF)


def table(conn, sql: str) -> list[tuple]:
    return conn.execute(sql).fetchall()


def test_microbatch_scores_landed_events(conn):
    land(conn, event("e1", "PAGE_VIEW", "2026-11-01T10:00:00Z"), event("e2", "DEMO_REQUEST", "2026-11-02T10:00:00Z"))
    microbatch(conn)
    assert scores(conn) == {"ann@acme.io": 55}
    assert table(conn, "select score, tier from current_scores") == [(55, "warm")]
    assert table(conn, "select deduped_through, scored_through from pipeline_state") == [(2, 2)]


def test_late_event_gives_the_in_order_result(conn):
    # 950 then +100 then -50 = 950 in order; the late PURCHASE arrives last but sorts first by time.
    conn.execute("insert into rules values ('BIG', 950, true) on conflict (event_type) do update set points = 950")
    conn.commit()
    land(conn, event("a", "BIG", "2026-11-01T00:00:00Z"), event("c", "REFUND", "2026-11-03T00:00:00Z"))
    microbatch(conn)
    assert scores(conn) == {"ann@acme.io": 900}
    land(conn, event("b", "PURCHASE", "2026-11-02T00:00:00Z"))
    microbatch(conn)
    assert scores(conn) == {"ann@acme.io": 950}
    history = table(conn, "select event_id, change, score_after from score_history order by event_time")
    assert history == [("a", 950, 950), ("b", 50, 1000), ("c", -50, 950)]


def test_duplicates_count_once_and_conflicts_are_counted(conn):
    land(conn, event("e1", "PURCHASE", "2026-11-01T00:00:00Z"))
    microbatch(conn)
    land(
        conn,
        event("e1", "PURCHASE", "2026-11-01T00:00:00Z"),  # identical redelivery
        event("e1", "REFUND", "2026-11-01T00:00:00Z"),  # same id, other content: a conflict, ignored
    )
    microbatch(conn)
    assert scores(conn) == {"ann@acme.io": 100}
    assert table(conn, "select event_id, duplicates, conflicts from clean_events") == [("e1", 2, 1)]


def test_untouched_leads_are_not_rescored(conn):
    land(conn, event("e1", "PAGE_VIEW", "2026-11-01T00:00:00Z", email="a@x.io"))
    microbatch(conn)
    before = table(conn, "select scored_seq from lead_scores where lead_key = 'a@x.io'")
    land(conn, event("e2", "PAGE_VIEW", "2026-11-01T00:00:00Z", email="b@x.io"))
    microbatch(conn)
    assert table(conn, "select scored_seq from lead_scores where lead_key = 'a@x.io'") == before
    assert scores(conn) == {"a@x.io": 5, "b@x.io": 5}


def test_replay_equals_microbatches(conn):
    for i in range(30):
        land(
            conn,
            event(f"e{i}", ["PAGE_VIEW", "PURCHASE", "REFUND"][i % 3], f"2026-{1 + i % 11:02d}-{1 + i % 27:02d}T00:00:00Z",
                  email=f"lead{i % 7}@x.io"),
            event(f"e{(i * 7) % 30}", "EMAIL_OPEN", "2026-06-01T00:00:00Z", email=f"lead{i % 5}@x.io"),
        )  # fmt: skip
        if i % 4 == 0:
            microbatch(conn)
    microbatch(conn)
    tables = SCORING_ASSETS
    columns = {
        "daily_event_counts": "day, event_type, lead_bucket, events",
        "lead_event_stats": "lead_key, event_type, events, points, conversions",
        "clean_events": "event_id, seq, lead_key, event_type, event_time, duplicates, conflicts",
        "lead_scores": "lead_key, email, name, company, event_count, last_event_at, score_at_last_event",
        "score_history": "lead_key, event_id, points, decay, change, score_after",
        "current_scores": "lead_key, score, tier",
    }
    before = {t: sorted(table(conn, f"select {columns[t]} from {t}")) for t in tables}
    replay(conn)
    after = {t: sorted(table(conn, f"select {columns[t]} from {t}")) for t in tables}
    assert after == before
    assert len(before["clean_events"]) == 30


def test_replay_ahead_of_the_microbatches_counts_each_delivery_once(conn):
    land(conn, event("e1", "PURCHASE", "2026-11-01T00:00:00Z"))
    microbatch(conn)
    land(conn, event("e1", "REFUND", "2026-11-01T00:00:00Z"), event("e2", "PAGE_VIEW", "2026-11-02T00:00:00Z"))
    replay(conn)  # sees the new deliveries before any micro-batch has
    assert scores(conn) == {"ann@acme.io": 105}
    microbatch(conn)
    assert table(conn, "select event_id, duplicates, conflicts from clean_events order by 1") == [
        ("e1", 1, 1),
        ("e2", 0, 0),
    ]
    assert scores(conn) == {"ann@acme.io": 105}
    replay(conn)
    assert table(conn, "select event_id, duplicates, conflicts from clean_events order by 1") == [
        ("e1", 1, 1),
        ("e2", 0, 0),
    ]


def test_a_rebuild_rewrites_only_the_served_rows_that_change(conn):
    land(
        conn,
        event("e1", "PURCHASE", "2026-11-20T10:00:00Z"),
        event("e2", "DEMO_REQUEST", "2026-11-20T10:00:00Z", email="bob@globex.com"),
    )
    microbatch(conn)
    served = "select lead_key, score, change_id, as_of from current_scores order by lead_key"
    before = table(conn, served)

    replay(conn)  # nothing changed: no row rewritten, change ids and as_of kept
    assert table(conn, served) == before

    conn.execute("update rules set points = 60 where event_type = 'DEMO_REQUEST'")
    conn.execute("update pipeline_state set rules_version = rules_version + 1")
    settings = get_settings()
    score_buckets(conn, Scope(), settings.scoring)
    result = decay_scores(conn, Scope(), settings.scoring, settings.tiers, as_of=AS_OF)
    after = table(conn, served)
    assert result.details == {"leads": 2, "rows_written": 2}  # the rules version is part of every served row
    assert [(key, score) for key, score, *_ in after] == [("ann@acme.io", 100), ("bob@globex.com", 60)]
    assert all(new[2] > old[2] for new, old in zip(after, before, strict=True))

    # the next daily decay, a day later: inside the grace period, so nothing changes and nothing is written
    result = decay_scores(conn, Scope(), settings.scoring, settings.tiers, as_of=AS_OF.replace(day=29))
    assert result.details == {"leads": 2, "rows_written": 0} and table(conn, served) == after
