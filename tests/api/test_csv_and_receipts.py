"""CSV upload (good rows land, bad rows kept with line and raw text) and event receipts."""

from __future__ import annotations

from tests.api.test_read import score_all

CSV = (
    "event_id,event_type,lead_id,email,timestamp,metadata\n"
    'c1,PAGE_VIEW,,ann@acme.io,2026-11-01T10:00:00Z,"{""name"": ""Ann""}"\n'  # line 2
    "c2,bad type,,ann@acme.io,2026-11-01T11:00:00Z,{}\n"  # line 3: bad event_type
    'c3,PURCHASE,,bob@globex.com,2026-11-02T10:00:00Z,"{""note"":\n""two lines""}"\n'  # lines 4-5
    "c4,EMAIL_OPEN,,not-an-email,,\n"  # line 6: bad email
    "c5,EMAIL_OPEN,,ann@acme.io\n"  # line 7: too few fields: the missing ones are empty
    "\n"  # line 8: blank, no row
    "c6,EMAIL_OPEN,crm-1,,2026-11-03T00:00:00Z,[1]\n"  # line 9: metadata not an object
)
RAGGED = CSV + "c7,EMAIL_OPEN,,ann@acme.io,,{},extra\n"  # line 10: too many fields


def upload(client, text: str | bytes, name: str = "leads.csv"):
    return client.post("/api/events/upload", files={"file": (name, text, "text/csv")})


def test_upload_lands_good_rows_and_keeps_bad_ones_with_line_numbers(client, conn):
    response = upload(client, CSV)
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 3)
    assert [e["line"] for e in body["errors"]] == [3, 6, 9]
    assert "event_type" in body["errors"][0]["error"] and "email" in body["errors"][1]["error"]

    landed = conn.execute("select event_id, channel, source from raw_deliveries order by seq").fetchall()
    assert landed == [("c1", "csv", "csv"), ("c3", "csv", "csv"), ("c5", "csv", "csv")]

    rejections = client.get("/api/ingest/rejections").json()
    assert rejections["total"] == 3
    first = rejections["rejections"][0]
    assert (first["file_name"], first["line"], first["event_id"]) == ("leads.csv", 3, "c2")
    assert first["raw"] == "c2,bad type,,ann@acme.io,2026-11-01T11:00:00Z,{}"

    score_all(conn)
    board = {row["lead_key"]: row["score"] for row in client.get("/api/leaderboard").json()["leads"]}
    assert board == {"bob@globex.com": 100, "ann@acme.io": 15}


def test_a_row_with_too_many_fields_is_found_by_the_exact_reader(client, conn):
    body = upload(client, RAGGED).json()
    assert (body["accepted"], body["rejected"]) == (3, 4)
    assert [e["line"] for e in body["errors"]] == [3, 6, 9, 10]
    assert body["errors"][3]["error"] == "expected 6 fields, got 7"
    multi_line = conn.execute("select count(*) from raw_deliveries where event_id = 'c3'").fetchone()[0]
    assert multi_line == 1
    raws = [r["raw"] for r in client.get("/api/ingest/rejections").json()["rejections"]]
    assert raws[-1] == "c7,EMAIL_OPEN,,ann@acme.io,,{},extra"


def test_unreadable_files_are_422_and_land_nothing(client, conn):
    for content in (b"\x89PNG\r\n\x1a\n\x00\x00binary", "id,type\n1,PAGE_VIEW\n", ""):
        response = upload(client, content)
        assert response.status_code == 422, content
        assert response.json()["detail"][0]["field"] == "file"
    assert conn.execute("select count(*) from raw_deliveries").fetchone()[0] == 0
    assert conn.execute("select count(*) from ingest_rejections").fetchone()[0] == 0


def test_receipts_follow_an_event_from_landing_to_scoring(client, conn):
    event = {"event_id": "r1", "event_type": "PURCHASE", "email": "ann@acme.io", "timestamp": "2026-11-01T10:00:00Z"}
    client.post("/api/events", json=event)
    receipt = client.get("/api/events/r1").json()
    assert (receipt["status"], receipt["lead_key"]) == ("landed", "ann@acme.io")
    score_all(conn)
    assert client.get("/api/events/r1").json()["status"] == "scored"

    client.post("/api/events", json=event)
    assert client.get("/api/events/r1").json()["status"] == "duplicate"
    client.post("/api/events", json={**event, "event_type": "REFUND"})
    receipt = client.get("/api/events/r1").json()
    assert receipt["status"] == "conflict" and receipt["event_status"] == "scored"
    assert [d["status"] for d in receipt["deliveries"]] == ["event", "duplicate", "conflict"]


def test_receipt_of_a_rejected_csv_row_and_of_nothing(client):
    upload(client, CSV)
    receipt = client.get("/api/events/c2").json()
    assert receipt["status"] == "rejected" and receipt["rejections"][0]["line"] == 3
    assert client.get("/api/events/never-seen").status_code == 404
