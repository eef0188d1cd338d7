"""The signed query strings: OAuth/admin ``hmac`` and app proxy ``signature``, against the
published vectors, with secret rotation and tampering."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from cybergine.errors import InvalidInput
from cybergine.shopify.query_hmac import (
    app_proxy_message,
    app_proxy_signature,
    parse_query,
    query_hmac,
    query_hmac_message,
    verify_app_proxy,
    verify_query_hmac,
    verify_query_parameters,
)
from cybergine.shopify.signing import InvalidSignature
from tests.shopify.signed_fixtures import vectors

OAUTH = vectors("oauth_query_hmac_hex_vectors.json")
PROXY = vectors("app_proxy_signature_hex_vectors.json")
SECRET = "shpss_0123456789abcdef0123456789abcdef"
PREVIOUS_SECRET = "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"
LAUNCH = {
    "embedded": "1",
    "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvY3liZXJnaW5lLWRlbW8",
    "shop": "cybergine-demo.myshopify.com",
    "timestamp": "1764680000",
}


def oauth_parameters(vector: dict[str, Any]) -> dict[str, Any]:
    if "raw_query" in vector:
        parsed = parse_query(vector["raw_query"])
        return {key: values[0] if len(values) == 1 else values for key, values in parsed.items()}
    return dict(vector["query_params"], hmac=vector["hmac"])


def signed_query(parameters: dict[str, str], secret: str) -> str:
    return urlencode({**parameters, "hmac": query_hmac(parameters, secret)})


def test_the_vector_tables_are_the_ones_we_expect() -> None:
    assert len(OAUTH) == 7
    assert [v["expected_valid"] for v in OAUTH].count(False) == 1
    assert {v["id"] for v in PROXY} == {
        "laravel_proxy_docs_2011",
        "laravel_proxy_array_format",
        "shopify_docs_proxy_logged_in",
        "shopify_docs_proxy_anonymous",
    }


@pytest.mark.parametrize("vector", OAUTH, ids=lambda v: v["id"])
def test_the_signed_message_is_the_published_one(vector: dict[str, Any]) -> None:
    assert query_hmac_message(oauth_parameters(vector)) == vector["message"]


@pytest.mark.parametrize("vector", OAUTH, ids=lambda v: v["id"])
def test_a_published_query_hmac_verifies_or_not_as_published(vector: dict[str, Any]) -> None:
    parameters = oauth_parameters(vector)
    if vector["expected_valid"]:
        verified = verify_query_parameters(parameters, [vector["secret"]])
        assert "hmac" not in verified.parameters
        if "shop" in parameters:
            assert verified.one("shop") == parameters["shop"]
    else:
        with pytest.raises(InvalidSignature):
            verify_query_parameters(parameters, [vector["secret"]])


def test_the_published_install_request_verifies_from_its_raw_query() -> None:
    (vector,) = [v for v in OAUTH if "raw_query" in v]
    verified = verify_query_hmac(vector["raw_query"], [vector["secret"]])
    assert verified.one("shop") == "some-shop.myshopify.com"
    assert verified.one("state") == "0.6784241404160823"
    with pytest.raises(InvalidSignature):
        verify_query_hmac(vector["raw_query"], ["not-" + vector["secret"]])


def test_an_escaped_delimiter_cannot_pose_as_another_parameter() -> None:
    (vector,) = [v for v in OAUTH if v["id"] == "python_api_delimiter_escaping"]
    signed = oauth_parameters(vector)
    verify_query_parameters(signed, [vector["secret"]])
    # The same characters, split into the parameters they spell, are another message.
    split = {"a": "1", "b": "2", "c": "3", "d": "4", "hmac": vector["hmac"]}
    with pytest.raises(InvalidSignature):
        verify_query_parameters(split, [vector["secret"]])


def test_any_change_to_a_signed_query_is_refused() -> None:
    query = signed_query(LAUNCH, SECRET)
    verify_query_hmac(query, [SECRET])
    tampered = [
        query.replace("cybergine-demo", "cybergine-demO"),
        query.replace("timestamp=1764680000", "timestamp=1764680001"),
        query + "&extra=1",
        query.replace("embedded=1&", ""),
        query.replace("hmac=", "hmac=0"),
        query.replace("hmac=", "signature=") + "&hmac=",
    ]
    for variant in tampered:
        with pytest.raises(InvalidSignature):
            verify_query_hmac(variant, [SECRET])


def test_the_previous_secret_is_accepted_during_a_rotation() -> None:
    old = signed_query(LAUNCH, PREVIOUS_SECRET)
    verify_query_hmac(old, [SECRET, PREVIOUS_SECRET])
    with pytest.raises(InvalidSignature):
        verify_query_hmac(old, [SECRET])


@pytest.mark.parametrize(
    "hmac_value",
    ["", "zz" * 32, "ab" * 31, "ab" * 33, "AB" * 32 + " ", ["ab" * 32, "ab" * 32]],
)
def test_a_malformed_hmac_is_refused(hmac_value: Any) -> None:
    with pytest.raises(InvalidSignature):
        verify_query_parameters({**LAUNCH, "hmac": hmac_value}, [SECRET])


def test_the_hmac_is_case_insensitive_hex() -> None:
    verify_query_parameters({**LAUNCH, "hmac": query_hmac(LAUNCH, SECRET).upper()}, [SECRET])


def test_a_repeated_plain_parameter_is_refused() -> None:
    query = signed_query(LAUNCH, SECRET) + "&shop=evil.myshopify.com"
    with pytest.raises(InvalidSignature, match="repeats"):
        verify_query_hmac(query, [SECRET])


def test_a_query_with_too_many_parameters_is_refused() -> None:
    with pytest.raises(InvalidSignature):
        verify_query_hmac("&".join(f"p{n}=1" for n in range(100)), [SECRET])


def test_one_value_is_required_of_a_parameter_read_alone() -> None:
    verified = verify_query_hmac(signed_query(LAUNCH, SECRET), [SECRET])
    with pytest.raises(InvalidInput) as missing:
        verified.one("code")
    assert missing.value.extra == {"field": "code"}


@pytest.mark.parametrize("vector", PROXY, ids=lambda v: v["id"])
def test_a_published_app_proxy_signature_verifies(vector: dict[str, Any]) -> None:
    assert app_proxy_message(parse_query(vector["raw_query"])) == vector["message"]
    verified = verify_app_proxy(vector["raw_query"], [vector["secret"]])
    assert "signature" not in verified.parameters
    assert verified.one("shop") == "shop-name.myshopify.com"
    assert verified.one("path_prefix") == "/apps/awesome_reviews"


@pytest.mark.parametrize("vector", PROXY, ids=lambda v: v["id"])
def test_a_changed_app_proxy_request_is_refused(vector: dict[str, Any]) -> None:
    query = vector["raw_query"]
    for variant in (
        query.replace("shop-name", "shop-other"),
        query.replace("extra=1&extra=2", "extra=2&extra=1").replace(
            "extra[]=1&extra[]=2", "extra[]=2&extra[]=1"
        ),
        query + "&logged_in_customer_id=2",
        query.replace("signature=", "signature=00"),
    ):
        with pytest.raises(InvalidSignature):
            verify_app_proxy(variant, [vector["secret"]])
    with pytest.raises(InvalidSignature):
        verify_app_proxy(query, ["not-" + vector["secret"]])


def test_an_app_proxy_signature_made_with_the_previous_secret_is_accepted() -> None:
    parameters = {"shop": "cybergine-demo.myshopify.com", "path_prefix": "/apps/cybergine"}
    signature = app_proxy_signature(parameters, PREVIOUS_SECRET)
    query = urlencode({**parameters, "signature": signature})
    verify_app_proxy(query, [SECRET, PREVIOUS_SECRET])
    with pytest.raises(InvalidSignature):
        verify_app_proxy(query, [SECRET])
