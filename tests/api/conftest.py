"""API fixtures: the real app on the test database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app


@pytest.fixture
def client(db: str):
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client
