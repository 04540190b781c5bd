"""Analytics endpoints against a hand-worked fixture, and the live stream."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from tests.api.test_read import score_all
from tests.frozen import NOW
from tests.pipeline.helpers import event, land

TODAY = NOW  # noon: an hour either side stays on the same UTC day


def day(offset: int) -> str:
    return (TODAY - timedelta(days=offset)).isoformat()


@pytest.fixture
def fixture(client, conn):
    """ann@acme.io: PAGE_VIEW (day -3), PURCHASE (day -2), EMAIL_OPEN (-1), PURCHASE (-1, later), REFUND (0)
    bob@acme.io: PURCHASE (-2) first of all his events, then a duplicate and a conflicting redelivery
    cy@globex.com: DEMO_REQUEST (-40)
    One CSV row rejected."""
    land(
        conn,
        event("a1", "PAGE_VIEW", day(3), email="ann@acme.io"),
        event("a2", "PURCHASE", day(2), email="ann@acme.io"),
        event("a3", "EMAIL_OPEN", day(1), email="ann@acme.io"),
        event("a4", "PURCHASE", (TODAY - timedelta(days=1, hours=-1)).isoformat(), email="ann@acme.io"),
        event("a5", "REFUND", day(0), email="ann@acme.io"),
        event("b1", "PURCHASE", day(2), email="bob@acme.io"),
        event("c1", "DEMO_REQUEST", day(40), email="cy@globex.com"),
    )
    land(conn, event("b1", "PURCHASE", day(2), email="bob@acme.io"), event("b1", "REFUND", day(2), email="bob@acme.io"))
    client.post(
        "/api/events/upload",
        files={"file": ("x.csv", "event_id,event_type,lead_id,email,timestamp,metadata\nz,bad type,,a@b.io,,\n")},
    )
    score_all(conn)
    return client


def test_summary(fixture):
    summary = fixture.get("/api/analytics/summary").json()
    # ann: 5 +100 +10 +100 -50 = 165 (hot); bob 100 (warm); cy 50 then 10 days past the window: 0 (cold)
    assert summary == {
        "leads": 3,
        "events": 7,
        "duplicates": 2,
        "conflicts": 1,
        "rejections": 1,
        "active_rules": 6,
        "total_points": 265,
        "tiers": {"cold": 1, "warm": 1, "hot": 1, "qualified": 0},
    }


def test_companies(fixture):
    companies = fixture.get("/api/analytics/companies").json()["companies"]
    assert companies == [
        {"company": "acme.io", "leads": 2, "average_score": 132.5, "total_score": 265},
        {"company": "globex.com", "leads": 1, "average_score": 0.0, "total_score": 0},
    ]


def test_trends_are_zero_filled_utc_days_and_months(fixture):
    week = fixture.get("/api/analytics/trends", params={"range": "7d"}).json()
    assert week["unit"] == "day" and len(week["points"]) == 7
    assert [p["events"] for p in week["points"]] == [0, 0, 0, 1, 2, 2, 1]
    assert week["points"][-1]["period"] == TODAY.date().isoformat()
    assert week["points"][-2]["by_type"] == {"EMAIL_OPEN": 1, "PURCHASE": 1}
    year = fixture.get("/api/analytics/trends", params={"range": "1y"}).json()
    assert year["unit"] == "month" and len(year["points"]) == 12
    assert sum(p["events"] for p in year["points"]) == 7
    assert fixture.get("/api/analytics/trends", params={"range": "2w"}).status_code == 422


def test_event_types_and_conversion_drivers(fixture):
    body = fixture.get("/api/analytics/event-types").json()
    by_type = {row["event_type"]: (row["events"], row["unique_leads"], row["points"]) for row in body["event_types"]}
    assert by_type == {
        "PURCHASE": (3, 2, 300),
        "PAGE_VIEW": (1, 1, 5),
        "EMAIL_OPEN": (1, 1, 10),
        "REFUND": (1, 1, -50),
        "DEMO_REQUEST": (1, 1, 50),
    }
    # ann's purchases follow a PAGE_VIEW and an EMAIL_OPEN; bob's is his first event.
    assert body["conversion_drivers"] == [
        {"event_type": "DIRECT", "conversions": 1},
        {"event_type": "EMAIL_OPEN", "conversions": 1},
        {"event_type": "PAGE_VIEW", "conversions": 1},
    ]


def read_events(response, wanted: int, found: list) -> None:
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            found.append((name, json.loads(line.removeprefix("data: "))))
            if len(found) >= wanted:
                return


def test_stream_sends_a_snapshot_then_score_updates(fixture, conn):
    found: list = []
    with fixture.stream("GET", "/api/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = threading.Thread(target=read_events, args=(response, 2, found), daemon=True)
        reader.start()
        reader.join(timeout=0.5)  # the snapshot arrives first
        land(conn, event("new", "DEMO_REQUEST", day(0), email="bob@acme.io"))
        score_all(conn)
        reader.join(timeout=30)
    assert [name for name, _ in found] == ["snapshot", "score-update"]
    snapshot, update = found[0][1], found[1][1]
    assert [lead["lead_key"] for lead in snapshot["leads"]] == ["ann@acme.io", "bob@acme.io", "cy@globex.com"]
    assert (update["lead_key"], update["score"], update["tier"], update["rank"]) == ("bob@acme.io", 150, "hot", 2)
