"""Schemathesis over every operation of the API, served by uvicorn on the test database with auth configured:
whatever it sends, valid or not, no answer is a server error.

- `/api/stream` is left out: an endless Server-Sent Events stream never completes a response to check.
- Replay talks to the Dagster webserver, which is not running here: its documented answer for "Dagster is down"
  is a 503 (field `dagster`), so a 503 is accepted from `/api/replay*`, and any other 5xx is not.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator

import pytest
import schemathesis

from api.main import create_app
from leadscore_pipeline.settings import get_settings
from tests.api.live_server import serve

TOKEN = "schemathesis-admin-and-ingest-token"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"schemathesis webhook secret").decode()
DEPENDENCY_DOWN_PATHS = ("/api/replay",)
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261128,
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "generation": {"mode": "all", "max-examples": 25, "deterministic": True},
    }
)
# The app's own OpenAPI document, the one it serves at /openapi.json; the requests go to the running server.
schema = schemathesis.openapi.from_dict(create_app().openapi(), config=CONFIG).exclude(path="/api/stream")


@pytest.fixture(scope="module")
def api_url(database_url: str) -> Iterator[str]:
    with socket.socket() as dagster, pytest.MonkeyPatch.context() as env:
        dagster.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused, like a Dagster that is down
        env.setenv("LEADSCORE_ADMIN_TOKEN", TOKEN)
        env.setenv("LEADSCORE_INGEST_KEY", TOKEN)
        env.setenv("LEADSCORE_READ_KEY", TOKEN)
        env.setenv("LEADSCORE_WEBHOOK_SECRETS", WEBHOOK_SECRET)
        env.setenv("LEADSCORE_DAGSTER_URL", f"http://127.0.0.1:{dagster.getsockname()[1]}")
        get_settings.cache_clear()
        try:
            with serve(create_app()) as base_url:
                yield base_url
        finally:
            env.undo()
            get_settings.cache_clear()


@schema.parametrize()
def test_no_request_gets_a_server_error(case: schemathesis.Case, api_url: str) -> None:
    response = case.call(base_url=api_url, timeout=30)
    dependency_down = response.status_code == 503 and case.path.startswith(DEPENDENCY_DOWN_PATHS)
    assert response.status_code < 500 or dependency_down, (
        f"{response.status_code} {response.content[:500]!r}\n{case.as_curl_command()}"
    )
