"""``POST {admin}/admin/api/{version}/graphql.json``: one GraphQL Admin API request, run
with graphql-core over the subset's schema, priced and throttled as Shopify does
(``cost``), answered in Shopify's shapes:

- no or a bad ``X-Shopify-Access-Token``: HTTP 401,
  ``{"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}``;
- no ``query``: HTTP 400, ``{"errors": {"query": "Required parameter missing or invalid"}}``;
- a query that does not parse or validate: HTTP 200 with ``errors`` (and no ``data``);
- too costly: HTTP 200, ``MAX_COST_EXCEEDED``; bucket short: HTTP 200, ``THROTTLED``;
- otherwise HTTP 200 with ``data`` (and ``errors`` for fields that failed) and
  ``extensions.cost``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, TypeGuard

from graphql import (
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    execute,
    parse,
    validate,
)
from graphql.utilities import get_operation_ast

from cybergine.shopify.simulator.cost import (
    MAX_SINGLE_QUERY_COST,
    LeakyBucket,
    cost_extension,
    query_cost,
)
from cybergine.shopify.simulator.resolvers import AdminContext, admin_schema, field_resolver

INVALID_TOKEN = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}
MISSING_QUERY = {"errors": {"query": "Required parameter missing or invalid"}}
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"


def run(context: AdminContext, body: Any, bucket: LeakyBucket) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of one request."""
    if not isinstance(body, Mapping) or not isinstance(body.get("query"), str):
        return 400, MISSING_QUERY
    variables = body.get("variables") or {}
    if not isinstance(variables, Mapping):
        return 200, _errors([GraphQLError("Variables must be an object.")])
    schema = admin_schema()
    try:
        document = parse(body["query"])
    except GraphQLError as error:
        return 200, _errors([error])
    problems = validate(schema, document)
    if problems:
        return 200, _errors(problems)
    name = body.get("operationName")
    operation = get_operation_ast(document, name if isinstance(name, str) else None)
    if operation is None:
        return 200, _errors([GraphQLError("An operation name is required.")])
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    requested = query_cost(schema, operation, fragments, variables)
    if requested > MAX_SINGLE_QUERY_COST:
        return 200, {
            "errors": [
                {
                    "message": f"Query cost is {requested}, which exceeds the single query max "
                    f"cost limit ({MAX_SINGLE_QUERY_COST}).",
                    "extensions": {
                        "code": "MAX_COST_EXCEEDED",
                        "cost": requested,
                        "maxCost": MAX_SINGLE_QUERY_COST,
                    },
                }
            ],
            "extensions": cost_extension(requested, None, bucket),
        }
    if not bucket.take(requested):
        return 200, {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC},
                }
            ],
            "extensions": cost_extension(requested, None, bucket),
        }
    result = execute(
        schema,
        document,
        variable_values=dict(variables),
        operation_name=operation.name.value if operation.name else None,
        context_value=context,
        field_resolver=field_resolver,
        is_awaitable=_never,  # every resolver is synchronous: skip graphql-core's checks
    )
    assert isinstance(result, ExecutionResult)  # every resolver is synchronous
    actual = query_cost(schema, operation, fragments, variables, result.data or {})
    bucket.give_back(requested - actual)
    answer: dict[str, Any] = {}
    if result.errors:
        answer["errors"] = [error.formatted for error in result.errors]
    answer["data"] = result.data
    answer["extensions"] = cost_extension(requested, actual, bucket)
    return 200, answer


def _never(value: Any) -> TypeGuard[Awaitable[Any]]:
    return False


def _errors(errors: list[GraphQLError]) -> dict[str, Any]:
    return {"errors": [error.formatted for error in errors]}
