"""Rate limits (LEADSCORE_RATE_LIMIT_INGEST / _READ, slowapi syntax): off by default; over the limit a 429 in the
API's error shape with Retry-After; counted per configured key, else per client address."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from leadscore_pipeline.settings import Settings
from tests.api.configured import configured_client

EVENT = {"event_type": "PAGE_VIEW", "email": "ann@acme.io", "timestamp": "2026-11-01T00:00:00Z"}
ADMIN = {"Authorization": "Bearer the-admin-token"}


def landed(conn) -> int:
    return conn.execute("select count(*) from raw_deliveries").fetchone()[0]


def assert_limited(response, limit: str, most_seconds: int) -> None:
    assert response.status_code == 429
    [error] = response.json()["detail"]
    assert error["field"] == "rate_limit"
    assert error["error"].startswith(f"more than {limit} from this client; retry in ")
    assert 1 <= int(response.headers["retry-after"]) <= most_seconds


def test_reads_over_the_limit_are_429_with_retry_after(db, monkeypatch):
    with configured_client(monkeypatch, rate_limit_read="3/minute") as client:
        paths = ["/api/leaderboard", "/api/analytics/summary", "/api/export/events"]
        assert [client.get(path).status_code for path in paths] == [200, 200, 200]  # one allowance for every read
        assert_limited(client.get("/api/leads"), "3 per 1 minute", 60)
        assert client.post("/api/events", json=EVENT).status_code == 202  # ingestion is counted apart
        assert client.get("/healthz").status_code == 200  # probes are never limited


def test_ingestion_over_the_limit_is_429_and_lands_nothing(db, conn, monkeypatch):
    with configured_client(monkeypatch, rate_limit_ingest="2/hour") as client:
        assert client.post("/api/events", json={**EVENT, "event_id": "1"}).status_code == 202
        assert client.post("/api/events/batch", json=[{**EVENT, "event_id": "2"}]).status_code == 202
        assert_limited(client.post("/api/events", json={**EVENT, "event_id": "3"}), "2 per 1 hour", 3600)
        upload = client.post("/api/events/upload", files={"file": ("a.csv", "event_id\n", "text/csv")})
        assert_limited(upload, "2 per 1 hour", 3600)
        assert client.get("/api/leaderboard").status_code == 200
    assert landed(conn) == 2


def test_each_configured_key_has_its_own_allowance_and_made_up_ones_share_the_address(db, monkeypatch):
    with configured_client(monkeypatch, rate_limit_read="2/minute", admin_token="the-admin-token") as client:
        assert client.get("/api/leaderboard").status_code == 200
        assert client.get("/api/leaderboard", headers={"Authorization": "Bearer made-up"}).status_code == 200
        assert client.get("/api/leaderboard", headers={"Authorization": "Bearer made-up-2"}).status_code == 429
        assert client.get("/api/leaderboard", headers=ADMIN).status_code == 200
        assert client.get("/api/leaderboard", headers=ADMIN).status_code == 200
        assert client.get("/api/leaderboard", headers=ADMIN).status_code == 429


def test_wrong_keys_use_up_the_allowance_too(db, monkeypatch):
    with configured_client(monkeypatch, rate_limit_read="2/minute", read_key="the-read-key") as client:
        wrong = {"Authorization": "Bearer guess"}
        assert [client.get("/api/leaderboard", headers=wrong).status_code for _ in range(3)] == [401, 401, 429]


def test_no_limit_by_default(db, monkeypatch):
    with configured_client(monkeypatch, rate_limit_read=None, rate_limit_ingest=None) as client:
        assert {client.get("/api/pipeline/status").status_code for _ in range(120)} == {200}


@pytest.mark.parametrize("value", ["lots", "100 per fortnight", "-1/minute"])
def test_a_limit_slowapi_cannot_read_fails_at_start_up(monkeypatch, value):
    monkeypatch.setenv("LEADSCORE_RATE_LIMIT_READ", value)
    with pytest.raises(ValidationError, match="rate_limit_read"):
        Settings()
