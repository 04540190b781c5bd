"""API fixtures: the real app on the test database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from leadscore_pipeline.settings import get_settings


@pytest.fixture(autouse=True)
def test_client_host(monkeypatch: pytest.MonkeyPatch):
    """TestClient sends `Host: testserver`: listed here, as a deployment lists the names it is reached by."""
    monkeypatch.setenv("LEADSCORE_ALLOWED_HOSTS", "testserver")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def client(db: str):
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client
