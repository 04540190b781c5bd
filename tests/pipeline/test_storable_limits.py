"""Values at the field limits are stored and scored by every pipeline step; a dropped file with NUL rows lands
its good rows instead of failing for good."""

from __future__ import annotations

import random

from leadscore_pipeline.dropzone import land_dropped_file
from leadscore_pipeline.ingest.validate import (
    MAX_COMPANY_CHARS,
    MAX_EMAIL_CHARS,
    MAX_EVENT_TYPE_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_SOURCE_CHARS,
)
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope
from leadscore_pipeline.settings import get_settings
from tests.pipeline.helpers import RECEIVED, event, land

RNG = random.Random(2712)


def random_wide(count: int) -> str:
    """Random 4-byte UTF-8 characters (CJK Extension B): the most bytes per character, and no compression."""
    return "".join(chr(RNG.randrange(0x20000, 0x2A6D0)) for _ in range(count))


def test_values_at_every_limit_are_stored_and_scored_by_every_step(conn):
    email = random_wide(MAX_EMAIL_CHARS - len("@x.io")) + "@x.io"
    name, company = random_wide(MAX_NAME_CHARS), random_wide(MAX_COMPANY_CHARS)
    event_id, lead_id, source = random_wide(MAX_ID_CHARS), random_wide(MAX_ID_CHARS), random_wide(MAX_SOURCE_CHARS)
    odd_type = "T" + "_" * (MAX_EVENT_TYPE_CHARS - 1)
    given = {"lead_id": lead_id, "source": source, "metadata": {"name": name, "company": company}}
    land(
        conn,
        event(event_id, "PURCHASE", "2026-11-01T10:00:00Z", email=email, **given),
        event("e2", odd_type, "2026-11-02T10:00:00Z", email=email),
        {"event_id": "e3", "event_type": "DEMO_REQUEST", "lead_id": random_wide(MAX_ID_CHARS)},
    )
    assert len(company.encode()) == 4 * MAX_COMPANY_CHARS  # 1 KB in the company index, uncompressible

    run_all_steps(conn, Scope(incremental=True), as_of=RECEIVED)

    leads = conn.execute("select lead_key, name, company, score_at_last_event from lead_scores order by 1").fetchall()
    assert leads[1] == (email, name, company, 100)
    assert leads[0][0].startswith("id:") and leads[0][3] == 50
    history = conn.execute("select event_id, event_type from score_history where lead_key = %s order by 1", (email,))
    assert sorted(history.fetchall()) == sorted([(event_id, "PURCHASE"), ("e2", odd_type)])
    assert conn.execute("select count(*) from current_scores").fetchone()[0] == 2


def test_a_dropped_file_with_nul_rows_lands_the_good_rows_and_moves_to_processed(conn, tmp_path):
    (tmp_path / "day.csv").write_bytes(
        b"event_id,event_type,lead_id,email,timestamp,metadata\n"
        b"d1,PAGE_VIEW,,ann@acme.io,2026-11-01T10:00:00Z,{}\n"
        b"d2,PAGE_VIEW,,ann@acme.io,2026-11-01T10:00:00Z,\x00\n"
        b"d3,PAGE_VIEW,,bob@globex.com,2026-11-01T10:00:00Z,{}\n"
    )

    outcome = land_dropped_file(conn, tmp_path / "day.csv", get_settings())

    assert (outcome.outcome, outcome.accepted, outcome.rejected) == ("landed", 2, 1)
    assert (tmp_path / "processed" / "day.csv").exists()
    assert conn.execute("select file_name, line, raw from ingest_rejections").fetchall() == [
        ("day.csv", 3, "d2,PAGE_VIEW,,ann@acme.io,2026-11-01T10:00:00Z,\ufffd")
    ]
