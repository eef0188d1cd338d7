"""Calculated query cost and the leaky bucket, as shopify.dev ("GraphQL Admin API rate
limits") describes them.

- A field returning a scalar or an enum costs 0, an object 1; a connection costs 2 plus
  its page size (``first`` or ``last``) times the cost of one node; a mutation's root field
  costs 10. The requested cost is computed from the query before it runs (page sizes as
  asked); the actual cost from what it returned (page sizes as served).
- A query whose requested cost exceeds the single-query maximum (1,000) is refused with
  ``MAX_COST_EXCEEDED``.
- Each app and shop has a bucket of points that refills at the restore rate. A query
  needs its requested cost available; it takes that much, and the difference between
  requested and actual cost is given back when it finishes. Short of points, the answer
  is HTTP 200 with ``errors[{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]``.
- Every answer reports ``extensions.cost``: ``requestedQueryCost``, ``actualQueryCost``
  (null when throttled) and ``throttleStatus`` (``maximumAvailable``,
  ``currentlyAvailable``, ``restoreRate``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
)
from graphql.utilities import value_from_ast_untyped

OBJECT_COST = 1
CONNECTION_COST = 2
MUTATION_COST = 10
MAX_SINGLE_QUERY_COST = 1000
# Shopify's standard plan: 100 points a second; the bucket holds twenty seconds of it.
DEFAULT_MAXIMUM = 2000.0
DEFAULT_RESTORE_RATE = 100.0
_WRAPPERS = frozenset({"edges", "nodes"})  # a connection's node lists, priced as its nodes


@dataclass
class CostWalk:
    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]

    def operation(self, operation: OperationDefinitionNode, data: Any = None) -> int:
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        if operation.operation.value == "mutation":
            return MUTATION_COST * len(self._fields(operation.selection_set, root))
        return self._selection(operation.selection_set, root, data)

    def _fields(self, selection_set: SelectionSetNode, parent: Any) -> list[tuple[FieldNode, Any]]:
        """The fields a selection set selects, each with the type it is selected on
        (fragments spread out, on their type condition)."""
        fields: list[tuple[FieldNode, Any]] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                fields.append((selection, parent))
                continue
            if isinstance(selection, InlineFragmentNode):
                inner, condition = selection.selection_set, selection.type_condition
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is None:
                    continue
                inner, condition = fragment.selection_set, fragment.type_condition
            else:
                continue
            on = self.schema.get_type(condition.name.value) if condition else parent
            fields.extend(self._fields(inner, on or parent))
        return fields

    def _selection(self, selection_set: SelectionSetNode | None, parent: Any, data: Any) -> int:
        if selection_set is None or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0
        total = 0
        for field, on in self._fields(selection_set, parent):
            definition = getattr(on, "fields", {}).get(field.name.value)
            if definition is None:
                continue
            key = field.alias.value if field.alias else field.name.value
            value = data.get(key) if isinstance(data, Mapping) else None
            total += self._field(field, get_named_type(definition.type), value, data is not None)
        return total

    def _field(self, field: FieldNode, kind: Any, value: Any, actual: bool) -> int:
        if is_leaf_type(kind):
            return 0
        if kind.name.endswith("Connection"):
            return CONNECTION_COST + self._connection(field, kind, value, actual)
        if actual:
            if value is None:
                return 0
            items = value if isinstance(value, list) else [value]
            return sum(OBJECT_COST + self._selection(field.selection_set, kind, i) for i in items)
        return OBJECT_COST + self._selection(field.selection_set, kind, None)

    def _connection(self, field: FieldNode, kind: Any, value: Any, actual: bool) -> int:
        total = 0
        selected = self._fields(field.selection_set, kind) if field.selection_set else []
        for inner, _ in selected:
            if inner.name.value not in _WRAPPERS:
                continue  # pageInfo and the like are free
            key = inner.alias.value if inner.alias else inner.name.value
            node_type = kind.fields["nodes"].type
            node_type = get_named_type(node_type)
            if actual:
                items = value.get(key) if isinstance(value, Mapping) else None
                for item in items or []:
                    node = item.get("node") if inner.name.value == "edges" else item
                    selection = self._node_selection(inner)
                    total += OBJECT_COST + self._selection(selection, node_type, node or {})
            else:
                size = self._page_size(field)
                selection = self._node_selection(inner)
                total += size * (OBJECT_COST + self._selection(selection, node_type, None))
        return total

    def _node_selection(self, inner: FieldNode) -> SelectionSetNode | None:
        """The selection on the node: ``nodes { ... }`` or ``edges { node { ... } }``."""
        if inner.name.value == "nodes" or inner.selection_set is None:
            return inner.selection_set
        for selection in inner.selection_set.selections:
            if isinstance(selection, FieldNode) and selection.name.value == "node":
                return selection.selection_set
        return None

    def _page_size(self, field: FieldNode) -> int:
        for argument in field.arguments or ():
            if argument.name.value in ("first", "last"):
                value = value_from_ast_untyped(argument.value, dict(self.variables))
                if isinstance(value, int):
                    return max(value, 0)
        return 0


def query_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    data: Any = None,
) -> int:
    """The requested cost (``data`` None) or the actual cost of what ``data`` holds."""
    return CostWalk(schema, fragments, variables).operation(operation, data)


class LeakyBucket:
    """One app's points at one shop (thread-safe; the clock is a parameter for tests)."""

    def __init__(
        self, maximum: float = DEFAULT_MAXIMUM, restore_rate: float = DEFAULT_RESTORE_RATE
    ) -> None:
        self.maximum = maximum
        self.restore_rate = restore_rate
        self._available = maximum
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self, at: float) -> None:
        elapsed = max(at - self._at, 0.0)
        self._available = min(self.maximum, self._available + elapsed * self.restore_rate)
        self._at = at

    def take(self, cost: float, *, at: float | None = None) -> bool:
        """Takes ``cost`` points if they are there; False (nothing taken) otherwise."""
        with self._lock:
            self._refill(time.monotonic() if at is None else at)
            if cost > self._available:
                return False
            self._available -= cost
            return True

    def give_back(self, points: float) -> None:
        with self._lock:
            self._available = min(self.maximum, self._available + max(points, 0.0))

    def drain(self, points: float | None = None) -> None:
        """Empties the bucket (or takes ``points``): tests of the throttled path."""
        with self._lock:
            self._refill(time.monotonic())
            self._available = 0.0 if points is None else max(0.0, self._available - points)

    def status(self) -> dict[str, float]:
        with self._lock:
            self._refill(time.monotonic())
            return {
                "maximumAvailable": float(self.maximum),
                "currentlyAvailable": float(int(self._available)),
                "restoreRate": float(self.restore_rate),
            }


def cost_extension(requested: int, actual: int | None, bucket: LeakyBucket) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": bucket.status(),
        }
    }
