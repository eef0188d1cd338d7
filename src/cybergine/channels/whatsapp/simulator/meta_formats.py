"""Meta's formats for WhatsApp, usable without a simulator: webhook bodies as Meta sends
and signs them, and the Graph API's error body and error responses."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from cybergine.channels.whatsapp.signature import HEADER, sign

DEFAULT_VERSION = "v23.0"
DEFAULT_WABA_ID = "102290129340398"


def graph_error_body(
    message: str,
    *,
    code: int,
    subcode: int | None = None,
    details: str | None = None,
    error_type: str = "OAuthException",
) -> dict[str, Any]:
    """A Graph API error body, as Meta sends it."""
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    return {"error": error}


def inbound_webhook(
    phone_number_id: str,
    from_wa_id: str,
    text: str,
    *,
    name: str | None = None,
    message_id: str | None = None,
    display_phone_number: str | None = None,
    waba_id: str = DEFAULT_WABA_ID,
    timestamp: int | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """The webhook body Meta posts when a customer sends a text message."""
    contact: dict[str, Any] = {"wa_id": from_wa_id}
    if name is not None:
        contact = {"profile": {"name": name}, "wa_id": from_wa_id}
    message: dict[str, Any] = {
        "from": from_wa_id,
        "id": message_id or new_wamid(from_wa_id),
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "text": {"body": text},
        "type": "text",
    }
    if reply_to is not None:
        message["context"] = {"from": display_phone_number or phone_number_id, "id": reply_to}
    return _webhook(
        waba_id,
        phone_number_id,
        display_phone_number or phone_number_id,
        {"contacts": [contact], "messages": [message]},
    )


def status_webhook(
    phone_number_id: str,
    wamid: str,
    recipient_id: str,
    status: str,
    *,
    display_phone_number: str | None = None,
    waba_id: str = DEFAULT_WABA_ID,
    callback_data: str | None = None,
    timestamp: int | None = None,
    errors: Sequence[Mapping[str, Any]] = (),
    pricing_category: str = "service",
) -> dict[str, Any]:
    """The webhook body Meta posts when one of our messages changes status."""
    state: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "recipient_id": recipient_id,
    }
    if callback_data is not None:
        state["biz_opaque_callback_data"] = callback_data
    if errors:
        state["errors"] = [dict(error) for error in errors]
    elif status in ("sent", "delivered"):
        conversation_id = hashlib.sha256(f"{phone_number_id}:{recipient_id}".encode()).hexdigest()
        conversation: dict[str, Any] = {
            "id": conversation_id[:32],
            "origin": {"type": pricing_category},
        }
        if status == "sent":
            conversation["expiration_timestamp"] = str(int(state["timestamp"]) + 86400)
        state["conversation"] = conversation
        state["pricing"] = {
            "billable": pricing_category != "service",
            "pricing_model": "PMP",
            "category": pricing_category,
        }
    return _webhook(
        waba_id, phone_number_id, display_phone_number or phone_number_id, {"statuses": [state]}
    )


def webhook_request(body: Mapping[str, Any], app_secret: str) -> tuple[bytes, dict[str, str]]:
    """The exact bytes Meta would post for ``body``, and the headers (signature included)."""
    raw = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    headers = {
        "Content-Type": "application/json",
        HEADER: sign(raw, app_secret),
        "User-Agent": "facebookexternalua",
    }
    return raw, headers


def new_wamid(wa_id: str | None = None) -> str:
    """A message id in Meta's format: base64 of a structure that holds the customer's
    phone number (``fixtures/whatsapp/text_14.json``), so erasure is tested against ids
    that name someone; random digits stand in when no customer is given."""
    phone = (wa_id or str(secrets.randbelow(10**12)).zfill(12)).encode()[:60]
    unique = secrets.token_hex(10).upper().encode()
    structure = b"\x1c\x18" + bytes([len(phone)]) + phone + b"\x15\x02\x00\x12\x18\x14" + unique
    return "wamid." + base64.b64encode(structure + b"\x00").decode()


def _webhook(
    waba_id: str, phone_number_id: str, display_phone_number: str, content: dict[str, Any]
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }
    value.update(content)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}],
    }


def error_response(
    status: int,
    message: str,
    *,
    code: int,
    subcode: int | None = None,
    details: str | None = None,
) -> JSONResponse:
    return JSONResponse(
        graph_error_body(message, code=code, subcode=subcode, details=details),
        status_code=status,
    )


def invalid_token() -> JSONResponse:
    response = error_response(
        401, "Invalid OAuth access token - Cannot parse access token", code=190
    )
    response.headers["WWW-Authenticate"] = (
        'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token"'
    )
    return response


def no_such_object(object_id: str, verb: str) -> JSONResponse:
    return error_response(
        400,
        f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        code=100,
        subcode=33,
    )


# Meta's status and message for the error codes a test is likely to script.
_KNOWN_ERRORS: dict[int, tuple[int, str, str | None]] = {
    1: (500, "An unknown error has occurred.", None),
    2: (503, "(#2) Service temporarily unavailable", None),
    4: (400, "(#4) Application request limit reached", None),
    10: (403, "(#10) Application does not have permission for this action", None),
    100: (400, "(#100) Invalid parameter", None),
    190: (401, "Error validating access token: Session has expired.", None),
    80007: (400, "(#80007) Rate limit issues", None),
    130429: (
        400,
        "(#130429) Rate limit hit",
        "Cloud API message throughput has been reached.",
    ),
    131000: (500, "(#131000) Something went wrong", None),
    131026: (
        400,
        "(#131026) Message undeliverable",
        "Unable to deliver message to the recipient.",
    ),
    131047: (
        400,
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the "
        "customer last replied to this number.",
    ),
    131051: (400, "(#131051) Unsupported message type", "Message type is not currently supported."),
    131056: (
        400,
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this "
        "phone number to the same phone number in a short period of time.",
    ),
    133004: (503, "(#133004) Server temporarily unavailable", None),
}
_STATUS_CODES = {400: 100, 401: 190, 403: 10, 404: 100, 429: 4}


def known_error(*, status: int | None, code: int | None) -> tuple[int, int, str, str | None]:
    """(status, code, message, details) of Meta's answer for an error code, or for an HTTP
    status when no code is given (what a test leaves out of a scripted fault)."""
    if code is None:
        code = _STATUS_CODES.get(status, 1) if status is not None else 1
    known_status, message, details = _KNOWN_ERRORS.get(
        code, (400, f"(#{code}) Simulated error", None)
    )
    return known_status, code, message, details


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
