"""Token exchange and refresh at the simulated shop's token endpoint, answered as Shopify
answers them, with session tokens our own verifier accepts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import jwt
import pytest

from cybergine.shopify.oauth_names import ID_TOKEN_TYPE, OFFLINE_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT
from cybergine.shopify.session_tokens import verify_session_token
from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.simulator.oauth import OAuthError
from tests.shopify.simulator.conftest import CLIENT_ID, CLIENT_SECRET, SHOP


def exchange(
    sim: ShopifySimulator, http: httpx.Client, subject: str, **extra: str
) -> httpx.Response:
    form = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": subject,
        "subject_token_type": ID_TOKEN_TYPE,
        "requested_token_type": OFFLINE_TOKEN_TYPE,
        "expiring": "1",
        **extra,
    }
    return http.post(f"{sim.shop_url(SHOP)}/admin/oauth/access_token", data=form)


def refresh(sim: ShopifySimulator, http: httpx.Client, token: str) -> httpx.Response:
    return http.post(
        f"{sim.shop_url(SHOP)}/admin/oauth/access_token",
        json={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": token,
        },
    )


def test_session_tokens_carry_shopifys_claims_and_pass_our_verifier(
    simulator: ShopifySimulator,
) -> None:
    token = simulator.session_token(SHOP, user_id="901")
    verified = verify_session_token(token, client_id=CLIENT_ID, secrets=[CLIENT_SECRET])
    assert verified.shop == SHOP
    assert verified.user_id == "901"
    claims = jwt.decode(token, CLIENT_SECRET, algorithms=["HS256"], audience=CLIENT_ID)
    assert claims["iss"] == f"https://{SHOP}/admin"
    assert claims["dest"] == f"https://{SHOP}"
    assert set(claims) == {"iss", "dest", "aud", "sub", "exp", "nbf", "iat", "jti", "sid"}
    assert claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_token_exchange_gives_an_expiring_offline_token_with_a_refresh_token(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    answer = exchange(simulator, http, simulator.session_token(SHOP))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {
        "access_token",
        "scope",
        "expires_in",
        "refresh_token",
        "refresh_token_expires_in",
    }
    assert body["scope"] == "read_products,read_content,read_legal_policies"
    assert body["expires_in"] == 3600
    assert body["refresh_token_expires_in"] == 90 * 24 * 3600
    assert simulator.tokens.shop_of(body["access_token"]) == SHOP
    assert simulator.shop(SHOP).installed


def test_without_expiring_the_token_does_not_expire_and_has_no_refresh_token(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    body = exchange(simulator, http, simulator.session_token(SHOP), expiring="0").json()
    assert set(body) == {"access_token", "scope"}


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}, 400, "invalid_request"),
        ({"subject_token": "not-a-jwt"}, 400, "invalid_subject_token"),
    ],
)
def test_bad_exchanges_are_refused_with_oauth_errors(
    simulator: ShopifySimulator,
    http: httpx.Client,
    change: dict[str, str],
    status: int,
    error: str,
) -> None:
    answer = exchange(simulator, http, simulator.session_token(SHOP), **change)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert answer.json()["error_description"]


def test_expired_or_foreign_session_tokens_are_refused(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    past = dt.datetime.now(dt.UTC).timestamp() - 600
    expired = simulator.session_token(SHOP, issued_at=past)
    assert exchange(simulator, http, expired).json()["error"] == "invalid_subject_token"
    other = simulator.session_token("other-shop.myshopify.com")
    assert exchange(simulator, http, other).json()["error"] == "invalid_subject_token"
    forged = jwt.encode(
        jwt.decode(other, options={"verify_signature": False}),
        "not-the-secret-of-this-app-0123456789",
    )
    assert exchange(simulator, http, forged).status_code == 400


def test_unknown_shops_are_not_found(simulator: ShopifySimulator, http: httpx.Client) -> None:
    url = simulator.shop_url("nobody-here.myshopify.com") + "/admin/oauth/access_token"
    assert http.post(url, data={}).status_code == 404


def test_refresh_rotates_both_tokens_and_retires_the_old_refresh_token_once_replaced(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    first = exchange(simulator, http, simulator.session_token(SHOP)).json()
    second = refresh(simulator, http, first["refresh_token"])
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["access_token"] != first["access_token"]
    assert second_body["refresh_token"] != first["refresh_token"]
    assert simulator.tokens.shop_of(second_body["access_token"]) == SHOP
    # A lost answer can be retried with the same refresh token ...
    assert refresh(simulator, http, first["refresh_token"]).status_code == 200
    # ... until its replacement is used.
    assert refresh(simulator, http, second_body["refresh_token"]).status_code == 200
    retired = refresh(simulator, http, first["refresh_token"])
    assert retired.status_code == 400
    assert retired.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }


def test_short_lifetimes_expire_access_and_refresh_tokens(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    simulator.tokens.settings.access_seconds = 5
    simulator.tokens.settings.refresh_seconds = 10
    body = exchange(simulator, http, simulator.session_token(SHOP)).json()
    assert body["expires_in"] == 5
    assert body["refresh_token_expires_in"] == 10
    later = dt.datetime.now(dt.UTC).timestamp() + 6
    assert simulator.tokens.shop_of(body["access_token"], clock=later) is None
    form = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "grant_type": "refresh_token",
        "refresh_token": body["refresh_token"],
    }
    with pytest.raises(OAuthError, match="expired or revoked"):
        simulator.tokens.answer(SHOP, form, clock=later + 5)


def test_revoked_shops_tokens_stop_working(simulator: ShopifySimulator, http: httpx.Client) -> None:
    body = exchange(simulator, http, simulator.session_token(SHOP)).json()
    simulator.tokens.revoke_shop(SHOP)
    assert simulator.tokens.shop_of(body["access_token"]) is None
    assert refresh(simulator, http, body["refresh_token"]).json()["error"] == "invalid_grant"


def test_the_control_api_hands_out_session_tokens_and_expires_access_tokens(
    simulator: ShopifySimulator, http: httpx.Client
) -> None:
    answer = http.post(f"{simulator.base_url}/_control/shops/{SHOP}/session-token")
    assert answer.headers["access-control-allow-origin"] == "*"
    body = exchange(simulator, http, answer.json()["token"]).json()
    assert http.post(f"{simulator.base_url}/_control/shops/{SHOP}/tokens/expire").status_code == 204
    assert simulator.tokens.shop_of(body["access_token"]) is None
    bad = http.post(f"{simulator.base_url}/_control/shops/evil.test/session-token")
    assert bad.status_code == 422


def test_the_admin_frame_opens_the_app_with_a_signed_launch_and_app_bridge_stand_in(
    http: httpx.Client,
) -> None:
    from cybergine.shopify.query_hmac import verify_query_hmac

    with ShopifySimulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, app_url="https://app.example/shopify"
    ) as sim:
        launch = sim.launch_url(SHOP, path="/settings")
        assert launch.startswith("https://app.example/shopify/settings?")
        signed = verify_query_hmac(launch.split("?", 1)[1], [CLIENT_SECRET])
        assert signed.one("shop") == SHOP
        assert signed.one("embedded") == "1"
        verify_session_token(signed.one("id_token"), client_id=CLIENT_ID, secrets=[CLIENT_SECRET])
        page = http.get(f"{sim.shop_url(SHOP)}/admin/apps/{CLIENT_ID}")
        assert page.status_code == 200
        assert "https://app.example/shopify/?" in page.text
        script = http.get(sim.app_bridge_url)
        assert script.headers["content-type"].startswith("text/javascript")
        assert "window.shopify" in script.text


def test_kept_tokens_outlive_a_restart(tmp_path: Path) -> None:
    from cybergine.shopify.simulator.oauth import TokenAuthority

    kept = tmp_path / "tokens.json"
    first = TokenAuthority(CLIENT_ID, CLIENT_SECRET)
    first.keep_in(kept)
    with ShopifySimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        subject = sim.session_token(SHOP)
    form = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": subject,
        "subject_token_type": ID_TOKEN_TYPE,
        "requested_token_type": OFFLINE_TOKEN_TYPE,
        "expiring": "1",
    }
    issued = first.answer(SHOP, form)
    restarted = TokenAuthority(CLIENT_ID, CLIENT_SECRET)
    restarted.keep_in(kept)
    assert restarted.shop_of(str(issued["access_token"])) == SHOP
    refresh = {**form, "grant_type": "refresh_token", "refresh_token": str(issued["refresh_token"])}
    assert restarted.answer(SHOP, refresh)["access_token"]
    assert kept.stat().st_mode & 0o777 == 0o600
