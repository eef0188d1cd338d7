"""Connections paged by cursor as Shopify's are (``first``/``after``, ``last``/``before``,
``reverse``; at most 250 a page; one of ``first`` or ``last`` required), with opaque cursors
over the objects' ids. In a bulk operation connections have no page size: the root
connection is walked in windows by the bulk runner and nested ones are read whole."""

from __future__ import annotations

import base64
import bisect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError

if TYPE_CHECKING:
    from cybergine.shopify.simulator.resolvers import Info

MAX_PAGE_SIZE = 250  # Shopify: a connection returns at most 250 nodes a page


def cursor_for(number: int) -> str:
    raw = json.dumps({"last_id": number, "last_value": str(number)}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _cursor_id(cursor: str) -> int:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return int(data["last_id"])
    except (ValueError, KeyError, TypeError) as error:
        raise GraphQLError("Invalid cursor for current pagination sort.") from error


def connection(
    info: Info,
    ids: Sequence[int],
    load: Callable[[int], Any],
    arguments: Mapping[str, Any],
) -> dict[str, Any]:
    """One page of a connection over objects identified by ascending ``ids``."""
    context = info.context
    first, last = arguments.get("first"), arguments.get("last")
    after, before = arguments.get("after"), arguments.get("before")
    reverse = bool(arguments.get("reverse"))
    root = info.path.prev is None
    if context.bulk and root and context.window is not None:
        after_id, size = context.window
        after, first, last, before = (cursor_for(after_id) if after_id else None), size, None, None
    elif context.bulk:
        first = last = None
    else:
        if first is None and last is None:
            raise GraphQLError("you must provide one of first or last")
        if max(first or 0, last or 0) > MAX_PAGE_SIZE or min(first or 0, last or 0) < 0:
            raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}.")
    lo, hi = 0, len(ids)
    if after is not None:
        point = _cursor_id(after)
        if reverse:
            hi = bisect.bisect_left(ids, point)
        else:
            lo = bisect.bisect_right(ids, point)
    if before is not None:
        point = _cursor_id(before)
        if reverse:
            lo = bisect.bisect_right(ids, point, lo, hi)
        else:
            hi = bisect.bisect_left(ids, point, lo, hi)
    window = list(ids[lo:hi])
    if reverse:
        window.reverse()
    more_after = more_before = False
    if first is not None and len(window) > first:
        window, more_after = window[:first], True
    if last is not None and len(window) > last:
        window, more_before = window[-last:], True
    more_after = more_after or (before is not None and (hi < len(ids) if not reverse else lo > 0))
    more_before = more_before or (after is not None and (lo > 0 if not reverse else hi < len(ids)))
    nodes = [node for node in (load(n) for n in window) if node is not None]
    if context.bulk and root:
        context.window_end = window[-1] if window else None
        context.window_more = more_after
    return {
        "edges": [
            {"cursor": cursor_for(n), "node": node} for n, node in zip(window, nodes, strict=False)
        ],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": more_after,
            "hasPreviousPage": more_before,
            "startCursor": cursor_for(window[0]) if window else None,
            "endCursor": cursor_for(window[-1]) if window else None,
        },
    }
