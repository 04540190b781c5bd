"""Schemathesis over every operation of the API, served by uvicorn on a test database holding scored leads, an
event, a rejected CSV row, with auth configured: every answer conforms to the OpenAPI document (status code,
content type, headers, response schema, Allow), valid requests are accepted, invalid ones refused, and none is a
server error. These are all of schemathesis' checks for single requests (`call_and_validate` with the defaults);
the stateful ones need links the document does not declare.

- `/api/stream` is left out: an endless Server-Sent Events stream never completes a response to check.
- Replay talks to the Dagster webserver, which is not running here: its documented answer for "Dagster is down"
  is a 503 (field `dagster`), so a 503 is expected from `/api/replay*`, and any other 5xx is not.
- A schema-valid request may still be a 422 where the rule is not one JSON Schema can say: an event's timestamp
  within an hour of now, an email or a lead_id somewhere in it, a CSV file's contents, an opaque page cursor, a rule
  note with a lone surrogate (no character, so Postgres cannot store it), an event type given twice in a rule set.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator

import httpx
import psycopg
import pytest
import schemathesis

from api.main import create_app
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope
from leadscore_pipeline.settings import get_settings
from tests.api.live_server import serve
from tests.conftest import reset_database
from tests.pipeline.helpers import event, land

TOKEN = "schemathesis-admin-and-ingest-token"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"schemathesis webhook secret").decode()
DEPENDENCY_DOWN = {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}}
# The positive_data_acceptance defaults, and 422 for rules a JSON Schema cannot state (see the module's docstring).
SEMANTIC_422 = {
    "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]}
}
# A batch past 2,000 events, or past the byte limit, is refused with 413 (SPEC §2), not 422.
TOO_LARGE_413 = {
    "negative_data_rejection": {
        "expected-statuses": ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
    }
}
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261128,
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "generation": {"mode": "all", "max-examples": 25, "deterministic": True},
        "operations": [
            {"include-path-regex": "^/api/replay", "checks": DEPENDENCY_DOWN},
            {"include-path-regex": "^/api/events(/batch|/upload)?$", "checks": SEMANTIC_422 | TOO_LARGE_413},
            {"include-path": "/api/webhook", "checks": TOO_LARGE_413},
            {"include-path": "/api/leads", "checks": SEMANTIC_422},
            {"include-path-regex": "^/api/rules", "checks": SEMANTIC_422},
        ],
    }
)
# The app's own OpenAPI document, the one it serves at /openapi.json; the requests go to the running server.
schema = schemathesis.openapi.from_dict(create_app().openapi(), config=CONFIG).exclude(path="/api/stream")
UPLOAD = b"""event_id,event_type,lead_id,email,timestamp,metadata
u1,PAGE_VIEW,,cy@acme.io,2026-11-20T09:00:00Z,{}
u2,PAGE_VIEW,,not an address,2026-11-20T09:00:00Z,{}
"""


def seed(url: str, base_url: str) -> None:
    """Leads with scores and history (an email, an external id), a CSV upload with a rejected row."""
    reset_database(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        land(
            conn,
            event("s1", "PURCHASE", "2026-11-20T10:00:00Z", metadata={"name": "Ann", "company": "Acme"}),
            event("s2", "DEMO_REQUEST", "2026-11-21T10:00:00Z", email="bob@globex.com"),
            event("s3", "PAGE_VIEW", "2026-11-22T10:00:00Z", email=None, lead_id="CRM-1"),
        )
        upload = httpx.post(
            f"{base_url}/api/events/upload",
            files={"file": ("seed.csv", UPLOAD, "text/csv")},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert upload.json()["rejected"] == 1, upload.text
        run_all_steps(conn, Scope(incremental=True))


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
                seed(database_url, base_url)
                yield base_url
        finally:
            env.undo()
            get_settings.cache_clear()


@schema.parametrize()
def test_every_answer_conforms_to_the_document(case: schemathesis.Case, api_url: str) -> None:
    case.call_and_validate(base_url=api_url, timeout=30)
