"""Cross-site requests refused: a Host name off the allow-list (DNS rebinding) is a 400, a state-changing request
from another Origin a 403, a body an HTML form can send where JSON is due a 415; all in the API's error shape.
Same-origin requests, the dashboard's multipart upload and the signed server-to-server webhook still land."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from leadscore_pipeline.ingest.webhook import sign_webhook
from leadscore_pipeline.settings import Settings
from tests.api.configured import configured_client

ADMIN = {"Authorization": "Bearer the-admin-token"}
SECRET = "whsec_" + base64.b64encode(b"cross-site test secret").decode()
EVENT = {"event_id": "x-1", "event_type": "PAGE_VIEW", "email": "ann@acme.io", "timestamp": "2026-11-01T00:00:00Z"}
CSV = "event_id,event_type,lead_id,email,timestamp,metadata\nc-1,PAGE_VIEW,,ann@acme.io,2026-11-01T00:00:00Z,{}\n"
FOREIGN = ["http://evil.example", "http://testserver.evil.example", "http://testserver:8080", "null"]


@pytest.fixture
def api(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with configured_client(monkeypatch, admin_token="the-admin-token", webhook_secrets=SECRET) as client:
        yield client


def landed(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute("select event_id from raw_deliveries order by seq")]


def only_error(response) -> dict:
    [error] = response.json()["detail"]
    return error


def upload(client: TestClient, **headers: str):
    return client.post("/api/events/upload", files={"file": ("a.csv", CSV, "text/csv")}, headers=headers)


# ---------------------------------------------------------------- Host allow-list (DNS rebinding)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "rebind.attacker.test", "", "[::1"])
def test_a_host_name_off_the_list_is_400_for_reads_and_writes(api, conn, host):
    for response in (
        api.get("/api/leaderboard", headers={"host": host}),
        api.post("/api/events", json=EVENT, headers={"host": host}),
    ):
        assert response.status_code == 400
        assert only_error(response)["field"] == "host"
        assert "LEADSCORE_ALLOWED_HOSTS" in only_error(response)["error"]
    assert landed(conn) == []


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "LOCALHOST:9", "localhost.", "testserver"])
def test_listed_host_names_are_served_whatever_the_port(api, host):
    assert api.get("/healthz", headers={"host": host}).status_code == 200


def test_by_default_the_api_answers_to_the_local_names_and_its_own_host(db, monkeypatch):
    with configured_client(monkeypatch, base_url="http://127.0.0.1:8000", allowed_hosts=None) as client:
        local = ["127.0.0.1", "localhost", "::1"]
        assert Settings(api_host="leads.internal").allowed_host_list == [*local, "leads.internal"]
        listed = Settings(api_host="0.0.0.0", allowed_hosts=" Leads.Example.com ,*.acme.io").allowed_host_list
        assert listed == [*local, "0.0.0.0", "leads.example.com", "*.acme.io"]
        assert client.get("/api/leaderboard").status_code == 200
        assert client.get("/api/leaderboard", headers={"host": "localhost:8000"}).status_code == 200
        assert client.get("/api/leaderboard", headers={"host": "[::1]:8000"}).status_code == 200
        assert client.get("/api/leaderboard", headers={"host": "testserver"}).status_code == 400
        assert client.get("/api/leaderboard", headers={"host": "evil.example:8000"}).status_code == 400


def test_any_host_when_the_list_says_so(db, monkeypatch):
    with configured_client(monkeypatch, allowed_hosts="*") as client:
        assert client.get("/healthz", headers={"host": "whatever.example"}).status_code == 200
    with configured_client(monkeypatch, allowed_hosts="*.acme.io") as client:
        assert client.get("/healthz", headers={"host": "leads.acme.io"}).status_code == 200
        assert client.get("/healthz", headers={"host": "acme.io.evil.example"}).status_code == 400


# ---------------------------------------------------------------- Origin of state-changing requests


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_state_changing_request_from_another_origin_is_403_and_changes_nothing(api, conn, origin):
    refused = [
        api.post("/api/events", json=EVENT, headers={"origin": origin}),
        api.post("/api/events/batch", json=[EVENT], headers={"origin": origin}),
        upload(api, origin=origin),
        api.put("/api/rules/PAGE_VIEW", json={"points": 9}, headers={"origin": origin, **ADMIN}),
        api.delete("/api/rules/PAGE_VIEW", headers={"origin": origin, **ADMIN}),
        api.post("/api/replay", headers={"origin": origin, **ADMIN}),
    ]
    for response in refused:
        assert response.status_code == 403, response.request.url
        assert only_error(response) == {
            "field": "origin",
            "error": f"a request from another site ({origin!r}) may not change anything here",
        }
    assert landed(conn) == []
    assert api.get("/api/rules/PAGE_VIEW").json()["points"] == 5


def test_same_origin_requests_land(api, conn):
    assert api.post("/api/events", json=EVENT, headers={"origin": "http://testserver"}).status_code == 202
    assert upload(api, origin="http://testserver").status_code == 202  # the dashboard's own upload
    assert landed(conn) == ["x-1", "c-1"]


def test_reads_from_another_origin_are_not_refused(api):
    # Reading is not changing: without CORS headers the other site's page cannot see the answer anyway.
    response = api.get("/api/leaderboard", headers={"origin": "http://evil.example"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_the_signed_webhook_from_a_server_still_lands(api, conn):
    body = json.dumps({"type": "track", "event": "Demo Requested", "messageId": "w-1", "userId": "crm-1"}).encode()
    for headers in (sign_webhook(body, SECRET) | {"content-type": "application/json"}, sign_webhook(body, SECRET)):
        assert api.post("/api/webhook", content=body, headers=headers).status_code == 202
    assert landed(conn) == ["w-1", "w-1"]


# ---------------------------------------------------------------- JSON bodies only where JSON is due


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_what_an_html_form_can_post_is_415_where_json_is_due(api, conn, content_type):
    body = json.dumps(EVENT).encode()
    for path in ("/api/events", "/api/events/batch", "/api/webhook"):
        response = api.post(path, content=body, headers={"content-type": content_type})
        assert response.status_code == 415, path
        assert only_error(response) == {
            "field": "content-type",
            "error": f"must be application/json, got {content_type!r}",
        }
    response = api.put(
        "/api/rules/PAGE_VIEW", content=b'{"points": 9}', headers={"content-type": content_type, **ADMIN}
    )
    assert response.status_code == 415 and only_error(response)["field"] == "content-type"
    assert landed(conn) == []
    assert api.get("/api/rules/PAGE_VIEW").json()["points"] == 5


def test_a_json_body_without_a_content_type_is_415(api, conn):
    response = api.post("/api/events", content=json.dumps(EVENT).encode())
    assert response.status_code == 415
    assert only_error(response) == {
        "field": "content-type",
        "error": "missing; this body must be sent as application/json",
    }
    assert landed(conn) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded"])
def test_the_upload_takes_multipart_only(api, conn, content_type):
    response = api.post("/api/events/upload", content=CSV.encode(), headers={"content-type": content_type})
    assert response.status_code == 415
    assert only_error(response)["error"] == f"must be multipart/form-data, got {content_type!r}"
    assert landed(conn) == []


def test_json_with_a_charset_and_requests_without_a_body_pass(api, conn):
    body = json.dumps(EVENT).encode()
    assert (
        api.post("/api/events", content=body, headers={"content-type": "application/json; charset=utf-8"}).status_code
        == 202
    )
    assert api.delete("/api/rules/REFUND", headers=ADMIN).status_code == 200  # no body, no content type
    assert landed(conn) == ["x-1"]
