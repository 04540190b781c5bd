"""Shared helpers for pipeline tests: land events through the real validator and landing path."""

from __future__ import annotations

import psycopg

from leadscore_pipeline.ingest.accept import accept_events
from leadscore_pipeline.settings import get_settings
from tests.frozen import NOW

RECEIVED = NOW


def land(conn: psycopg.Connection, *events: dict, channel: str = "api") -> list[str]:
    with conn.transaction():
        return accept_events(conn, list(events), channel=channel, settings=get_settings(), received_at=RECEIVED)


def event(event_id: str, event_type: str, when: str, email: str = "ann@acme.io", **extra) -> dict:
    return {"event_id": event_id, "event_type": event_type, "timestamp": when, "email": email, **extra}


def scores(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute("select lead_key, score_at_last_event from lead_scores order by lead_key").fetchall()
    return dict(rows)


# Each maintained aggregate (migration 0005) beside its recomputation from the base tables, in plain SQL.
SERVING_AGGREGATES = {
    "serving_totals": (
        """select leads, total_points, cold, warm, hot, qualified, events, duplicates, conflicts, rejections
           from serving_totals""",
        """select s.*, e.*, r.* from (
               select count(*), coalesce(sum(score), 0)::bigint, count(*) filter (where tier = 'cold'),
                      count(*) filter (where tier = 'warm'), count(*) filter (where tier = 'hot'),
                      count(*) filter (where tier = 'qualified')
               from current_scores) s,
           (select count(*), coalesce(sum(duplicates), 0)::bigint, coalesce(sum(conflicts), 0)::bigint from clean_events) e,
           (select count(*) from ingest_rejections) r""",
    ),
    "company_totals": (
        'select company, leads, total_score from company_totals order by company collate "C"',
        """select company, count(*), sum(score)::bigint from current_scores where company is not null
           group by company order by company collate "C\"""",
    ),
    "event_type_totals": (
        """select event_type, events, unique_leads, points, conversions from event_type_totals
           order by event_type collate "C\"""",
        """select event_type, sum(events)::bigint, count(*) filter (where events > 0), sum(points)::bigint,
                  sum(conversions)::bigint
           from lead_event_stats group by event_type order by event_type collate "C\"""",
    ),
}
# The serving table's copy of each lead's scored row: what the decay step last wrote must be lead_scores' row.
STALE_SERVING_ROWS = """
    select count(*) from current_scores c full join lead_scores l using (lead_key)
    where (c.lead_bucket, c.email, c.name, c.company, c.score_at_last_event, c.event_count, c.first_event_at,
           c.last_event_at, c.rules_version)
          is distinct from
          (l.lead_bucket, l.email, l.name, l.company, l.score_at_last_event, l.event_count, l.first_event_at,
           l.last_event_at, l.rules_version)
"""


def aggregate_mismatches(conn: psycopg.Connection) -> dict[str, tuple[list[tuple], list[tuple]]]:
    """The aggregates that differ from their recomputation: name -> (maintained, recomputed); {} when exact."""
    found = {}
    for name, (maintained, recomputed) in SERVING_AGGREGATES.items():
        rows, expected = conn.execute(maintained).fetchall(), conn.execute(recomputed).fetchall()
        if rows != expected:
            found[name] = (rows, expected)
    return found


def assert_serving_tables_exact(conn: psycopg.Connection) -> None:
    """Every aggregate equals its recomputation, and current_scores carries each lead's scored row."""
    assert aggregate_mismatches(conn) == {}
    assert conn.execute(STALE_SERVING_ROWS).fetchone()[0] == 0
