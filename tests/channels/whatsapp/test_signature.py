"""X-Hub-Signature-256: published vectors, and every way a signature must fail."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from cybergine.channels.whatsapp.signature import sign, verify_signature

FIXTURES = Path(__file__).parents[2] / "fixtures"
VECTORS: list[dict[str, Any]] = json.loads(
    (FIXTURES / "meta_signature" / "x_hub_signature_256_vectors.json").read_text("utf-8")
)

SECRET = "1222e786b144d0e85b9f365372d93676"
BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def vector_body(vector: dict[str, Any]) -> bytes:
    """The exact bytes that were signed."""
    if "body_file" in vector:
        body: bytes = (FIXTURES / str(vector["body_file"])).read_bytes()
        assert len(body) == vector["body_len"]
        return body
    # The escaped form is what went over the wire; body_text is its decoded reading.
    text: str = vector.get("signed_bytes_ascii", vector["body_text"])
    return text.encode("utf-8")


def test_vector_table_is_the_one_we_expect() -> None:
    assert {v["id"] for v in VECTORS} == {
        "pywa_real_delivery",
        "whatsapp_api_js_unicode_escaped",
        "github_docs_reference",
    }


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_published_vectors(vector: dict[str, Any]) -> None:
    body = vector_body(vector)
    assert verify_signature(body, vector["header_value"], vector["app_secret"]) is bool(
        vector["expected_valid"]
    )
    assert sign(body, vector["app_secret"]) == vector["header_value"]


def test_signature_is_over_raw_bytes_not_re_encoded_json() -> None:
    (vector,) = [v for v in VECTORS if v["id"] == "whatsapp_api_js_unicode_escaped"]
    decoded = vector["body_text"].encode("utf-8")
    assert decoded != vector_body(vector)
    assert not verify_signature(decoded, vector["header_value"], vector["app_secret"])


def test_real_delivery_fails_once_decoded_and_re_encoded() -> None:
    (vector,) = [v for v in VECTORS if v["id"] == "pywa_real_delivery"]
    raw = vector_body(vector)
    reencoded = json.dumps(json.loads(raw)).encode("utf-8")  # default separators add spaces
    assert reencoded != raw
    assert not verify_signature(reencoded, vector["header_value"], vector["app_secret"])


def test_round_trip() -> None:
    assert verify_signature(BODY, sign(BODY, SECRET), SECRET)


def test_tampered_body() -> None:
    header = sign(BODY, SECRET)
    assert not verify_signature(BODY + b" ", header, SECRET)
    assert not verify_signature(BODY.replace(b"[]", b"[{}]"), header, SECRET)
    assert not verify_signature(b"", header, SECRET)


def test_tampered_signature() -> None:
    header = sign(BODY, SECRET)
    last = header[-1]
    flipped = header[:-1] + ("0" if last != "0" else "1")
    assert not verify_signature(BODY, flipped, SECRET)


def test_wrong_secret() -> None:
    assert not verify_signature(BODY, sign(BODY, SECRET), SECRET + "x")
    assert not verify_signature(BODY, sign(BODY, SECRET), SECRET.upper())


@pytest.mark.parametrize("secret", ["", None])
def test_empty_secret_verifies_nothing(secret: Any) -> None:
    # An unconfigured secret must not let through bodies "signed" with the empty key.
    forged = "sha256=" + hmac.new(b"", BODY, hashlib.sha256).hexdigest()
    assert not verify_signature(BODY, forged, secret)
    with pytest.raises(ValueError, match="app secret"):
        sign(BODY, "")


def test_missing_header() -> None:
    assert not verify_signature(BODY, None, SECRET)
    assert not verify_signature(BODY, "", SECRET)


def test_uppercase_hex_is_accepted() -> None:
    """Documented decision: the digest is the same bytes whatever the case of its hex."""
    digest = sign(BODY, SECRET).removeprefix("sha256=")
    assert verify_signature(BODY, "sha256=" + digest.upper(), SECRET)
    assert verify_signature(BODY, f"  sha256={digest}\t", SECRET)


def test_prefix_is_case_sensitive_and_sha256_only() -> None:
    digest = sign(BODY, SECRET).removeprefix("sha256=")
    assert not verify_signature(BODY, "SHA256=" + digest, SECRET)
    assert not verify_signature(BODY, digest, SECRET)
    assert not verify_signature(BODY, "sha512=" + digest, SECRET)


def test_sha1_is_refused_even_when_correct() -> None:
    sha1 = hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert not verify_signature(BODY, "sha1=" + sha1, SECRET)


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "0" * 63,
        "0" * 65,
        "0" * 128,
        "g" * 64,
        "zz" + "0" * 62,
        " " + "0" * 63,
        "00 " * 21 + "0",
        "\uff10" * 64,  # full-width digit zero: a digit, but not hex
        "é" * 64,
    ],
)
def test_malformed_digests_are_false_not_errors(digest: str) -> None:
    assert verify_signature(BODY, "sha256=" + digest, SECRET) is False


def test_digest_with_inner_whitespace_is_refused() -> None:
    # bytes.fromhex would skip spaces between bytes; the check must not.
    digest = sign(BODY, SECRET).removeprefix("sha256=")
    spaced = " ".join(digest[i : i + 2] for i in range(0, 64, 2))
    assert not verify_signature(BODY, "sha256=" + spaced, SECRET)


def test_non_string_header_is_false() -> None:
    assert verify_signature(BODY, sign(BODY, SECRET).encode(), SECRET) is False  # type: ignore[arg-type]
