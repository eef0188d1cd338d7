"""``metafieldsSet`` on the app's installation: the app-data metafields a theme app
extension reads as ``app.metafields.<namespace>.<key>.value``.

As Shopify's (GraphQL Admin API 2026-07, ``metafieldsSet``): at most 25 metafields a call;
atomic, so one refused input leaves every metafield as it was and the payload's
``metafields`` is null; each refusal a ``MetafieldsSetUserError`` with the input's path
(``["metafields", "<index>", "<field>"]``), its ``elementIndex`` and a
``MetafieldsSetUserErrorCode``. A metafield is found by owner, namespace and key and
updated in place (its id stays); a new one needs a ``type``, an existing one keeps its
type when none is given. A missing namespace is the app's reserved one
(``app--{client id}``). The simulator keeps metafields of the app installation only: an
owner of another kind is refused as ``DISALLOWED_OWNER_TYPE``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from cybergine.shopify.simulator.store import Ids, Metafield, Shop, gid, now, parse_gid

MAX_METAFIELDS = 25
NAMESPACE_LENGTH = (3, 255)
KEY_LENGTH = (2, 64)
SINGLE_LINE_LENGTH = 5_000  # below Shopify's value size limit, plenty for the simulator
# The metafield types the simulator checks values of (a subset of Shopify's).
TYPES = (
    "boolean",
    "json",
    "multi_line_text_field",
    "number_integer",
    "single_line_text_field",
    "url",
)


def installation_id(shop: Shop) -> str:
    return gid("AppInstallation", shop.shop_id)


def find(shop: Shop, namespace: str, key: str) -> Metafield | None:
    with shop.lock:
        return next(
            (m for m in shop.app_metafields.values() if (m.namespace, m.key) == (namespace, key)),
            None,
        )


def values_by_namespace(shop: Shop) -> dict[str, dict[str, str]]:
    """The Liquid ``app.metafields``: values by namespace and key."""
    found: dict[str, dict[str, str]] = {}
    with shop.lock:
        for metafield in shop.app_metafields.values():
            found.setdefault(metafield.namespace, {})[metafield.key] = metafield.value
    return found


class AppMetafields:
    def __init__(self, ids: Ids, client_id: str) -> None:
        self._ids = ids
        self._app_namespace = f"app--{client_id}"

    def set(self, shop: Shop, inputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The ``MetafieldsSetPayload`` of ``metafieldsSet(metafields: inputs)``."""
        if len(inputs) > MAX_METAFIELDS:
            return _refused(
                [
                    _error(
                        ["metafields"],
                        f"Exceeded the maximum metafields input limit of {MAX_METAFIELDS}.",
                        "LESS_THAN_OR_EQUAL_TO",
                    )
                ]
            )
        with shop.lock:
            cleaned: list[tuple[str, str, str, str]] = []
            errors: list[dict[str, Any]] = []
            for index, given in enumerate(inputs):
                outcome = self._clean(shop, index, given)
                if isinstance(outcome, dict):
                    errors.append(outcome)
                else:
                    cleaned.append(outcome)
            if errors:
                return _refused(errors)
            written = [self._write(shop, *values) for values in cleaned]
        return {"metafields": written, "userErrors": []}

    def _clean(
        self, shop: Shop, index: int, given: Mapping[str, Any]
    ) -> tuple[str, str, str, str] | dict[str, Any]:
        def refuse(name: str, message: str, code: str) -> dict[str, Any]:
            return _error(["metafields", str(index), name], message, code, index)

        owner = parse_gid(given.get("ownerId"))
        if owner is None:
            return refuse("ownerId", "Owner does not exist.", "INVALID")
        if owner[0] != "AppInstallation":
            return refuse(
                "ownerId", "Owner type can't be used in this mutation.", "DISALLOWED_OWNER_TYPE"
            )
        if owner[1] != shop.shop_id:
            return refuse("ownerId", "Owner does not exist.", "INVALID")
        namespace = given.get("namespace")
        namespace = self._app_namespace if namespace in (None, "$app") else str(namespace)
        if not NAMESPACE_LENGTH[0] <= len(namespace) <= NAMESPACE_LENGTH[1]:
            return refuse(
                "namespace",
                f"Namespace must be {NAMESPACE_LENGTH[0]} to {NAMESPACE_LENGTH[1]} characters.",
                "TOO_SHORT" if len(namespace) < NAMESPACE_LENGTH[0] else "TOO_LONG",
            )
        key = str(given.get("key") or "")
        if not key:
            return refuse("key", "Key can't be blank.", "BLANK")
        if not KEY_LENGTH[0] <= len(key) <= KEY_LENGTH[1]:
            return refuse(
                "key",
                f"Key must be {KEY_LENGTH[0]} to {KEY_LENGTH[1]} characters.",
                "TOO_SHORT" if len(key) < KEY_LENGTH[0] else "TOO_LONG",
            )
        existing = find(shop, namespace, key)
        kind = given.get("type") or (existing.type if existing else None)
        if not kind:
            return refuse("type", "Type can't be blank.", "BLANK")
        if kind not in TYPES:
            return refuse(
                "type", f"Type must be one of the following: {', '.join(TYPES)}.", "INVALID_TYPE"
            )
        value = given.get("value")
        if not isinstance(value, str) or not value.strip():
            return refuse("value", "Value can't be blank.", "BLANK")
        problem = _value_problem(kind, value)
        if problem is not None:
            return refuse("value", problem, "INVALID_VALUE")
        return namespace, key, str(kind), value

    def _write(self, shop: Shop, namespace: str, key: str, kind: str, value: str) -> Metafield:
        existing = find(shop, namespace, key)
        if existing is not None:
            existing.type, existing.value, existing.updated_at = kind, value, now()
            return existing
        metafield = Metafield(
            id=self._ids.next(), namespace=namespace, key=key, type=kind, value=value
        )
        shop.app_metafields[metafield.id] = metafield
        return metafield


def _value_problem(kind: str, value: str) -> str | None:
    if kind == "single_line_text_field":
        if "\n" in value or "\r" in value:
            return "Value must be a single line of text."
        if len(value) > SINGLE_LINE_LENGTH:
            return f"Value is too long (maximum is {SINGLE_LINE_LENGTH} characters)."
    elif kind == "url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https", "mailto", "sms", "tel") or not (
            parts.netloc or parts.scheme in ("mailto", "sms", "tel")
        ):
            return "Value must be a URL with one of the schemes http, https, mailto, sms or tel."
    elif kind == "boolean":
        if value not in ("true", "false"):
            return "Value must be true or false."
    elif kind == "number_integer":
        try:
            int(value)
        except ValueError:
            return "Value must be an integer."
    elif kind == "json":
        try:
            json.loads(value)
        except ValueError:
            return "Value must be valid JSON."
    return None


def _error(path: list[str], message: str, code: str, index: int | None = None) -> dict[str, Any]:
    return {"field": path, "message": message, "code": code, "elementIndex": index}


def _refused(errors: list[dict[str, Any]]) -> dict[str, Any]:
    # Atomic: nothing was written, and the payload names no metafield.
    return {"metafields": None, "userErrors": errors}
