"""A TestClient of the app created under given LEADSCORE_* settings, restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from leadscore_pipeline.settings import get_settings


@contextmanager
def configured_client(
    monkeypatch: pytest.MonkeyPatch, base_url: str = "http://testserver", **settings: str | None
) -> Iterator[TestClient]:
    """`read_key="k"` sets LEADSCORE_READ_KEY=k; None unsets it. The settings stay until the test ends."""
    for name, value in settings.items():
        if value is None:
            monkeypatch.delenv(f"LEADSCORE_{name.upper()}", raising=False)
        else:
            monkeypatch.setenv(f"LEADSCORE_{name.upper()}", value)
    get_settings.cache_clear()
    with TestClient(create_app(), base_url=base_url, raise_server_exceptions=False) as client:
        yield client
