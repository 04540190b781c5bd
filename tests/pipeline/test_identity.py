"""Identity stitching through the pipeline steps (SPEC §3): merges and un-merges rescore exactly, in event time."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.ingest.csv_batches import land_csv
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.preview import draft_rules_frame, preview_rules
from leadscore_pipeline.refresh import Scope
from leadscore_pipeline.sensors import new_deliveries_sensor
from leadscore_pipeline.settings import get_settings
from tests.frozen import NOW
from tests.pipeline.helpers import assert_serving_tables_exact, event, land, scores
from tests.settings_env import settings_env

AS_OF = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def microbatch(conn) -> None:
    run_all_steps(conn, Scope(incremental=True), as_of=AS_OF)


def by_id(event_id: str, event_type: str, when: str, lead_id: str) -> dict:
    return {"event_id": event_id, "event_type": event_type, "timestamp": when, "lead_id": lead_id}


def served(conn) -> dict[str, int]:
    return dict(conn.execute("select lead_key, score from current_scores").fetchall())


def test_an_id_known_first_joins_the_email_it_is_later_seen_with_and_the_history_says_so(conn):
    land(conn, by_id("c1", "FORM_SUBMISSION", "2026-11-01T10:00:00Z", "crm-555"))  # 20 points
    microbatch(conn)
    assert served(conn) == {"id:crm-555": 20}

    land(conn, event("c2", "DEMO_REQUEST", "2026-11-02T10:00:00Z", email="ida@identco.com", lead_id="crm-555"))
    microbatch(conn)
    # One lead, scored from the union as if it had always been one: 20 + 50.
    assert scores(conn) == {"ida@identco.com": 70}
    assert served(conn) == {"ida@identco.com": 70}
    history = conn.execute(
        "select event_id, identity_key, joins, score_after from score_history order by event_time"
    ).fetchall()
    assert history == [("c1", "id:crm-555", None, 20), ("c2", None, "id:crm-555", 70)]
    assert conn.execute("select lead_key from lead_event_stats group by lead_key").fetchall() == [("ida@identco.com",)]
    assert_serving_tables_exact(conn)

    # A late id-only event, earlier than everything: it counts for the joined lead, in event-time order.
    land(conn, by_id("c0", "PAGE_VIEW", "2026-10-31T10:00:00Z", "crm-555"))
    microbatch(conn)
    assert scores(conn) == {"ida@identco.com": 75}


def test_an_id_that_turns_ambiguous_splits_off_again_and_replay_agrees(conn):
    land(
        conn,
        by_id("c1", "PURCHASE", "2026-11-01T10:00:00Z", "crm-9"),
        event("c2", "EMAIL_OPEN", "2026-11-02T10:00:00Z", email="a@x.io", lead_id="crm-9"),
    )
    microbatch(conn)
    assert scores(conn) == {"a@x.io": 110}

    # A second email for the same id: past the merge protection (1), the id joins nobody.
    land(conn, event("c3", "EMAIL_OPEN", "2026-11-03T10:00:00Z", email="b@x.io", lead_id="crm-9"))
    microbatch(conn)
    assert scores(conn) == {"a@x.io": 10, "b@x.io": 10, "id:crm-9": 100}
    assert served(conn) == {"a@x.io": 10, "b@x.io": 10, "id:crm-9": 100}
    assert conn.execute("select count(*) from lead_aliases").fetchone() == (0,)
    assert_serving_tables_exact(conn)

    incremental = conn.execute("select * from score_history order by lead_key, event_time").fetchall()
    run_all_steps(conn, Scope(), as_of=AS_OF)
    assert conn.execute("select * from score_history order by lead_key, event_time").fetchall() == incremental


def test_a_merge_found_by_another_bucket_groups_rebuild_is_rescored_by_the_next_microbatch(conn):
    land(
        conn,
        by_id("c1", "PURCHASE", "2026-11-01T10:00:00Z", "crm-7"),
        event("c2", "EMAIL_OPEN", "2026-11-02T10:00:00Z", email="a@x.io", lead_id="crm-7"),
    )
    microbatch(conn)
    conn.execute("truncate identity_links, lead_aliases, clean_events")
    conn.execute("update pipeline_state set identity_max_emails = null")
    id_bucket, email_bucket = (
        conn.execute("select mod(hashtext(%s) & 2147483647, %s)", (key, get_settings().lead_buckets)).fetchone()[0]
        for key in ("id:crm-7", "a@x.io")
    )
    if id_bucket == email_bucket:
        raise AssertionError("the test needs the two keys in different buckets")
    # The email's group first: its score reads the id's partition, still empty, and leaves the lead to rescore.
    run_all_steps(conn, Scope(buckets=(email_bucket,)), as_of=AS_OF)
    run_all_steps(conn, Scope(buckets=(id_bucket,)), as_of=AS_OF)
    assert conn.execute("select lead_key from identity_rescores").fetchall() == [("a@x.io",)]
    microbatch(conn)
    assert scores(conn) == {"a@x.io": 110}
    assert conn.execute("select count(*) from identity_rescores").fetchone() == (0,)


def original_sample_shape() -> bytes:
    """The original system's sample_batch.csv shape: every lead_id with 8 different emails, and emails seen with
    several lead_ids. Joining every email to every id would make one lead of all of them."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["event_id", "event_type", "lead_id", "email", "timestamp", "metadata"])
    number = 0
    for lead in range(20):
        for k in range(8):
            email = f"person{(lead * 3 + k) % 40}@example.com"  # overlapping: an email meets several ids
            when = (NOW - timedelta(days=number % 20)).strftime("%Y-%m-%dT%H:%M:%SZ")
            writer.writerow([f"evt-{number:05d}", "PAGE_VIEW", f"lead-{lead}", email, when, json.dumps({})])
            number += 1
    for lead in range(20):  # and events known by the id alone
        writer.writerow([f"evt-{number:05d}", "DEMO_REQUEST", f"lead-{lead}", "", "2026-11-20T10:00:00Z", "{}"])
        number += 1
    return text.getvalue().encode()


