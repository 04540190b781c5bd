"""Read access (LEADSCORE_READ_KEY): every /api read needs the read key or the admin token when one is set, the
probes and the dashboard's files stay open, and OpenAPI declares each route's bearer scheme."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.configured import configured_client

READ_KEY, ADMIN_TOKEN, INGEST_KEY = "the-read-key", "the-admin-token", "the-ingest-key"
READS = [
    "/api/leaderboard",
    "/api/leads",
    "/api/leads/ann@acme.io",
    "/api/leads/ann@acme.io/history",
    "/api/analytics/summary",
    "/api/analytics/companies",
    "/api/analytics/trends",
    "/api/analytics/event-types",
    "/api/ingest/rejections",
    "/api/pipeline/status",
    "/api/export/leads",
    "/api/export/leads?format=json",
    "/api/export/events",
    "/api/events/some-event",
    "/api/rules",
    "/api/rules/PAGE_VIEW",
    "/api/replay/some-replay",
    "/api/config",
    "/api/stream",
]
OPEN = ["/healthz", "/readyz", "/", "/static/app.js", "/static/js/util.js"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def keyed(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with configured_client(monkeypatch, read_key=READ_KEY, admin_token=ADMIN_TOKEN, ingest_key=INGEST_KEY) as client:
        yield client


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "missing 'Authorization: Bearer <read key>' header"),
        (bearer("a-guess"), "wrong read key"),
        (bearer(INGEST_KEY), "wrong read key"),
        ({"Authorization": f"Basic {READ_KEY}"}, "missing 'Authorization: Bearer <read key>' header"),
    ],
    ids=["no key", "wrong key", "ingest key", "not bearer"],
)
def test_a_read_without_the_read_key_is_401_naming_authorization(keyed, path, headers, error):
    # Streamed, so a stream that opened anyway fails the test instead of hanging it.
    with keyed.stream("GET", path, headers=headers) as response:
        assert response.status_code == 401
        assert json.loads(response.read()) == {"detail": [{"field": "authorization", "error": error}]}
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", [p for p in READS if p not in ("/api/stream", "/api/replay/some-replay")])
@pytest.mark.parametrize("token", [READ_KEY, ADMIN_TOKEN], ids=["read key", "admin token"])
def test_the_read_key_or_the_admin_token_reads(keyed, path, token):
    response = keyed.get(path, headers=bearer(token))
    assert response.status_code in (200, 404), response.text  # 404: no such lead, event or rule yet


def test_the_stream_opens_with_the_read_key(keyed):
    with keyed.stream("GET", "/api/stream", headers=bearer(READ_KEY)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert next(line for line in response.iter_lines() if line.startswith("event:")) == "event: snapshot"


@pytest.mark.parametrize("path", OPEN)
def test_probes_and_the_dashboard_files_need_no_key(keyed, path):
    assert keyed.get(path).status_code == 200


def test_ingestion_and_admin_keep_their_own_keys(keyed):
    event = {"event_type": "PAGE_VIEW", "email": "a@b.io", "timestamp": "2026-11-01T00:00:00Z"}
    assert keyed.post("/api/events", json=event, headers=bearer(READ_KEY)).status_code == 401
    assert keyed.post("/api/events", json=event, headers=bearer(INGEST_KEY)).status_code == 202
    refused = keyed.put("/api/rules/PAGE_VIEW", json={"points": 6}, headers=bearer(READ_KEY))
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert keyed.put("/api/rules/PAGE_VIEW", json={"points": 6}, headers=bearer(ADMIN_TOKEN)).status_code == 200


def test_without_a_read_key_reads_stay_open(db, monkeypatch):
    with configured_client(monkeypatch, read_key=None, admin_token=ADMIN_TOKEN) as client:
        assert client.get("/api/leaderboard").status_code == 200
        assert client.get("/api/export/events").status_code == 200


def security(openapi: dict, path: str, method: str) -> list[dict]:
    return openapi["paths"][path][method].get("security", [])


def test_openapi_declares_the_bearer_scheme_of_each_route(keyed):
    openapi = keyed.get("/openapi.json").json()
    schemes = openapi["components"]["securitySchemes"]
    assert {name: (s["type"], s["scheme"]) for name, s in schemes.items()} == {
        "AdminToken": ("http", "bearer"),
        "IngestKey": ("http", "bearer"),
        "ReadKey": ("http", "bearer"),
    }
    either = [{"ReadKey": []}, {"AdminToken": []}]  # alternatives: the read key or the admin token
    for path in ("/api/leaderboard", "/api/export/leads", "/api/stream", "/api/events/{event_id}", "/api/rules"):
        assert security(openapi, path, "get") == either, path
    assert security(openapi, "/api/rules/{event_type}", "put") == [{"AdminToken": []}]
    assert security(openapi, "/api/replay", "post") == [{"AdminToken": []}]
    assert security(openapi, "/api/events", "post") == [{"IngestKey": []}]
    assert security(openapi, "/api/events/upload", "post") == [{"IngestKey": []}]
    assert security(openapi, "/api/webhook", "post") == []  # the signature authenticates it
    assert security(openapi, "/healthz", "get") == []
