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
