"""Verifies the query strings Shopify signs: the ``hmac`` parameter of OAuth redirects and
admin launches, and the ``signature`` parameter of app proxy requests.

Both are a hex HMAC-SHA256 of the other parameters, decoded, in a canonical order; they
differ in how the parameters are written out:

- ``hmac``: ``key=value`` pairs sorted by key and joined with ``&``; ``%`` and ``&`` in
  keys and values, and ``=`` in keys, are percent-escaped so that a value cannot pose as
  another parameter (``a=1%26b=2`` is one parameter, not two); an array parameter
  (``ids[]=2&ids[]=1``) is written once, without brackets, as a JSON list in the order
  received (``ids=["2", "1"]``). A legacy ``signature`` parameter is not signed.
- app proxy ``signature``: ``key=value`` pairs, the values of a repeated key joined with
  ``,`` in the order received, sorted and concatenated with no separator.

Pure: no settings, no database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from cybergine.errors import InvalidInput
from cybergine.shopify.signing import DIGEST_SIZE, InvalidSignature, sign, signed_by_any

QUERY_HMAC_PARAMETER = "hmac"
APP_PROXY_SIGNATURE_PARAMETER = "signature"
# Shopify's redirects carry a handful of parameters; a query with hundreds is not one.
MAX_PARAMETERS = 64
_ARRAY_SUFFIX = "[]"
_UNSIGNED_IN_QUERY_HMAC = frozenset({QUERY_HMAC_PARAMETER, APP_PROXY_SIGNATURE_PARAMETER})

ParameterValues = str | Sequence[str]


@dataclass(frozen=True)
class SignedQuery:
    """The parameters of a verified query (without its signature), each with its values
    in the order received."""

    parameters: Mapping[str, tuple[str, ...]]

    def one(self, name: str) -> str:
        """The single value of ``name``; InvalidInput if it is missing or repeated."""
        values = self.parameters.get(name, ())
        if len(values) != 1:
            raise InvalidInput(f"{name} must appear exactly once in the query.", field=name)
        return values[0]


def parse_query(raw_query: str) -> dict[str, tuple[str, ...]]:
    """A raw query string (without ``?``) as parameters with their values in order."""
    try:
        pairs = parse_qsl(
            raw_query, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_PARAMETERS
        )
    except ValueError as error:
        raise InvalidSignature("The query has too many parameters to be Shopify's.") from error
    parameters: dict[str, list[str]] = {}
    for key, value in pairs:
        parameters.setdefault(key, []).append(value)
    return {key: tuple(values) for key, values in parameters.items()}


def query_hmac_message(parameters: Mapping[str, ParameterValues]) -> str:
    """The text Shopify signs for the ``hmac`` of a query with ``parameters``."""
    pairs: list[tuple[str, str]] = []
    for key, raw_values in parameters.items():
        if key in _UNSIGNED_IN_QUERY_HMAC:
            continue
        values = _values(raw_values)
        if key.endswith(_ARRAY_SUFFIX):
            name, value = key[: -len(_ARRAY_SUFFIX)], json.dumps(list(values))
        elif len(values) == 1:
            name, value = key, values[0]
        else:
            # Shopify repeats a key only as an array ("key[]"); a repeated plain key has
            # no canonical form, so it cannot be verified.
            raise InvalidSignature(f"The query repeats the parameter {key!r}.")
        pairs.append((_escaped(name, key=True), _escaped(value, key=False)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def verify_query_parameters(
    parameters: Mapping[str, ParameterValues], secrets: Sequence[str]
) -> SignedQuery:
    """The parameters without ``hmac`` if their ``hmac`` is right under one of ``secrets``;
    InvalidSignature otherwise."""
    digest = _hex_digest(parameters.get(QUERY_HMAC_PARAMETER))
    message = query_hmac_message(parameters).encode()
    if digest is None or not signed_by_any(message, digest, secrets):
        raise InvalidSignature("The query's hmac does not match: it did not come from Shopify.")
    return _signed(parameters, QUERY_HMAC_PARAMETER)


def verify_query_hmac(raw_query: str, secrets: Sequence[str]) -> SignedQuery:
    """``verify_query_parameters`` for a raw query string."""
    return verify_query_parameters(parse_query(raw_query), secrets)


def app_proxy_message(parameters: Mapping[str, ParameterValues]) -> str:
    """The text Shopify signs for an app proxy request with ``parameters``."""
    return "".join(
        sorted(
            f"{key}={','.join(_values(values))}"
            for key, values in parameters.items()
            if key != APP_PROXY_SIGNATURE_PARAMETER
        )
    )


def verify_app_proxy(raw_query: str, secrets: Sequence[str]) -> SignedQuery:
    """The parameters of an app proxy request without ``signature`` if it is right under
    one of ``secrets``; InvalidSignature otherwise. (Its ``timestamp`` is the caller's to
    judge: how old a storefront request may be depends on what it does.)"""
    parameters = parse_query(raw_query)
    digest = _hex_digest(parameters.get(APP_PROXY_SIGNATURE_PARAMETER))
    message = app_proxy_message(parameters).encode()
    if digest is None or not signed_by_any(message, digest, secrets):
        raise InvalidSignature(
            "The app proxy request's signature does not match: it did not come from Shopify."
        )
    return _signed(parameters, APP_PROXY_SIGNATURE_PARAMETER)


def query_hmac(parameters: Mapping[str, ParameterValues], secret: str) -> str:
    """The ``hmac`` Shopify would add to ``parameters``."""
    return sign(query_hmac_message(parameters).encode(), secret).hex()


def app_proxy_signature(parameters: Mapping[str, ParameterValues], secret: str) -> str:
    """The ``signature`` Shopify would add to an app proxy request with ``parameters``."""
    return sign(app_proxy_message(parameters).encode(), secret).hex()


def _values(values: ParameterValues) -> tuple[str, ...]:
    return (values,) if isinstance(values, str) else tuple(values)


def _escaped(text: str, *, key: bool) -> str:
    text = text.replace("%", "%25").replace("&", "%26")
    return text.replace("=", "%3D") if key else text


def _hex_digest(received: ParameterValues | None) -> bytes | None:
    values = _values(received) if received is not None else ()
    if len(values) != 1 or len(values[0]) != 2 * DIGEST_SIZE:
        return None
    try:
        return bytes.fromhex(values[0])
    except ValueError:
        return None


def _signed(parameters: Mapping[str, ParameterValues], signature_parameter: str) -> SignedQuery:
    return SignedQuery(
        {key: _values(values) for key, values in parameters.items() if key != signature_parameter}
    )
