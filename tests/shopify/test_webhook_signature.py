"""X-Shopify-Hmac-Sha256: the published vectors, secret rotation, and every way a webhook
signature must fail."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from cybergine.shopify.signing import InvalidSignature
from cybergine.shopify.webhook_signature import verify_webhook, webhook_hmac
from tests.shopify.signed_fixtures import fixture_bytes, vectors

VECTORS = vectors("webhook_hmac_sha256_base64_vectors.json")
SECRET = "shpss_0123456789abcdef0123456789abcdef"
PREVIOUS_SECRET = "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"
BODY = b'{"id":788032119674292922,"title":"Example T-Shirt"}'


def vector_body(vector: dict[str, Any]) -> bytes:
    """The exact bytes that were signed."""
    if "body_file" in vector:
        body = fixture_bytes(vector["body_file"])
        assert len(body) == vector["body_len"]
        assert hashlib.sha256(body).hexdigest() == vector["body_sha256"]
        return body
    text: str = vector["body"]
    return text.encode("utf-8")


def test_the_vector_table_is_the_one_we_expect() -> None:
    assert {v["id"] for v in VECTORS} == {
        "shopify_api_js_validate",
        "laravel_shopify_orders_create",
        "laravel_shopify_empty_body",
        "shopifyaccess_docs_style",
    }
    assert all(v["expected_valid"] for v in VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["id"])
def test_a_published_signature_verifies(vector: dict[str, Any]) -> None:
    body = vector_body(vector)
    verify_webhook(body, vector["header_value"], [vector["secret"]])
    assert webhook_hmac(body, vector["secret"]) == vector["header_value"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["id"])
def test_a_published_signature_fails_for_a_changed_body_secret_or_header(
    vector: dict[str, Any],
) -> None:
    body, secret, header = vector_body(vector), vector["secret"], vector["header_value"]
    for changed in (
        body + b"_",
        body + b"\n",
        body.rstrip(b"\n") if body.endswith(b"\n") else b" " + body,
    ):
        with pytest.raises(InvalidSignature):
            verify_webhook(changed, header, [secret])
    with pytest.raises(InvalidSignature):
        verify_webhook(body, header, [secret + "_"])
    with pytest.raises(InvalidSignature):
        verify_webhook(body, header + "_", [secret])


def test_the_previous_secret_is_accepted_during_a_rotation() -> None:
    old_signature = webhook_hmac(BODY, PREVIOUS_SECRET)
    new_signature = webhook_hmac(BODY, SECRET)
    verify_webhook(BODY, new_signature, [SECRET, PREVIOUS_SECRET])
    verify_webhook(BODY, old_signature, [SECRET, PREVIOUS_SECRET])
    # Once the rotation is over, the old secret's signatures stop counting.
    with pytest.raises(InvalidSignature):
        verify_webhook(BODY, old_signature, [SECRET])


def test_the_failure_is_a_401_that_names_the_header() -> None:
    with pytest.raises(InvalidSignature) as refused:
        verify_webhook(BODY, None, [SECRET])
    assert refused.value.status == 401
    assert "X-Shopify-Hmac-Sha256" in refused.value.detail


def _variants() -> list[str | None]:
    good = webhook_hmac(BODY, SECRET)
    digest = base64.b64decode(good)
    return [
        None,
        "",
        good.rstrip("="),  # padding removed
        " " + good,
        good + "\n",
        good.lower(),
        digest.hex(),  # hex instead of base64
        base64.urlsafe_b64encode(digest).decode(),
        base64.b64encode(digest[:-1]).decode(),  # a truncated digest
        base64.b64encode(digest + b"\x00").decode(),  # a longer one
        base64.b64encode(digest).decode() * 2,
        "\uff22" + good[1:],  # a fullwidth letter
        "A" * 10_000,
    ]


@pytest.mark.parametrize("header", _variants())
def test_a_malformed_header_is_refused(header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        verify_webhook(BODY, header, [SECRET])


@pytest.mark.parametrize("secrets", [[], [""], [SECRET, ""]])
def test_no_secret_or_an_empty_one_is_a_configuration_error(secrets: list[str]) -> None:
    with pytest.raises(ValueError, match="client secret"):
        verify_webhook(BODY, webhook_hmac(BODY, SECRET), secrets)


def test_a_bare_string_is_not_taken_for_a_list_of_secrets() -> None:
    with pytest.raises(TypeError):
        verify_webhook(BODY, webhook_hmac(BODY, "s"), "s")
