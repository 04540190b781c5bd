"""CSV upload (good rows land, bad rows kept with line and raw text) and event receipts."""

from __future__ import annotations

import random
import string
from datetime import timedelta

from leadscore_pipeline import clock
from leadscore_pipeline.ingest.csv_batches import MAX_COLUMNS, RAW_KEEP_BYTES
from tests.api.test_read import score_all
from tests.frozen import NOW

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


# --- only what Postgres can store: NUL, values too long to index, huge headers and lines -------------

HEADER = "event_id,event_type,lead_id,email,timestamp,metadata\n"
RNG = random.Random(4180)


def random_letters(count: int) -> str:
    """Random, so it does not compress: a repetitive 20 KB value fits a btree entry and hides the bug."""
    return "".join(RNG.choices(string.ascii_lowercase, k=count))


def good_row(event_id: str, email: str = "ann@acme.io") -> str:
    return f"{event_id},PAGE_VIEW,,{email},2026-11-01T10:00:00Z,{{}}\n"


def stored_rejections(conn) -> list[tuple]:
    return conn.execute("select line, raw, reason, event_id from ingest_rejections order by line").fetchall()


def test_rows_with_nul_are_rejected_with_their_line_and_the_good_rows_land(client, conn):
    text = (
        HEADER
        + good_row("n1")
        + "n2,PAGE_VIEW,,ann\x00@acme.io,2026-11-01T10:00:00Z,{}\n"  # line 3: NUL in a value
        + good_row("n3", "bob@globex.com")
        + 'n4,PAGE_VIEW,,ann@acme.io,2026-11-01T10:00:00Z,"{""note"": ""a\\u0000b""}"\n'  # line 5: the JSON escape
        + "n5\x00,PAGE_VIEW,,ann@acme.io,,{}\n"  # line 6: NUL in the event_id
    )

    body = upload(client, text.encode()).json()

    assert (body["accepted"], body["rejected"]) == (2, 3)
    assert [e["line"] for e in body["errors"]] == [3, 5, 6]
    assert [e["error"].split(":")[0] for e in body["errors"]] == ["email", "metadata", "event_id"]
    assert conn.execute("select event_id from raw_deliveries order by seq").fetchall() == [("n1",), ("n3",)]
    rejected = stored_rejections(conn)
    assert rejected[0][1] == "n2,PAGE_VIEW,,ann\ufffd@acme.io,2026-11-01T10:00:00Z,{}"  # raw text, NUL replaced
    assert [r[3] for r in rejected] == ["n2", "n4", None]  # an event_id the table cannot hold is not kept
    score_all(conn)
    assert {row["lead_key"] for row in client.get("/api/leaderboard").json()["leads"]} == {
        "ann@acme.io",
        "bob@globex.com",
    }


def test_values_too_long_to_index_are_rejected_rows_and_scoring_goes_on(client, conn):
    company, event_id = random_letters(20_000), random_letters(20_000)
    text = (
        "event_id,event_type,lead_id,email,timestamp,metadata,company\n"
        + "l1,PAGE_VIEW,,ann@acme.io,2026-11-01T10:00:00Z,{},Acme\n"
        + f"l2,PAGE_VIEW,,bob@globex.com,2026-11-01T10:00:00Z,{{}},{company}\n"  # line 3: the company column
        + f'l3,PAGE_VIEW,,bob@globex.com,2026-11-01T10:00:00Z,"{{""company"": ""{company}""}}",\n'  # 4: in metadata
        + f"{event_id},PAGE_VIEW,,bob@globex.com,2026-11-01T10:00:00Z,{{}},\n"  # line 5: the event_id
        + f"l5,PAGE_VIEW,,{random_letters(20_000)}@x.io,2026-11-01T10:00:00Z,{{}},\n"  # line 6: the email
    )

    body = upload(client, text).json()

    assert (body["accepted"], body["rejected"]) == (1, 4)
    assert [(e["line"], e["error"].split(":")[0]) for e in body["errors"]] == [
        (3, "company"),
        (4, "metadata.company"),
        (5, "event_id"),
        (6, "email"),
    ]
    assert [r[3] for r in stored_rejections(conn)] == ["l2", "l3", None, "l5"]
    score_all(conn)  # the old code landed these rows, and every micro-batch then failed on the index
    assert [row["lead_key"] for row in client.get("/api/leaderboard").json()["leads"]] == ["ann@acme.io"]


