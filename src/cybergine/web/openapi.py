"""The API's OpenAPI document: FastAPI's, plus the error answers of every operation.

FastAPI documents only what a route returns when it succeeds (and a 422 in a shape we
never send). Every error we answer is an RFC 9457 problem (``web/problems.py``), and which
ones an operation can give follows from its shape: a protected route can refuse the key
(401) or its role (403), a path id can name nothing the caller may see (404), a body can be
unreadable (400), too large (413) or invalid (422). Those are added here, for every
operation at once; a route adds the few its rules can give beyond them with
``responses=may_answer(Conflict, ...)``. Each error response gets the one ``ProblemDetails``
schema under ``application/problem+json``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from cybergine.errors import CybergineError
from cybergine.web.access import UNSAFE_METHODS, is_public, refused_during_deletion_grace
from cybergine.web.problems import PROBLEM_MEDIA_TYPE
from cybergine.web.routing import api_routes

SECURITY_SCHEME = "ApiKey"
# What FastAPI calls the 422 it documents on its own; ours says which part was invalid.
FASTAPI_VALIDATION_DESCRIPTION = "Validation Error"

# Why an operation of a given shape can fail, whatever its route does.
PROTECTED_ERRORS = {
    401: "No API key, or one that is not valid or was revoked.",
    403: "The key's role does not allow this.",
}
PATH_ID_ERRORS = {
    404: "Nothing with this id in the caller's organisation (another organisation's "
    "objects look the same).",
    422: "A path parameter is not in the expected form.",
}
QUERY_ERRORS = {422: "A query parameter is not in the expected form."}
CLOSING_ERRORS = {
    423: "The organisation is scheduled for deletion: read-only until it is erased.",
}
BODY_ERRORS = {
    400: "The body could not be read.",
    413: "The body is larger than this server accepts.",
    422: "The body did not match the expected shape; `errors` says where.",
}


class FieldProblem(BaseModel):
    location: list[str] = Field(description="Where: the part of the request, then the field.")
    message: str
    type: str


class ProblemDetails(BaseModel):
    """An error, as RFC 9457 problem details (``web.problems.problem`` writes them)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="What kind of problem: a URN (urn:cybergine:problem:…) or about:blank."
    )
    title: str
    status: int
    detail: str | None = Field(default=None, description="What went wrong, for a person.")
    request_id: str | None = Field(
        default=None, description="The request's id (also its X-Request-ID), for the logs."
    )
    field: str | None = Field(default=None, description="The input field at fault, if one is.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="For an invalid request: each field at fault."
    )


def may_answer(*errors: type[CybergineError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the errors a route's rules can give beyond those of its shape."""
    return {error.status: {"description": error.title} for error in errors}


def install(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate(), api_routes(app.routes))
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(document: dict[str, Any], routes: Iterable[APIRoute]) -> None:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs"))
    schemas["ProblemDetails"] = problem
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the organisation: `Authorization: Bearer cg_…`.",
    }
    problem_content = {
        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
    }
    for route in routes:
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][route.path_format].get(method.lower())
            if operation is None:
                continue
            protected = not is_public(route.dependant)
            if protected:
                operation["security"] = [{SECURITY_SCHEME: []}]
            responses = operation.setdefault("responses", {})
            shape = _shape_errors(operation, protected=protected)
            if method in UNSAFE_METHODS and refused_during_deletion_grace(route.dependant):
                shape |= CLOSING_ERRORS
            for status, description in shape.items():
                declared = responses.setdefault(str(status), {"description": description})
                if declared.get("description") == FASTAPI_VALIDATION_DESCRIPTION:
                    declared["description"] = description
            for status, response in responses.items():
                if status[0] in "45":  # 4XX and 5XX ranges included
                    response["content"] = problem_content
            operation["responses"] = dict(sorted(responses.items()))
    # FastAPI's own 422 shape, replaced above wherever it was used.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)


def _shape_errors(operation: dict[str, Any], *, protected: bool) -> dict[int, str]:
    errors: dict[int, str] = {}
    places = {parameter["in"] for parameter in operation.get("parameters", [])}
    if "requestBody" in operation:
        errors |= BODY_ERRORS
    if "query" in places:
        errors |= QUERY_ERRORS
    if "path" in places:
        errors |= PATH_ID_ERRORS
    if protected:
        errors |= PROTECTED_ERRORS
    return dict(sorted(errors.items()))


WIDGET_PATH_PREFIX = "/widget/v1/"
VISITOR_SCHEME = "VisitorToken"


def widget_document(app: FastAPI) -> dict[str, Any]:
    """The web chat API the widget speaks, as a document of its own: for whoever builds
    their own chat front end, and for the fuzzer. It is not part of ``/api/v1``'s
    document (another audience, another credential): its routes are public, and those
    that act for a visitor take the visitor token from the session as a bearer token."""
    from fastapi.openapi.utils import get_openapi

    routes = []
    for route in api_routes(app.routes):
        if (
            route.path.startswith(WIDGET_PATH_PREFIX)
            and (route.methods or set()) & {"GET", "POST"}
            and not route.path.endswith("/openapi.json")
        ):
            shown = copy.copy(route)
            shown.include_in_schema = True
            routes.append(shown)
    document = get_openapi(
        title="Cybergine web chat",
        version=app.version,
        description="What the chat widget (`/widget.js`) speaks. Requests from a browser "
        "must come from one of the assistant's allowed origins.",
        routes=routes,
    )
    document_errors(document, routes)
    document["components"]["securitySchemes"] = {
        VISITOR_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "The visitor token `POST /widget/v1/session` answers.",
        }
    }
    for operations in document["paths"].values():
        for operation in operations.values():
            if "401" in operation.get("responses", {}):
                operation["security"] = [{VISITOR_SCHEME: []}]
    return document
