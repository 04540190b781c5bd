"""Request bodies are capped while they stream in: a 413 as soon as the cap is passed (or declared), the rest
unread, on a real server, for JSON ingestion, CSV uploads (LEADSCORE_MAX_UPLOAD_BYTES) and every other route."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from leadscore_pipeline.settings import get_settings
from tests.api.live_server import serve

HUGE = 200 * 1024 * 1024  # what a client offers to send
CHUNK = 64 * 1024
ANSWER_SECONDS = 20
UPLOAD_CAP = 1024 * 1024
CSV_HEADER = b"event_id,event_type,lead_id,email,timestamp,metadata\n"


@pytest.fixture
def api_port(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("LEADSCORE_MAX_UPLOAD_BYTES", str(UPLOAD_CAP))
    get_settings.cache_clear()
    with serve(create_app()) as base_url:
        yield urlsplit(base_url).port
    monkeypatch.undo()
    get_settings.cache_clear()


def _response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of the one response on `sock` (the server closes or sends Content-Length)."""
    data = b""
    deadline = time.monotonic() + ANSWER_SECONDS
    while b"\r\n\r\n" not in data or len(data) < _expected_length(data):
        assert time.monotonic() < deadline, f"no complete response within {ANSWER_SECONDS} s: {data[:200]!r}"
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _expected_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(data) + 1  # unknown: read until the server closes


def stream_body(port: int, head: str, *, chunk: bytes, total: int) -> tuple[int, bytes, int]:
    """Send `head` then up to `total` bytes of body in chunked encoding, stopping as soon as the server answers.

    Returns (status, response body, body bytes sent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_SECONDS) as sock:
        sock.sendall(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        try:
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            if sent >= total:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and hung up while we were still sending: read what it said
        status, body = _response(sock)
        return status, body, sent


def declared_only(port: int, head: str, length: int) -> tuple[int, bytes]:
    """Send headers declaring a `length`-byte body and no body at all: only a Content-Length check can answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_SECONDS) as sock:
        sock.sendall(head.encode() + f"Content-Length: {length}\r\n\r\n".encode())
        return _response(sock)


def post(path: str, content_type: str) -> str:
    return f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"


JSON_FILLER = b'{"event_type": "PAGE_VIEW", "email": "a@b.io", "metadata": {"pad": "' + b"x" * CHUNK


@pytest.mark.parametrize(("path", "cap"), [("/api/events", 32 * 1024), ("/api/events/batch", 500 * 1024)])
def test_a_json_body_past_its_cap_is_413_before_the_rest_is_read(api_port, conn, path, cap):
    status, body, sent = stream_body(api_port, post(path, "application/json"), chunk=JSON_FILLER, total=HUGE)
    assert status == 413
    assert b'"field":"body"' in body and str(cap).encode() in body
    assert sent < HUGE // 10  # answered long before the client finished sending
    assert conn.execute("select count(*) from raw_deliveries").fetchone()[0] == 0


def test_an_upload_past_the_upload_cap_is_413_while_it_streams(api_port, conn):
    boundary = "leadscoreboundary"
    head = post("/api/events/upload", f"multipart/form-data; boundary={boundary}")
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
    part += "Content-Type: text/csv\r\n\r\n"
    rows = b"".join(b"r%06d,PAGE_VIEW,,a@b.io,,{}\n" % i for i in range(CHUNK // 32))
    status, body, sent = stream_body(api_port, head, chunk=part.encode() + CSV_HEADER + rows, total=HUGE)
    assert status == 413
    assert b'"field":"body"' in body and str(UPLOAD_CAP).encode() in body
    assert sent < HUGE // 10
    assert conn.execute("select count(*) from raw_deliveries").fetchone()[0] == 0


@pytest.mark.parametrize(
    "head",
    [
        post("/api/events", "application/json"),
        post("/api/events/batch", "application/json"),
        post("/api/webhook", "application/json"),
        post("/api/events/upload", "multipart/form-data; boundary=x"),
        "PUT /api/rules/PAGE_VIEW HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n",
    ],
)
def test_a_declared_content_length_past_the_cap_is_413_without_waiting_for_the_body(api_port, head):
    status, body = declared_only(api_port, head, HUGE)
    assert status == 413
    assert b'"field":"body"' in body


def test_an_upload_under_its_cap_may_be_larger_than_any_json_body(client, conn):
    rows = "".join(f"u{i:06d},PAGE_VIEW,,a@b.io,2026-11-01T10:00:00Z,{{}}\n" for i in range(20_000))
    assert len(rows) > 500 * 1024  # past the JSON batch cap, within the 100 MB upload default
    response = client.post("/api/events/upload", files={"file": ("big.csv", CSV_HEADER.decode() + rows, "text/csv")})
    assert response.status_code == 202
    assert response.json()["accepted"] == 20_000


def test_upload_cap_is_a_setting(db, monkeypatch):
    monkeypatch.setenv("LEADSCORE_MAX_UPLOAD_BYTES", "2000")
    get_settings.cache_clear()
    try:
        with TestClient(create_app(), raise_server_exceptions=False) as small:
            over = small.post("/api/events/upload", files={"file": ("a.csv", b"x" * 3000, "text/csv")})
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert over.status_code == 413
    assert over.json()["detail"] == [{"field": "body", "error": "larger than 2000 bytes"}]
