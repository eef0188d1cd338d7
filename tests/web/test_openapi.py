"""The OpenAPI document promises every error an operation can answer, as a problem."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cybergine.accounts.models import Role
from cybergine.app import create_app
from cybergine.db.engine import Database
from cybergine.settings import Settings
from cybergine.web.access import is_public
from cybergine.web.problems import PROBLEM_MEDIA_TYPE
from cybergine.web.routing import api_routes
from tests.support.factories import make_api_key, make_organisation_with_key
from tests.support.server import LiveServer

PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def _statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"]}


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, run_worker=False)


def test_every_error_response_is_a_problem(app: FastAPI) -> None:
    document = app.openapi()
    operations = _operations(document)
    assert len(operations) >= 49
    for method, path, operation in operations:
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        for status, response in errors.items():
            assert response["content"] == PROBLEM, f"{method} {path} {status}"
            assert response["description"]
    problem = document["components"]["schemas"]["ProblemDetails"]
    assert set(problem["required"]) == {"type", "title", "status"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_each_operation_documents_the_errors_of_its_shape(app: FastAPI) -> None:
    document = app.openapi()
    protected = {
        (method, route.path_format)
        for route in api_routes(app.routes)
        if route.include_in_schema and not is_public(route.dependant)
        for method in route.methods
    }
    for method, path, operation in _operations(document):
        statuses = _statuses(operation)
        places = {parameter["in"] for parameter in operation.get("parameters", [])}
        if (method, path) in protected:
            assert {401, 403} <= statuses, f"{method} {path}"
            assert operation["security"] == [{"ApiKey": []}]
        else:
            assert "security" not in operation, f"{method} {path} is public"
        if "path" in places:
            assert {404, 422} <= statuses, f"{method} {path}"
        if "query" in places:
            assert 422 in statuses, f"{method} {path}"
        if "requestBody" in operation:
            assert {400, 413, 422} <= statuses, f"{method} {path}"
    assert len(protected) > 40


def test_routes_add_the_errors_their_rules_give(app: FastAPI) -> None:
    operations = {(m, p): o for m, p, o in _operations(app.openapi())}
    assert 409 in _statuses(operations["POST", "/api/v1/assistants"])
    assert 409 in _statuses(operations["DELETE", "/api/v1/members/{membership_id}"])
    assert 409 not in _statuses(operations["GET", "/api/v1/assistants"])
    assert {400, 401, 413} <= _statuses(operations["POST", "/webhooks/whatsapp"])
    assert 503 in _statuses(operations["GET", "/readyz"])
    reindex = operations["POST", "/api/v1/knowledge/documents/{document_id}/reindex"]
    assert {413, 503} <= _statuses(reindex)


async def test_real_error_answers_conform_to_the_document(
    database: Database, settings: Settings
) -> None:
    """Error answers produced for real, checked by schemathesis' own conformance checks."""
    app = create_app(settings.model_copy(update={"max_request_body_bytes": 2048}))
    schema = schemathesis.openapi.from_dict(app.openapi())
    organisation, owner_key = await make_organisation_with_key(database)
    viewer_key = await make_api_key(database, organisation.id, Role.VIEWER)
    owner = {"authorization": f"Bearer {owner_key}"}
    viewer = {"authorization": f"Bearer {viewer_key}"}
    assistants = schema["/api/v1/assistants"]["POST"]
    one_assistant = schema["/api/v1/assistants/{assistant_id}"]["GET"]

    def answers(client: httpx.Client) -> list[tuple[Any, dict[str, str], httpx.Response]]:
        named = {"name": "Mia"}
        missing = uuid.uuid4()
        client.post("/api/v1/assistants", json=named, headers=owner).raise_for_status()
        return [
            (assistants, {}, client.post("/api/v1/assistants", json=named)),
            (assistants, {}, client.post("/api/v1/assistants", json=named, headers=viewer)),
            (assistants, {}, client.post("/api/v1/assistants", json=named, headers=owner)),
            (assistants, {}, client.post("/api/v1/assistants", json={"name": 5}, headers=owner)),
            (
                assistants,
                {},
                client.post(
                    "/api/v1/assistants",
                    content=b"{not json",
                    headers={**owner, "content-type": "application/json"},
                ),
            ),
            (
                assistants,
                {},
                client.post("/api/v1/assistants", json={"name": "x" * 4096}, headers=owner),
            ),
            (
                one_assistant,
                {"assistant_id": str(missing)},
                client.get(f"/api/v1/assistants/{missing}", headers=owner),
            ),
            (
                one_assistant,
                {"assistant_id": "not-an-id"},
                client.get("/api/v1/assistants/not-an-id", headers=owner),
            ),
            (schema["/webhooks/whatsapp"]["POST"], {}, client.post("/webhooks/whatsapp", json={})),
        ]

    with LiveServer(app) as server, server.client() as client:
        results = answers(client)
    assert [response.status_code for _, _, response in results] == [
        401,
        403,
        409,
        422,
        422,
        413,
        404,
        422,
        400,
    ]
    for operation, path_parameters, response in results:
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        operation.Case(path_parameters=path_parameters).validate_response(response, checks=CHECKS)


def test_the_web_chat_api_has_a_document_of_its_own(settings: Settings) -> None:
    """The widget's operations, each with the errors it can give, the visitor token where
    one is needed, and none of them in /api/v1's document."""
    app = create_app(settings, run_worker=False)
    with TestClient(app) as client:
        document = client.get("/widget/v1/openapi.json").json()
        api = client.get("/api/v1/openapi.json").json()
    operations = {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == {
        ("POST", "/widget/v1/session"),
        ("POST", "/widget/v1/messages"),
        ("POST", "/widget/v1/handoff"),
        ("POST", "/widget/v1/rating"),
        ("GET", "/widget/v1/events"),
    }
    assert "security" not in operations["POST", "/widget/v1/session"]
    for key in [
        ("POST", "/widget/v1/messages"),
        ("POST", "/widget/v1/rating"),
        ("GET", "/widget/v1/events"),
    ]:
        assert operations[key]["security"] == [{"VisitorToken": []}]
        assert {"401", "403"} <= set(operations[key]["responses"])
    assert "202" in operations["POST", "/widget/v1/messages"]["responses"]
    assert not [path for path in api["paths"] if path.startswith("/widget")]
