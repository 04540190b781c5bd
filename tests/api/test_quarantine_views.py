"""Quarantined deliveries, as the pipeline status and the event receipts show them."""

from __future__ import annotations

from tests.api.test_read import score_all
from tests.pipeline.helpers import event, land
from tests.pipeline.test_quarantine import land_unvalidated, random_text


def test_the_status_counts_quarantined_deliveries_and_shows_the_latest(client, conn):
    land(conn, event("good", "PURCHASE", "2026-11-01T10:00:00Z"))
    first = land_unvalidated(conn, "bad-email", f"{random_text()}@x.io", "2026-11-02T00:00:00Z")
    second = land_unvalidated(conn, "bad-company", "ann@acme.io", "2026-11-03T00:00:00Z", company=random_text())
    score_all(conn)

    status = client.get("/api/pipeline/status").json()
    assert status["quarantined"] == 2 and status["lag"] == 0
    shown = {row["seq"]: row for row in status["quarantined_latest"]}
    assert set(shown) == {first, second}
    assert (shown[first]["event_id"], shown[first]["step"]) == ("bad-email", "dedup")
    assert (shown[second]["event_id"], shown[second]["step"]) == ("bad-company", "score")
    assert "index row" in shown[second]["reason"] and "lead_scores" in shown[second]["reason"]
    assert len(shown[first]["lead_key"]) == 200  # cut short: the whole key is what broke the index
    assert client.get("/api/leads/ann@acme.io").json()["score"] == 100


def test_a_receipt_says_quarantined_with_the_reason(client, conn):
    land_unvalidated(conn, "bad", f"{random_text()}@x.io", "2026-11-02T00:00:00Z")
    score_all(conn)
    receipt = client.get("/api/events/bad").json()
    assert (receipt["status"], receipt["event_status"]) == ("quarantined", "quarantined")
    assert receipt["reason"].startswith("set aside at the dedup step: index row")
    assert [d["status"] for d in receipt["deliveries"]] == ["quarantined"]

    # The same event again, valid this time: it is the event, and it is scored.
    assert client.post("/api/events", json=event("bad", "PAGE_VIEW", "2026-11-02T00:00:00Z")).status_code == 202
    score_all(conn)
    receipt = client.get("/api/events/bad").json()
    assert (receipt["status"], receipt["lead_key"], receipt["reason"]) == ("scored", "ann@acme.io", None)
    assert [d["status"] for d in receipt["deliveries"]] == ["quarantined", "event"]
    assert receipt["deliveries"][0]["reason"].startswith("set aside at the dedup step")
