"""App Bridge session tokens: what a real one looks like passes; everything else is a 401
that asks App Bridge to retry with a fresh token. The clock is a parameter: no sleeps."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request

from cybergine.shopify.session_tokens import (
    MAX_LEEWAY,
    RETRY_INVALID_SESSION_HEADER,
    InvalidSessionToken,
    SessionToken,
    bearer_token,
    verify_session_token,
)
from cybergine.web import problems
from tests.support.server import LiveServer

CLIENT_ID = "0123456789abcdef0123456789abcdef"
SECRET = "shpss_0123456789abcdef0123456789abcdef"
PREVIOUS_SECRET = "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"
SHOP = "cybergine-demo.myshopify.com"
ISSUED = dt.datetime(2026, 12, 2, 12, 0, 0, tzinfo=dt.UTC)
# Shopify's tokens live one minute from the second they are issued.
EXPIRES = ISSUED + dt.timedelta(minutes=1)
DURING = ISSUED + dt.timedelta(seconds=30)


def claims(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": f"https://{SHOP}/admin",
        "dest": f"https://{SHOP}",
        "aud": CLIENT_ID,
        "sub": "42",
        "exp": int(EXPIRES.timestamp()),
        "nbf": int(ISSUED.timestamp()),
        "iat": int(ISSUED.timestamp()),
        "jti": "f8912129-1af6-4cad-9ca3-76b0f7621087",
        "sid": "aaea182f2732d44c23057c0fea584021a4485b2bd25d3eb7fd349313ad24c685",
    }
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not None}


def token(payload: dict[str, Any] | None = None, secret: str = SECRET, **headers: Any) -> str:
    return jwt.encode(payload or claims(), secret, algorithm="HS256", headers=headers or None)


def verify(raw: str, now: dt.datetime = DURING, **options: Any) -> SessionToken:
    return verify_session_token(
        raw, client_id=CLIENT_ID, secrets=[SECRET, PREVIOUS_SECRET], now=now, **options
    )


def refused(raw: str, now: dt.datetime = DURING, **options: Any) -> str:
    with pytest.raises(InvalidSessionToken) as error:
        verify(raw, now, **options)
    assert error.value.status == 401
    assert error.value.headers == {RETRY_INVALID_SESSION_HEADER: "1"}
    return error.value.detail


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_valid_token_gives_its_shop_and_user() -> None:
    verified = verify(token())
    assert verified.shop == SHOP
    assert verified.user_id == "42"
    assert verified.session_id == claims()["sid"]
    assert verified.token_id == claims()["jti"]
    assert verified.expires_at == EXPIRES


def test_a_token_of_an_upper_case_shop_gives_its_one_spelling() -> None:
    shop = "Cybergine-Demo.MyShopify.com"
    verified = verify(token(claims(iss=f"https://{shop}/admin", dest=f"https://{shop}")))
    assert verified.shop == SHOP


def test_a_token_signed_with_the_previous_secret_is_accepted_during_a_rotation() -> None:
    assert verify(token(secret=PREVIOUS_SECRET)).shop == SHOP
    with pytest.raises(InvalidSessionToken, match="signature"):
        verify_session_token(
            token(secret=PREVIOUS_SECRET), client_id=CLIENT_ID, secrets=[SECRET], now=DURING
        )


def test_a_token_signed_with_another_secret_is_refused() -> None:
    assert "signature" in refused(token(secret="shpss_" + "9" * 32))


def test_a_token_with_a_changed_payload_is_refused() -> None:
    header, _payload, signature = token().split(".")
    forged = ".".join([header, b64(claims(dest="https://victim.myshopify.com")), signature])
    assert "signature" in refused(forged)


@pytest.mark.parametrize(
    ("now", "accepted"),
    [
        (ISSUED - MAX_LEEWAY - dt.timedelta(seconds=1), False),  # before nbf, beyond leeway
        (ISSUED - MAX_LEEWAY, True),
        (ISSUED, True),
        (EXPIRES - dt.timedelta(seconds=1), True),
        (EXPIRES, True),  # within the leeway
        (EXPIRES + MAX_LEEWAY - dt.timedelta(microseconds=1), True),
        (EXPIRES + MAX_LEEWAY, False),
        (EXPIRES + dt.timedelta(hours=1), False),
    ],
)
def test_the_leeway_is_ten_seconds_at_both_ends(now: dt.datetime, accepted: bool) -> None:
    if accepted:
        verify(token(), now)
    else:
        refused(token(), now)


def test_expired_and_not_yet_valid_tokens_say_which() -> None:
    assert refused(token(), EXPIRES + dt.timedelta(minutes=5)) == "The session token has expired."
    assert refused(token(), ISSUED - dt.timedelta(minutes=5)) == (
        "The session token is not valid yet."
    )


def test_without_leeway_the_token_ends_at_its_exp() -> None:
    verify(token(), EXPIRES - dt.timedelta(microseconds=1), leeway=dt.timedelta(0))
    refused(token(), EXPIRES, leeway=dt.timedelta(0))


@pytest.mark.parametrize("leeway", [dt.timedelta(seconds=11), dt.timedelta(seconds=-1)])
def test_a_leeway_beyond_ten_seconds_is_a_programming_error(leeway: dt.timedelta) -> None:
    with pytest.raises(ValueError, match="leeway"):
        verify(token(), leeway=leeway)


@pytest.mark.parametrize(
    "audience", ["another-app", "", None, [CLIENT_ID], [CLIENT_ID, "another-app"]]
)
def test_a_token_for_another_audience_is_refused(audience: Any) -> None:
    payload = claims()
    payload["aud"] = audience
    assert refused(token(payload)) == "The session token was issued for another app."


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": None},
        {"nbf": None},
        {"exp": "1764676860"},
        {"exp": True},
        {"nbf": [0]},
    ],
)
def test_a_token_without_valid_times_is_refused(changes: dict[str, Any]) -> None:
    payload = claims()
    for name, value in changes.items():
        payload[name] = value
    payload = {key: value for key, value in payload.items() if value is not None}
    refused(token(payload))


def test_an_algorithm_none_token_is_refused() -> None:
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    assert refused(unsigned) == "The session token is malformed."
    also_unsigned = jwt.encode(claims(), "", algorithm="none")
    refused(also_unsigned)


def test_an_rs256_token_is_refused_whoever_signed_it() -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(jwt.encode(claims(), private_key, algorithm="RS256"))
    # The classic confusion: an HS256 signature made with a public key as the secret,
    # behind a header that says RS256.
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64({"alg": "RS256", "typ": "JWT"})
    body = b64(claims())
    forged_signature = jwt.api_jws.get_algorithm_by_name("HS256").sign(
        f"{header}.{body}".encode(), public_pem
    )
    refused(f"{header}.{body}.{b64(forged_signature)}")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_another_hmac_algorithm_is_refused_even_with_our_secret(algorithm: str) -> None:
    refused(jwt.encode(claims(), SECRET, algorithm=algorithm))


@pytest.mark.parametrize(
    "raw",
    ["", "not-a-jwt", "a.b.c", "a.b", token() + ".extra", "x" * 5000, token().upper()],
)
def test_a_malformed_token_is_refused(raw: str) -> None:
    refused(raw)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"dest": "https://other-shop.myshopify.com"}, "different shops"),
        ({"iss": "https://other-shop.myshopify.com/admin"}, "different shops"),
        ({"dest": "https://evil.test"}, "dest must be a shop's myshopify.com domain"),
        ({"dest": f"https://{SHOP}.evil.test"}, "dest must be"),
        ({"dest": f"http://{SHOP}"}, "dest must be"),
        ({"dest": f"https://{SHOP}/"}, "dest must be"),
        ({"dest": f"https://{SHOP}:443"}, "dest must be"),
        ({"dest": f"https://user@{SHOP}"}, "dest must be"),
        ({"dest": SHOP}, "dest must be"),
        ({"dest": None}, "dest must be"),
        ({"iss": None}, "iss must be"),
        ({"iss": f"https://{SHOP}/admin/other"}, "iss must be"),
        ({"iss": "https://evil.test/admin"}, "iss must be"),
        ({"iss": f"https://{SHOP}/admin/admin"}, "iss must be"),
    ],
)
def test_a_token_for_no_valid_shop_or_two_shops_is_refused(
    changes: dict[str, Any], reason: str
) -> None:
    payload = claims()
    payload.update(changes)
    payload = {key: value for key, value in payload.items() if value is not None}
    assert reason in refused(token(payload))


def test_an_issuer_without_the_admin_path_is_the_same_shop() -> None:
    assert verify(token(claims(iss=f"https://{SHOP}"))).shop == SHOP


@pytest.mark.parametrize("subject", [None, "", 42])
def test_a_token_that_names_no_user_is_refused(subject: Any) -> None:
    payload = claims()
    payload["sub"] = subject
    payload = {key: value for key, value in payload.items() if value is not None}
    assert "sub" in refused(token(payload))


def test_the_bearer_token_is_read_from_the_authorization_header() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"
    for header in (None, "", "Basic abc", "abc.def.ghi", "Bearer"):
        with pytest.raises(InvalidSessionToken):
            bearer_token(header)


def test_a_refused_token_answers_401_asking_app_bridge_to_retry() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/api/v1/shopify/probe")
    async def probe(request: Request) -> dict[str, str]:
        raw = bearer_token(request.headers.get("authorization"))
        return {"shop": verify(raw).shop}

    with LiveServer(app) as server, server.client() as client:
        good = client.get("/api/v1/shopify/probe", headers={"authorization": f"Bearer {token()}"})
        forged = client.get(
            "/api/v1/shopify/probe",
            headers={"authorization": f"Bearer {token(secret='shpss_' + '9' * 32)}"},
        )
        expired = client.get(
            "/api/v1/shopify/probe",
            headers={"authorization": f"Bearer {token(claims(exp=0, nbf=0))}"},
        )
        missing = client.get("/api/v1/shopify/probe")
    assert good.status_code == 200
    assert good.json() == {"shop": SHOP}
    assert RETRY_INVALID_SESSION_HEADER.lower() not in good.headers
    for answer in (forged, expired, missing):
        assert answer.status_code == 401
        assert answer.headers[RETRY_INVALID_SESSION_HEADER] == "1"
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == "urn:cybergine:problem:invalid-session-token"
