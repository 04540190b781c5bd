"""API fixtures: the real app on the test database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from leadscore_pipeline.settings import get_settings

ADMIN = {"Authorization": "Bearer s3cret-admin"}


@pytest.fixture
def client(db: str):
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def admin_client(db, monkeypatch):
    """The app with an admin token (ADMIN) and an ingest key (`ingest-key`) configured."""
    monkeypatch.setenv("LEADSCORE_ADMIN_TOKEN", "s3cret-admin")
    monkeypatch.setenv("LEADSCORE_INGEST_KEY", "ingest-key")
    get_settings.cache_clear()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client
    monkeypatch.undo()
    get_settings.cache_clear()
