"""Bulk query operations, as shopify.dev's bulk operations guide describes them.

``bulkOperationRunQuery`` checks the query (valid against the schema, at least one
connection, at most five, nested at most two levels) and answers a CREATED operation.
From API version 2026-01 an app may run up to five bulk queries at a time per shop (one
more is refused with ``LIMIT_REACHED``); before, one (``OPERATION_IN_PROGRESS``).
The query then runs in the background: the root connection is read in windows of
``WINDOW`` nodes, nested connections whole, and each window's objects are written out at
once as JSONL, so the file is streamed to disk and never held whole:

- one JSON object per line; a nested connection is not nested: each of its nodes is a
  line of its own, after its parent, with ``__parentId`` the parent's ``id``;
- ``objectCount`` counts every line, ``rootObjectCount`` the root connection's nodes;
- with no object at all the operation completes with no ``url``.

On completion (or failure, or cancellation) the operation's ``url`` serves the file and
the ``bulk_operations/finish`` webhook is sent.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeGuard

from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    SelectionSetNode,
    execute,
    get_named_type,
    parse,
    validate,
)

from cybergine.shopify.simulator.resolvers import (
    AdminContext,
    Services,
    admin_schema,
    field_resolver,
)
from cybergine.shopify.simulator.store import BulkOperation, Ids, Shop, gid, now
from cybergine.shopify.simulator.webhooks import WebhookSender, bulk_finish_payload

WINDOW = 250  # root nodes resolved and written at a time
CONCURRENT_SINCE = "2026-01"  # the first version with several bulk queries at a time
MAX_CONCURRENT = 5
MAX_CONNECTIONS = 5
MAX_NESTING = 2
FINISH_TOPIC = "bulk_operations/finish"
_ACTIVE = frozenset({"CREATED", "RUNNING", "CANCELING"})


class BulkOperations:
    """Every shop's bulk queries, their files (in a temporary directory) and runners."""

    def __init__(
        self,
        ids: Ids,
        webhooks: WebhookSender,
        file_url: Callable[[str], str],
        services: Callable[[], Services],
        *,
        version: str,
    ) -> None:
        # Versions are dates (YYYY-MM): they compare as strings.
        self.concurrent = version >= CONCURRENT_SINCE
        self.max_concurrent = MAX_CONCURRENT if self.concurrent else 1
        self._ids = ids
        self._webhooks = webhooks
        self._file_url = file_url
        self._services = services
        self._lock = threading.Lock()
        self._operations: dict[int, BulkOperation] = {}
        self._current: dict[str, int] = {}  # shop domain: its latest query operation
        self._files: dict[str, Path] = {}  # file name: path
        self._directory = Path(tempfile.mkdtemp(prefix="shopify-simulator-bulk-"))
        self._threads: list[threading.Thread] = []
        # Cleared, operations wait before they start running (a test's way to hold one
        # in progress); set, they run.
        self.gate = threading.Event()
        self.gate.set()

    # -- the API -------------------------------------------------------------------------

    def run(self, shop: Shop, query: str) -> dict[str, Any]:
        problem = _check(query)
        if problem is not None:
            return _refused(problem, "INVALID")
        with self._lock:
            running = [
                o
                for o in self._operations.values()
                if o.shop == shop.domain and o.status in _ACTIVE
            ]
            if len(running) >= self.max_concurrent and self.concurrent:
                return _refused(
                    "Bulk operations limit reached. Please try again later.", "LIMIT_REACHED"
                )
            if len(running) >= self.max_concurrent:
                return _refused(
                    "A bulk query operation for this app and shop is already in progress: "
                    f"{gid('BulkOperation', running[-1].id)}.",
                    "OPERATION_IN_PROGRESS",
                )
            operation = BulkOperation(id=self._ids.next(), shop=shop.domain, query=query)
            self._operations[operation.id] = operation
            self._current[shop.domain] = operation.id
        runner = threading.Thread(
            target=self._execute, args=(shop, operation), name="shopify-bulk", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [runner]
        answer = dataclasses.replace(operation)  # as created, whatever the runner does next
        runner.start()
        return {"bulkOperation": answer, "userErrors": []}

    def current(self, shop: Shop) -> BulkOperation | None:
        with self._lock:
            return self._operations.get(self._current.get(shop.domain, 0))

    def find(self, shop: Shop, number: int) -> BulkOperation | None:
        with self._lock:
            operation = self._operations.get(number)
        return operation if operation is not None and operation.shop == shop.domain else None

    def cancel(self, shop: Shop, number: int) -> dict[str, Any]:
        operation = self.find(shop, number)
        if operation is None or operation.status not in _ACTIVE:
            return {
                "bulkOperation": operation,
                "userErrors": [
                    {"field": ["id"], "message": "The bulk operation can no longer be canceled."}
                ],
            }
        with self._lock:
            operation.cancel_requested = True
            operation.status = "CANCELING"
        return {"bulkOperation": operation, "userErrors": []}

    def file(self, name: str) -> Path | None:
        with self._lock:
            return self._files.get(name)

    def wait(self, timeout: float = 60.0) -> None:
        """Returns once every started operation has finished (tests and benchmarks)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def close(self) -> None:
        with self._lock:
            for operation in self._operations.values():
                operation.cancel_requested = True
        self.gate.set()
        self.wait(10.0)
        shutil.rmtree(self._directory, ignore_errors=True)

    # -- the runner ------------------------------------------------------------------------

    def _execute(self, shop: Shop, operation: BulkOperation) -> None:
        name = f"{operation.id}-{secrets.token_urlsafe(16)}.jsonl"
        path = self._directory / name
        document = parse(operation.query)
        schema = admin_schema()
        self.gate.wait()
        with self._lock:
            if operation.status == "CREATED":
                operation.status = "RUNNING"
        try:
            with path.open("w", encoding="utf-8") as out:
                after = 0
                while not operation.cancel_requested:
                    context = AdminContext(
                        shop, self._services(), bulk=True, window=(after, WINDOW)
                    )
                    result = execute(
                        schema,
                        document,
                        context_value=context,
                        field_resolver=field_resolver,
                        is_awaitable=_never,  # every resolver is synchronous: skip the checks
                    )
                    assert isinstance(result, ExecutionResult)
                    if result.errors:
                        raise RuntimeError(result.errors[0].message)
                    lines, roots = 0, 0
                    for is_root, record in jsonl_records(result.data or {}):
                        out.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
                        out.write("\n")
                        lines += 1
                        roots += is_root
                    with self._lock:
                        operation.object_count += lines
                        operation.root_object_count += roots
                    if not context.window_more or context.window_end is None:
                        break
                    after = context.window_end
            final, error = ("CANCELED" if operation.cancel_requested else "COMPLETED"), None
        except (RuntimeError, OSError, GraphQLError):
            final, error = "FAILED", "INTERNAL_SERVER_ERROR"
        size = path.stat().st_size if path.exists() else 0
        with self._lock:
            operation.status, operation.error_code = final, error
            operation.completed_at = now()
            operation.file_size = size
            if operation.object_count and final == "COMPLETED":
                self._files[name] = path
                operation.url = self._file_url(name)
            elif operation.object_count:
                self._files[name] = path
                operation.partial_data_url = self._file_url(name)
        self._webhooks.send(shop, FINISH_TOPIC, bulk_finish_payload(operation))


def _never(value: Any) -> TypeGuard[Awaitable[Any]]:
    return False


def jsonl_records(data: Mapping[str, Any]) -> Iterator[tuple[bool, dict[str, Any]]]:
    """(is a root node, line object) of one execution's data, in Shopify's JSONL order."""
    for value in data.values():
        if _is_connection(value):
            for node in _nodes(value):
                yield from _node_records(node, None, root=True)
        elif isinstance(value, Mapping):
            yield from _node_records(value, None, root=True)


def _node_records(
    node: Mapping[str, Any], parent_id: Any, *, root: bool
) -> Iterator[tuple[bool, dict[str, Any]]]:
    own: dict[str, Any] = {}
    children = []
    for key, value in node.items():
        if _is_connection(value):
            children.append(value)
        else:
            own[key] = value
    if parent_id is not None:
        own["__parentId"] = parent_id
    yield root, own
    for child in children:
        for child_node in _nodes(child):
            yield from _node_records(child_node, node.get("id"), root=False)


def _is_connection(value: Any) -> bool:
    return isinstance(value, Mapping) and (
        isinstance(value.get("edges"), list) or isinstance(value.get("nodes"), list)
    )


def _nodes(connection: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    edges = connection.get("edges")
    if isinstance(edges, list):
        return [edge["node"] for edge in edges if isinstance(edge, Mapping) and edge.get("node")]
    return [n for n in connection.get("nodes") or [] if isinstance(n, Mapping)]


def _check(query: str) -> str | None:
    """Why Shopify would refuse ``query`` as a bulk query, or None."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return f"Invalid bulk query: {error.message}"
    schema = admin_schema()
    problems = validate(schema, document)
    if problems:
        return f"Invalid bulk query: {problems[0].message}"
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation.value != "query":
        return "Bulk queries must contain exactly one query operation."
    depths = list(_connection_depths(operations[0].selection_set, schema.query_type, 0))
    if not depths:
        return "Bulk queries must contain at least one connection."
    if len(depths) > MAX_CONNECTIONS:
        return f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
    if max(depths) > MAX_NESTING:
        return (
            "Bulk queries cannot contain connections with a nesting depth greater than "
            f"{MAX_NESTING}."
        )
    return None


def _connection_depths(
    selection_set: SelectionSetNode | None, parent: Any, depth: int
) -> Iterator[int]:
    if selection_set is None or not hasattr(parent, "fields"):
        return
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode):
            if getattr(selection, "selection_set", None) is not None:
                yield from _connection_depths(selection.selection_set, parent, depth)  # type: ignore[attr-defined]
            continue
        definition = parent.fields.get(selection.name.value)
        if definition is None:
            continue
        kind = get_named_type(definition.type)
        level = depth
        if kind.name.endswith("Connection"):
            level = depth + 1
            yield level
        yield from _connection_depths(selection.selection_set, kind, level)


def _refused(message: str, code: str) -> dict[str, Any]:
    return {
        "bulkOperation": None,
        "userErrors": [{"field": ["query"], "message": message, "code": code}],
    }
