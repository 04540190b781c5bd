"""The OpenAPI document tells the truth (every error in the API's one shape, each status a route can answer), and
the framework's own errors come in that shape."""

from __future__ import annotations

import pytest

from api.main import create_app

ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture(scope="module")
def document() -> dict:
    return create_app().openapi()


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_error_status_is_documented_with_the_api_error_shape(document):
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert set(document["components"]["schemas"]["ErrorItem"]["required"]) == {"field", "error"}
    for label, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and label != "GET /readyz":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (label, status)
        # Any parameter can hold a NUL, which every route refuses with a 422.
        assert "422" in operation["responses"], label


@pytest.mark.parametrize(
    ("label", "statuses"),
    [
        ("POST /api/events", {"202", "400", "401", "403", "413", "415", "422", "429", "503"}),
        ("POST /api/events/batch", {"202", "400", "401", "403", "413", "415", "422", "429", "503"}),
        ("POST /api/events/upload", {"202", "400", "401", "403", "413", "415", "422", "429", "503"}),
        ("POST /api/webhook", {"202", "400", "401", "403", "413", "415", "422", "429", "503"}),
        ("GET /api/events/{event_id}", {"200", "400", "401", "404", "422", "429", "503"}),
        ("GET /api/leads/{lead_key}", {"200", "400", "401", "404", "422", "429", "503"}),
        ("GET /api/leads/{lead_key}/history", {"200", "400", "401", "404", "422", "429", "503"}),
        ("GET /api/leads/{lead_key}/identities", {"200", "400", "401", "404", "422", "429", "503"}),
        ("GET /api/leads/{lead_key}/curve", {"200", "400", "401", "404", "422", "429", "503"}),
        ("GET /api/rules/{event_type}", {"200", "400", "401", "404", "422", "429", "503"}),
        ("PUT /api/rules/{event_type}", {"200", "400", "401", "403", "413", "415", "422", "503"}),
        ("DELETE /api/rules/{event_type}", {"200", "400", "401", "403", "404", "415", "422", "503"}),
        ("PUT /api/rules", {"200", "400", "401", "403", "413", "415", "422", "503"}),
        ("GET /api/rules/versions", {"200", "400", "401", "422", "429", "503"}),
        ("GET /api/rules/versions/{version}", {"200", "400", "401", "404", "422", "429", "503"}),
        (
            "POST /api/rules/versions/{version}/restore",
            {"200", "400", "401", "403", "404", "413", "415", "422", "503"},
        ),
        ("POST /api/rules/preview", {"202", "400", "401", "403", "409", "413", "415", "422", "503"}),
        ("GET /api/rules/preview/{preview_id}", {"200", "400", "401", "404", "422", "503"}),
        ("POST /api/replay", {"202", "400", "401", "403", "415", "422", "503"}),
        ("GET /api/replay/{replay_id}", {"200", "400", "401", "404", "422", "429", "503"}),
        ("GET /api/leaderboard", {"200", "400", "401", "422", "429", "503"}),
        ("GET /readyz", {"200", "400", "422", "503"}),
    ],
)
def test_each_route_documents_the_statuses_it_answers(document, label, statuses):
    assert set(dict(operations(document))[label]["responses"]) == statuses


def test_rule_paths_are_documented_as_strictly_as_they_are_checked(document):
    for operation in document["paths"]["/api/rules/{event_type}"].values():
        [path_parameter] = [p for p in operation["parameters"] if p["in"] == "path"]
        assert path_parameter["schema"]["pattern"] == "^[A-Za-z][A-Za-z0-9_]{0,63}$"


def test_framework_errors_name_the_problem_and_every_allowed_method(client):
    missing = client.get("/api/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"detail": [{"field": "path", "error": "no resource at /api/nowhere"}]}
    # GET, PUT and DELETE of a rule are three routes: Allow names them all, not the first one's.
    for method in ("OPTIONS", "PATCH", "POST"):
        response = client.request(method, "/api/rules/PAGE_VIEW")
        assert response.status_code == 405, method
        assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"
        assert response.json() == {
            "detail": [
                {
                    "field": "method",
                    "error": f"{method} is not allowed on /api/rules/PAGE_VIEW; allowed: DELETE, GET, HEAD, PUT",
                }
            ]
        }
    # As OpenAPI matches paths, the concrete /api/events/batch wins over /api/events/{event_id}.
    assert client.request("PUT", "/api/events/batch").headers["allow"] == "POST"


def test_the_new_rule_bodies_and_moments_carry_examples(document):
    schemas = document["components"]["schemas"]
    for name in ("RuleIn", "RuleSetIn", "RestoreIn"):
        assert schemas[name].get("examples"), name
    for path, name in [
        ("/api/leads/{lead_key}", "as_of"),
        ("/api/leads/{lead_key}/history", "until"),
        ("/api/leaderboard", "as_of"),
    ]:
        [parameter] = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
        assert parameter.get("examples") or parameter["schema"].get("examples"), (path, name)
