"""Exports: CSV and JSON that round-trip awkward values, keep their order, and stream in chunks."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime

import pytest

from api.reads import spreadsheet_safe
from api.routes.exports import APPLICATION_NAME
from leadscore_pipeline.refresh import Scope, dedup_deliveries
from tests.api.test_read import score_all
from tests.pipeline.helpers import event, land

LEAD_COLUMNS = [
    "lead_key", "email", "name", "company", "score", "tier",
    "score_at_last_event", "event_count", "first_event_at", "last_event_at",
]  # fmt: skip
EVENT_COLUMNS = [
    "event_id", "lead_key", "event_type", "event_time", "source",
    "points", "decay", "change", "score_after", "duplicates", "conflicts",
]  # fmt: skip
TIMESTAMPS = {"first_event_at", "last_event_at", "event_time"}
NUMBERS = {"score", "score_at_last_event", "event_count", "points", "decay", "change", "score_after", "duplicates",
           "conflicts"}  # fmt: skip

# What each export must hold, read straight from its source in the export's order.
SOURCES = {
    "leads": f"select {', '.join(LEAD_COLUMNS)} from leaderboard order by score desc, lead_key",
    "events": """select e.event_id, e.lead_key, e.event_type, e.event_time, e.source,
                        h.points, h.decay, h.change, h.score_after, e.duplicates, e.conflicts
                 from clean_events e left join score_history h using (lead_key, event_time, event_id)
                 order by e.lead_key, e.event_time, e.event_id""",
}
COUNTS = {"leads": "select count(*) from leaderboard", "events": "select count(*) from clean_events"}
HEADERS = {"leads": LEAD_COLUMNS, "events": EVENT_COLUMNS}

AWKWARD = {
    "ann@acme.io": ("Smith, Ann", 'Acme "Rockets", Inc.'),
    "bob@globex.com": ("Bob\nNewline", "Globex\r\nLine, Two"),
    "cat@initech.io": ("Zoë Ørsted ✓", "株式会社 Initech"),
    "dee@acme.io": ('"Dee"', "Acme,"),
}


def awkward_event(event_id: str, event_type: str, when: str, lead_key: str) -> dict:
    name, company = AWKWARD[lead_key]
    return event(event_id, event_type, when, email=lead_key, name=name, company=company)


@pytest.fixture
def awkward(conn):
    land(
        conn,
        awkward_event("a0", "PURCHASE", "2026-11-20T10:00:00Z", "ann@acme.io"),
        awkward_event("a1", "DEMO_REQUEST", "2026-11-21T10:00:00Z", "ann@acme.io"),
        awkward_event("b0", "PURCHASE", "2026-11-20T10:00:00Z", "bob@globex.com"),
        awkward_event("b1", "DEMO_REQUEST", "2026-11-21T10:00:00.25Z", "bob@globex.com"),
        awkward_event("c0", "PURCHASE", "2026-11-20T10:00:00Z", "cat@initech.io"),
        awkward_event("d0", "PURCHASE", "2026-11-20T10:00:00Z", "dee@acme.io"),
        event("e0", "PAGE_VIEW", "2026-11-22T10:00:00Z", email=None, lead_id="crm-1"),
    )
    # A repeat delivery and a conflicting one, so the counters are not all zero.
    land(conn, awkward_event("a0", "PURCHASE", "2026-11-20T10:00:00Z", "ann@acme.io"))
    land(conn, event("b0", "PAGE_VIEW", "2026-11-20T10:00:00Z", email="bob@globex.com"))
    score_all(conn)
    return conn


def parse_csv(body: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.reader(io.StringIO(body, newline=""))
    header = next(reader)
    return header, [dict(zip(header, row, strict=True)) for row in reader]


def typed(row: dict[str, str]) -> dict[str, object]:
    """A CSV row as the database holds it: empty is null, numbers and timestamps parsed."""

    def value(column: str, text: str) -> object:
        if text == "":
            return None
        if column in TIMESTAMPS:
            assert text.endswith("Z"), text
            return datetime.fromisoformat(text)
        return int(text) if column in NUMBERS else text

    return {column: value(column, text) for column, text in row.items()}


def stored(conn, export: str) -> list[dict[str, object]]:
    cursor = conn.execute(SOURCES[export])
    columns = [column.name for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor]


@pytest.mark.parametrize("export", ["leads", "events"])
def test_csv_round_trips_awkward_values(client, awkward, export):
    response = client.get(f"/api/export/{export}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="{export}.csv"'
    header, rows = parse_csv(response.content.decode("utf-8"))
    assert header == HEADERS[export]
    assert [typed(row) for row in rows] == stored(awkward, export)
    assert len(rows) == awkward.execute(COUNTS[export]).fetchone()[0]


def test_awkward_values_survive_into_the_leads_export(client, awkward):
    # Guards the round trip above against an ingest path that quietly simplified the names.
    _, rows = parse_csv(client.get("/api/export/leads").text)
    profiles = {row["lead_key"]: (row["name"], row["company"]) for row in rows}
    assert {key: profiles[key] for key in AWKWARD} == AWKWARD
    assert profiles["id:crm-1"] == ("", "")


@pytest.mark.parametrize("export", ["leads", "events"])
def test_json_equals_csv(client, awkward, export):
    response = client.get(f"/api/export/{export}", params={"format": "json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == f'attachment; filename="{export}.json"'
    items = response.json()
    assert all(list(item) == HEADERS[export] for item in items)
    _, rows = parse_csv(client.get(f"/api/export/{export}", params={"format": "csv"}).text)
    assert [{k: "" if v is None else str(v) for k, v in item.items()} for item in items] == rows
    assert isinstance(items[0]["score" if export == "leads" else "duplicates"], int)


def test_leads_are_ordered_by_score_then_lead_key(client, awkward):
    rows = client.get("/api/export/leads", params={"format": "json"}).json()
    order = [(-row["score"], row["lead_key"]) for row in rows]
    assert order == sorted(order) and len({row["score"] for row in rows}) < len(rows)  # includes a tie


def test_events_are_ordered_by_lead_then_time_and_count_repeats(client, awkward):
    rows = client.get("/api/export/events", params={"format": "json"}).json()
    order = [(row["lead_key"], datetime.fromisoformat(row["event_time"]), row["event_id"]) for row in rows]
    assert order == sorted(order)
    by_id = {row["event_id"]: row for row in rows}
    assert by_id["b1"]["event_time"] == "2026-11-21T10:00:00.25Z"
    assert (by_id["a0"]["duplicates"], by_id["a0"]["conflicts"]) == (1, 0)
    assert (by_id["b0"]["duplicates"], by_id["b0"]["conflicts"]) == (1, 1)  # a conflict is a duplicate too
    assert (by_id["a1"]["points"], by_id["a1"]["score_after"]) == (50, 150)


def test_an_unscored_event_has_empty_scoring_columns(client, awkward):
    land(awkward, event("late", "PAGE_VIEW", "2026-11-23T10:00:00Z", email="ann@acme.io"))
    dedup_deliveries(awkward, Scope(incremental=True))  # clean, but not yet scored
    _, rows = parse_csv(client.get("/api/export/events").text)
    late = next(row for row in rows if row["event_id"] == "late")
    assert [late[c] for c in ("points", "decay", "change", "score_after")] == ["", "", "", ""]
    assert (late["lead_key"], late["event_type"], late["duplicates"]) == ("ann@acme.io", "PAGE_VIEW", "0")
    items = client.get("/api/export/events", params={"format": "json"}).json()
    assert next(item for item in items if item["event_id"] == "late")["score_after"] is None


@pytest.mark.parametrize("export", ["leads", "events"])
def test_unknown_format_is_422_naming_the_field(client, db, export):
    response = client.get(f"/api/export/{export}", params={"format": "xml"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "query.format"


@pytest.mark.parametrize("export", ["leads", "events"])
def test_empty_exports_are_a_header_or_an_empty_array(client, db, export):
    assert client.get(f"/api/export/{export}").text.splitlines() == [",".join(HEADERS[export])]
    assert client.get(f"/api/export/{export}", params={"format": "json"}).json() == []


LARGE = 20_000


@pytest.fixture
def many_events(conn):
    """20,000 clean events, every other one scored, written straight into the tables in two statements."""
    conn.execute(
        """insert into clean_events (event_id, seq, lead_key, lead_bucket, event_type, event_time, source)
           select 'ev' || i, i, 'lead' || mod(i, 500) || '@bulk.io', mod(i, 16), 'PAGE_VIEW',
                  timestamptz '2026-11-01 00:00:00+00' + i * interval '1 second', 'api'
           from generate_series(1, %s) as i""",
        (LARGE,),
    )
    conn.execute(
        """insert into score_history (lead_key, lead_bucket, event_time, event_id, event_type,
                                      points, decay, change, score_after)
           select lead_key, lead_bucket, event_time, event_id, event_type, 5, 0, 5, seq
           from clean_events where mod(seq, 2) = 0"""
    )
    return conn


@pytest.mark.parametrize("export_format", ["csv", "json"])
def test_a_large_export_streams_in_chunks(client, many_events, export_format):
    chunks = []
    with client.stream("GET", "/api/export/events", params={"format": export_format}) as response:
        assert response.status_code == 200
        chunks.extend(response.iter_bytes())
    assert len(chunks) > 1
    body = b"".join(chunks).decode("utf-8")
    rows = parse_csv(body)[1] if export_format == "csv" else json.loads(body)
    assert len(rows) == LARGE == many_events.execute(COUNTS["events"]).fetchone()[0]
    assert sum(1 for row in rows if row["score_after"] not in ("", None)) == LARGE // 2


def _export_connections(conn) -> int:
    query = "select count(*) from pg_stat_activity where application_name = %s and datname = current_database()"
    return conn.execute(query, (APPLICATION_NAME,)).fetchone()[0]


@pytest.mark.parametrize("export_format", ["csv", "json"])
def test_a_client_hanging_up_early_frees_the_connection(client, many_events, export_format):
    with client.stream("GET", "/api/export/events", params={"format": export_format}) as response:
        first = next(response.iter_bytes())
        assert first and _export_connections(many_events) == 1
    deadline = time.monotonic() + 5
    while _export_connections(many_events) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _export_connections(many_events) == 0


def test_openapi_documents_both_media_types(client):
    operation = client.get("/openapi.json").json()["paths"]["/api/export/leads"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"text/csv", "application/json"}


# OWASP CSV injection: what anyone who can send an event puts in the text fields of an export.
FORMULAS = {
    "name": '=HYPERLINK("http://evil.example/x","click")',
    "company": "+cmd|' /C calc'!A0",
    "source": "@SUM(1+1)*cmd|' /C calc'!A0",
}


@pytest.fixture
def formulas(conn):
    land(
        conn,
        event("f1", "PURCHASE", "2026-11-20T10:00:00Z", email="-2+3@evil.example", source=FORMULAS["source"],
              metadata={"name": FORMULAS["name"], "company": FORMULAS["company"]}),
        event("f2", "REFUND", "2026-11-21T10:00:00Z", email="-2+3@evil.example"),
        event("f3", "PAGE_VIEW", "2026-11-21T10:00:00Z", email="eve@evil.example", metadata={"company": "-1+1"}),
    )  # fmt: skip
    score_all(conn)
    return conn


@pytest.mark.parametrize("export", ["leads", "events"])
def test_no_text_cell_of_a_csv_export_starts_with_a_formula_character(client, formulas, export):
    header, rows = parse_csv(client.get(f"/api/export/{export}").text)
    assert header == HEADERS[export] and rows
    for row in rows:
        for column, text in row.items():
            assert not text.startswith(("=", "+", "-", "@", "\t", "\r")), (column, text)
            if column in NUMBERS:  # a number is itself, a negative one text
                assert text == "" or str(int(text.removeprefix("'"))) == text.removeprefix("'"), (column, text)


def test_formulas_come_out_of_the_leads_export_as_text(client, formulas):
    _, rows = parse_csv(client.get("/api/export/leads").text)
    by_key = {row["lead_key"]: row for row in rows}
    evil = by_key["'-2+3@evil.example"]
    assert (evil["email"], evil["name"], evil["company"]) == (
        "'-2+3@evil.example", "'" + FORMULAS["name"], "'" + FORMULAS["company"]
    )  # fmt: skip
    assert by_key["eve@evil.example"]["company"] == "'-1+1"
    assert evil["score"] == "50"  # 100 - 50: a number that starts with a digit is left as it is
    # JSON is not a spreadsheet format: its values are the stored ones.
    items = client.get("/api/export/leads", params={"format": "json"}).json()
    assert {item["lead_key"]: item["name"] for item in items}["-2+3@evil.example"] == FORMULAS["name"]


def test_formulas_and_negative_points_come_out_of_the_events_export_as_text(client, formulas):
    _, rows = parse_csv(client.get("/api/export/events").text)
    by_id = {row["event_id"]: row for row in rows}
    assert by_id["f1"]["source"] == "'" + FORMULAS["source"]
    assert (by_id["f2"]["points"], by_id["f2"]["change"]) == ("'-50", "'-50")


def test_tab_and_carriage_return_starts_are_escaped_and_other_types_kept(conn):
    # Ingestion trims names and companies, so these are fed to the export query directly.
    query = """select E'\\t=1+1' as tab, E'\\r@A1' as cr, 'ok' as plain, null::text as empty, -5 as n, true as b,
                      timestamptz '2026-11-20 10:00:00+00' as t"""
    safe = spreadsheet_safe(conn, query, {})
    with conn.cursor().copy(f"copy ({safe}) to stdout with (format csv, header true)") as copy:
        header, rows = parse_csv(b"".join(copy).decode())
    assert header == ["tab", "cr", "plain", "empty", "n", "b", "t"]
    assert rows == [{"tab": "'\t=1+1", "cr": "'\r@A1", "plain": "ok", "empty": "", "n": "'-5", "b": "t",
                     "t": "2026-11-20 10:00:00+00"}]  # fmt: skip