def test_the_original_sample_shape_collapses_nothing(conn):
    with conn.transaction():
        result = land_csv(
            conn, io.BytesIO(original_sample_shape()), file_name="sample.csv", channel="csv", settings=get_settings()
        )
    assert result.rejected == 0
    microbatch(conn)
    # Each email is its own lead, and each ambiguous id keeps its id-only events on its own `id:` lead.
    leads = scores(conn)
    assert len([key for key in leads if "@" in key]) == 40
    assert sorted(key for key in leads if key.startswith("id:")) == sorted(f"id:lead-{n}" for n in range(20))
    assert conn.execute("select count(*) from lead_aliases").fetchone() == (0,)
    assert max(leads.values()) < 100  # nobody collects the whole file's points


def test_the_sensor_starts_a_microbatch_for_queued_leads_and_for_a_new_merge_protection(conn, tick):
    land(
        conn,
        by_id("c1", "PURCHASE", "2026-11-01T10:00:00Z", "crm-7"),
        event("c2", "EMAIL_OPEN", "2026-11-02T10:00:00Z", email="a@x.io", lead_id="crm-7"),
        event("c3", "EMAIL_OPEN", "2026-11-03T10:00:00Z", email="b@x.io", lead_id="crm-7"),
    )
    microbatch(conn)
    assert not tick(new_deliveries_sensor).run_requests
    # Allowed two emails per id, crm-7 joins a@x.io and b@x.io: nothing new landed, yet a micro-batch is due.
    with settings_env(LEADSCORE_MAX_EMAILS_PER_ID="2"):
        [request] = tick(new_deliveries_sensor).run_requests
        assert request.run_key.startswith("identity-")
        microbatch(conn)
        assert scores(conn) == {"a@x.io": 120}
        assert not tick(new_deliveries_sensor).run_requests
    # Back to one: the id is ambiguous again, and the lead splits as if it had never been joined.
    [request] = tick(new_deliveries_sensor).run_requests
    microbatch(conn)
    assert scores(conn) == {"a@x.io": 10, "b@x.io": 10, "id:crm-7": 100}
    assert served(conn) == {"a@x.io": 10, "b@x.io": 10, "id:crm-7": 100}
    assert_serving_tables_exact(conn)


def test_a_rules_preview_folds_a_joined_lead_from_all_its_keys(conn, db):
    land(
        conn,
        by_id("c1", "FORM_SUBMISSION", "2026-11-01T10:00:00Z", "crm-555"),
        event("c2", "DEMO_REQUEST", "2026-11-02T10:00:00Z", email="ida@identco.com", lead_id="crm-555"),
    )
    microbatch(conn)
    draft = draft_rules_frame([{"event_type": "FORM_SUBMISSION", "points": 200, "active": True}])
    settings = get_settings()
    preview = preview_rules(libpq_url(db), draft, AS_OF, settings.scoring, settings.tiers)
    # The id-only event counts for the lead it joined: 200 (the draft drops DEMO_REQUEST's rule).
    assert [(row["lead_key"], row["score_after"]) for row in preview["top"]] == [("ida@identco.com", 200)]