def test_a_header_of_more_columns_than_allowed_is_422_and_lands_nothing(client, conn):
    wide = HEADER.rstrip("\n") + "".join(f",extra{i}" for i in range(MAX_COLUMNS - 5)) + "\n" + good_row("w1")

    response = upload(client, wide)

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"field": "file", "error": f"at most {MAX_COLUMNS} columns, the header has {MAX_COLUMNS + 1}"}
    ]
    assert conn.execute("select count(*) from raw_deliveries").fetchone()[0] == 0


def test_a_header_of_a_million_columns_is_refused_before_it_is_parsed(client, conn):
    header = ",".join(f"c{i}" for i in range(1_000_000)) + "\n"  # 6.9 MB on one line

    response = upload(client, header + "1,2,3\n")

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "file"
    assert conn.execute("select count(*) from ingest_rejections").fetchone()[0] == 0


def test_a_very_long_line_is_a_rejected_row_whose_raw_text_is_cut(client, conn):
    huge = f'h2,PAGE_VIEW,,ann@acme.io,,"{{""note"": ""{random_letters(1_000_000)}""}}"'
    wide = f"h3,BAD TYPE,,ann@acme.io,,{random_letters(10_000)}"  # under the line limit, rejected, long
    text = HEADER + good_row("h1") + huge + "\n" + wide + "\n" + good_row("h4")

    body = upload(client, text).json()

    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert body["errors"][0] == {"line": 3, "error": f"line longer than 32768 bytes ({len(huge)} bytes): not read"}
    assert body["errors"][1]["line"] == 4
    raws = [r[1] for r in stored_rejections(conn)]
    assert raws[0] == huge[:RAW_KEEP_BYTES] + f"... [cut: {len(huge)} bytes in all]"
    assert raws[1] == wide[:RAW_KEEP_BYTES] + f"... [cut: {len(wide)} bytes in all]"
    rejections = client.get("/api/ingest/rejections").json()["rejections"]
    assert max(len(r["raw"]) for r in rejections) < RAW_KEEP_BYTES + 100


def test_a_record_spanning_a_long_line_is_rejected_whole_and_the_lines_after_read_as_before(client, conn):
    filler = random_letters(40_000)
    text = (
        HEADER
        + good_row("s1")
        + f's2,PAGE_VIEW,,ann@acme.io,,"{{""note"": ""{filler}\n'  # line 3, long, opens a quoted field
        + 'more""}"\n'  # line 4 closes it: the record is lines 3-4
        + 's3,PAGE_VIEW,,bob@globex.com,,"{""note"":\n'  # line 5 opens a quoted field
        + f"{filler}\n"  # line 6, long, inside it
        + '1}"\n'  # line 7 closes it: without line 6 it would be valid JSON
        + good_row("s4", "cy@initech.com")  # line 8
    )

    body = upload(client, text).json()

    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert body["errors"] == [
        {"line": 3, "error": "line 3 is longer than 32768 bytes: not read"},
        {"line": 5, "error": "line 6 is longer than 32768 bytes: not read"},
    ]
    assert conn.execute("select event_id from raw_deliveries order by seq").fetchall() == [("s1",), ("s4",)]


def test_an_upload_named_with_nul_keeps_its_rejections(client, conn):
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n"
        + (HEADER + "x1,BAD TYPE,,ann@acme.io,,{}\n").encode()
        + b"\r\n--b0undary--\r\n"
    )

    response = client.post(
        "/api/events/upload", content=body, headers={"content-type": "multipart/form-data; boundary=b0undary"}
    )

    assert response.status_code == 202
    assert conn.execute("select file_name from ingest_rejections").fetchall() == [("a\ufffdb.csv",)]


def test_rejections_of_a_file_with_a_very_long_name_are_kept_and_listed_newest_file_first(client, monkeypatch):
    long_name = "".join(random.Random(7).choices(string.ascii_letters, k=3_000)) + ".csv"  # past a btree entry
    assert upload(client, CSV, name="first.csv").status_code == 202
    monkeypatch.setattr(clock, "utc_now", lambda: NOW + timedelta(seconds=1))
    assert upload(client, CSV, name=long_name).status_code == 202
    newest_first = client.get("/api/ingest/rejections").json()["rejections"]
    files = [(r["file_name"], r["line"]) for r in newest_first]
    assert files == [(name, line) for name in (long_name, "first.csv") for line in (3, 6, 9)]
    one_file = client.get("/api/ingest/rejections", params={"file_name": "first.csv"}).json()
    assert (one_file["total"], [r["line"] for r in one_file["rejections"]]) == (3, [3, 6, 9])
