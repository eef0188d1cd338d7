"""A local WhatsApp Cloud API (Meta's Graph API) for tests, benchmarks and the demo.

Written from Meta's documented formats: ``POST /{version}/{phone-number-id}/messages``
(messages and read receipts), ``GET /{version}/{media-id}`` (a short-lived download URL)
and the download itself, ``GET /{version}/{phone-number-id}`` (the number's fields, which
the platform asks for to check credentials before saving them), with Meta's error body
``{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"},
"fbtrace_id"}}``. After accepting a message it sends the status webhooks Meta would
("sent", "delivered", and "read" with ``auto_read``), signed with the app secret::

    with GraphSimulator(webhook_url=..., app_secret="s3cret") as sim:
        sim.add_number("1234567890", "EAAG-token")
        client = GraphClient(base_url=sim.base_url)
        sim.fail_next(code=131056)          # the next send hits the pair rate limit
        sim.fail_next(status=500, endpoint="read")  # ... or the next read receipt
        sim.delay_seconds = 2               # every call answers slowly
        sim.sent                            # what was accepted, in order
        sim.deliver(sim.inbound_webhook(...))  # a customer writes (signed, to webhook_url)

``with`` serves it on 127.0.0.1 in a thread (a free port, chosen by the OS).

Decisions:
- Requests are checked as Meta checks them (required fields, types, Meta's length limits
  counted in characters), and refused with code 100 and a ``details`` saying what is
  wrong, so a body our builders let through but Meta would refuse fails in tests too.
- A bad or missing token is a 401 with code 190; a valid token used for a number it does
  not belong to is Meta's "object does not exist" (code 100, subcode 33).
- Webhook bodies are serialised as Meta serialises them (compact, non-ASCII escaped) and
  signed over exactly the bytes sent. A delivery is tried three times, then recorded as
  failed in ``webhook_deliveries``; it never fails the send that caused it.
- Records (``sent``, ``read_receipts``, ``webhook_deliveries``) are snapshots taken under a
  lock: tests read them from another thread while the simulator serves.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import aiohttp
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from cybergine.channels.whatsapp.signature import HEADER, sign
from cybergine.web.threaded import ThreadedServer

__all__ = [
    "DEFAULT_VERSION",
    "DEFAULT_WABA_ID",
    "Fault",
    "GraphSimulator",
    "ReadReceipt",
    "SentMessage",
    "WebhookDelivery",
    "graph_error_body",
    "inbound_webhook",
    "status_webhook",
    "webhook_request",
]

DEFAULT_VERSION = "v23.0"
DEFAULT_WABA_ID = "102290129340398"
MEDIA_URL_TTL_SECONDS = 300.0  # Meta: a media URL is valid for five minutes
WEBHOOK_ATTEMPTS = 3

_TEXT_LIMIT = 4096
_CAPTION_LIMIT = 1024
_CALLBACK_DATA_LIMIT = 512
_MESSAGE_TYPES = frozenset(
    {
        "text",
        "interactive",
        "template",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "reaction",
    }
)
_MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
_INTERACTIVE_TYPES = frozenset(
    {
        "button",
        "list",
        "cta_url",
        "flow",
        "product",
        "product_list",
        "catalog_message",
        "location_request_message",
        "address_message",
        "call_permission_request",
    }
)
_PHONE = re.compile(r"\+?[0-9][0-9 ()\-]{3,24}")

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
_FAULT_ENDPOINTS = frozenset({"send", "read", "media", "download", "number", "any"})
# The fields of a WhatsAppBusinessPhoneNumber node this simulator knows; without
# ``fields``, Meta answers these.
_NUMBER_FIELDS = (
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
    "id",
)
_STATUS_CODES = {400: 100, 401: 190, 403: 10, 404: 100, 429: 4}


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    phone_number_id: str
    to: str
    type: str
    body: Mapping[str, Any]  # the request body as received
    wamid: str
    at: datetime

    @property
    def callback_data(self) -> str | None:
        value = self.body.get("biz_opaque_callback_data")
        return value if isinstance(value, str) else None

    @property
    def text(self) -> str | None:
        """The text the customer reads first: a text body, or an interactive body."""
        if self.type == "text":
            return str(self.body["text"]["body"])
        if self.type == "interactive":
            return str(self.body["interactive"].get("body", {}).get("text", "")) or None
        return None

    @property
    def reply_to(self) -> str | None:
        context = self.body.get("context")
        return context.get("message_id") if isinstance(context, Mapping) else None


@dataclass(frozen=True)
class ReadReceipt:
    phone_number_id: str
    message_id: str
    typing_indicator: bool
    at: datetime


@dataclass(frozen=True)
class WebhookDelivery:
    url: str
    body: bytes  # exactly what was posted (and signed)
    status_code: int | None  # of the last attempt; None when no answer came
    error: str | None
    attempts: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Fault:
    """One scripted failure (see ``GraphSimulator.fail_next``)."""

    status: int
    code: int | None
    subcode: int | None
    message: str
    details: str | None
    retry_after: float | None
    endpoint: str  # "send", "read", "media", "download", "number" or "any"
    raw_body: str | None = None


@dataclass
class _Number:
    access_token: str
    display_phone_number: str
    verified_name: str = "Test Business"


@dataclass
class _Media:
    content: bytes
    mime_type: str
    phone_number_id: str | None
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.content).hexdigest()


class _Refusal(Exception):
    def __init__(
        self,
        details: str,
        *,
        code: int = 100,
        status: int = 400,
        message: str = "(#100) Invalid parameter",
        subcode: int | None = None,
    ) -> None:
        super().__init__(details)
        self.details = details
        self.code = code
        self.status = status
        self.message = message
        self.subcode = subcode


# --- Meta's formats, usable without a simulator ---------------------------------------


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
        "id": message_id or new_wamid(),
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


def new_wamid() -> str:
    return "wamid." + base64.urlsafe_b64encode(b"HBg" + secrets.token_bytes(24)).decode()


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


# --- the simulator --------------------------------------------------------------------


class GraphSimulator:
    """Meta's Graph API for WhatsApp on 127.0.0.1 (``with`` serves it in a thread).

    Switches, safe to flip from another thread while serving: ``delay_seconds``,
    ``webhook_url``, ``app_secret``, ``auto_read``, ``status_delay_seconds``,
    ``stream_downloads``, ``fail_next(...)``, ``fail_delivery_next(...)``.
    """

    def __init__(
        self,
        *,
        version: str = DEFAULT_VERSION,
        webhook_url: str | None = None,
        app_secret: str | None = None,
        auto_read: bool = False,
        waba_id: str = DEFAULT_WABA_ID,
    ) -> None:
        self.version = version
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        self.auto_read = auto_read
        self.waba_id = waba_id
        self.delay_seconds = 0.0
        self.status_delay_seconds = 0.0  # between one status webhook and the next
        self.stream_downloads = False  # downloads in chunks, without Content-Length
        self._lock = threading.Lock()
        self._numbers: dict[str, _Number] = {}
        self._media: dict[str, _Media] = {}
        self._downloads: dict[str, tuple[str, float]] = {}  # token: (media id, expiry)
        self._templates: set[tuple[str, str]] = set()
        self._faults: deque[Fault] = deque()
        self._delivery_failures: deque[dict[str, Any]] = deque()
        self._sent: list[SentMessage] = []
        self._read_receipts: list[ReadReceipt] = []
        self._deliveries: list[WebhookDelivery] = []
        self._server: ThreadedServer | None = None
        # Status webhooks go out over kept-alive connections, as Meta's do; one session
        # for the serving loop, closed when the app shuts down.
        self._webhook_session: aiohttp.ClientSession | None = None
        self.app = FastAPI(
            title="WhatsApp Graph API simulator",
            openapi_url=None,
            docs_url=None,
            lifespan=self._lifespan,
        )
        self.app.add_api_route(
            f"/{version}/{{phone_number_id}}/messages", self._messages, methods=["POST"]
        )
        self.app.add_api_route(f"/{version}/{{object_id}}", self._object, methods=["GET"])
        self.app.add_api_route("/download/{token}", self._download, methods=["GET"])

    # -- set-up ------------------------------------------------------------------------

    def add_number(
        self,
        phone_number_id: str,
        access_token: str,
        *,
        display_phone_number: str | None = None,
        verified_name: str = "Test Business",
    ) -> None:
        """A business number, and the token that may send from it (and read its fields)."""
        with self._lock:
            self._numbers[phone_number_id] = _Number(
                access_token, display_phone_number or phone_number_id, verified_name
            )

    def add_media(
        self,
        media_id: str,
        content: bytes,
        mime_type: str,
        *,
        phone_number_id: str | None = None,
    ) -> None:
        """Inbound media, downloadable with any registered token (or only that number's)."""
        with self._lock:
            self._media[media_id] = _Media(content, mime_type, phone_number_id)

    def add_template(self, name: str, language_code: str) -> None:
        """Once any template is added, only added templates are accepted (else 132001)."""
        with self._lock:
            self._templates.add((name, language_code))

    def fail_next(
        self,
        *,
        status: int | None = None,
        code: int | None = None,
        subcode: int | None = None,
        message: str | None = None,
        details: str | None = None,
        retry_after: float | None = None,
        times: int = 1,
        endpoint: str = "send",
        raw_body: str | None = None,
    ) -> None:
        """The next ``times`` requests to ``endpoint`` fail: "send" (messages, the
        default), "read" (read receipts, which share the messages endpoint), "media" (media
        lookups), "download", "number" (a number's fields) or "any". Missing fields are
        Meta's for the code, or for the status; ``raw_body`` replaces the JSON error (e.g. a
        proxy's HTML page)."""
        if endpoint not in _FAULT_ENDPOINTS:
            raise ValueError(f"endpoint must be one of {sorted(_FAULT_ENDPOINTS)}")
        if code is None:
            code = _STATUS_CODES.get(status, 1) if status is not None else 1
        known_status, known_message, known_details = _KNOWN_ERRORS.get(
            code, (400, f"(#{code}) Simulated error", None)
        )
        if code == 190 and subcode is None:
            subcode = 463  # expired
        fault = Fault(
            status=status if status is not None else known_status,
            code=code,
            subcode=subcode,
            message=message if message is not None else known_message,
            details=details if details is not None else known_details,
            retry_after=retry_after,
            endpoint=endpoint,
            raw_body=raw_body,
        )
        with self._lock:
            self._faults.extend([fault] * times)

    def fail_delivery_next(
        self,
        *,
        code: int = 131026,
        title: str = "Message undeliverable",
        details: str = "Unable to deliver message to the recipient.",
    ) -> None:
        """The next accepted message is "sent", then "failed" with this error (how Meta
        reports most delivery failures: asynchronously, in the status webhook)."""
        with self._lock:
            self._delivery_failures.append(
                {
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": {"details": details},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }
            )

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._delivery_failures.clear()
            self._sent.clear()
            self._read_receipts.clear()
            self._deliveries.clear()
        self.delay_seconds = 0.0

    # -- records -----------------------------------------------------------------------

    @property
    def sent(self) -> list[SentMessage]:
        with self._lock:
            return list(self._sent)

    @property
    def read_receipts(self) -> list[ReadReceipt]:
        with self._lock:
            return list(self._read_receipts)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    # -- inbound messages --------------------------------------------------------------

    def inbound_webhook(
        self,
        phone_number_id: str,
        from_wa_id: str,
        text: str,
        *,
        name: str | None = None,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        """``inbound_webhook`` for one of this simulator's numbers."""
        with self._lock:
            number = self._numbers.get(phone_number_id)
        return inbound_webhook(
            phone_number_id,
            from_wa_id,
            text,
            name=name,
            message_id=message_id,
            display_phone_number=number.display_phone_number if number else None,
            waba_id=self.waba_id,
        )

    def deliver(self, body: Mapping[str, Any], *, timeout: float = 10.0) -> int:
        """Posts a webhook body to ``webhook_url``, signed; returns the status code."""
        url, raw, headers = self._signed(body)
        with httpx.Client(timeout=timeout) as client:
            return client.post(url, content=raw, headers=headers).status_code

    async def adeliver(self, body: Mapping[str, Any]) -> int:
        """``deliver``, from async code."""
        url, raw, headers = self._signed(body)
        async with httpx.AsyncClient(timeout=10.0) as client:
            return (await client.post(url, content=raw, headers=headers)).status_code

    def _signed(self, body: Mapping[str, Any]) -> tuple[str, bytes, dict[str, str]]:
        url, secret = self.webhook_url, self.app_secret
        if not url or not secret:
            raise RuntimeError("set webhook_url and app_secret to deliver webhooks")
        raw, headers = webhook_request(body, secret)
        return url, raw, headers

    # -- serving -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running (use it in a with block)")
        return self._server.url

    @property
    def base_url(self) -> str:
        """What a Graph API client is configured with (ends in the version)."""
        return f"{self.url}/{self.version}"

    def __enter__(self) -> GraphSimulator:
        server = ThreadedServer(
            self.app, name="Graph API simulator", lifespan="on", graceful_seconds=3
        )
        server.start()
        self._server = server
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            session, self._webhook_session = self._webhook_session, None
            if session is not None:
                await session.close()

    def _webhook_client(self) -> aiohttp.ClientSession:
        session = self._webhook_session
        if session is None or session.closed:
            session = self._webhook_session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=5.0)
            )
        return session

    # -- endpoints ---------------------------------------------------------------------

    async def _messages(self, request: Request, phone_number_id: str) -> Response:
        try:
            body: Any = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        is_receipt = isinstance(body, dict) and "status" in body
        early = await self._intercept(request, "read" if is_receipt else "send")
        if early is not None:
            return early
        with self._lock:
            number = self._numbers.get(phone_number_id)
            registered = {n.access_token for n in self._numbers.values()}
        token = _bearer(request)
        if token is None or token not in registered:
            return _invalid_token()
        if number is None or number.access_token != token:
            return _no_such_object(phone_number_id, "post")
        try:
            if not isinstance(body, dict):
                raise _Refusal(
                    "The request body is not a JSON object.",
                    message="(#100) The parameter messaging_product is required.",
                )
            _check_product(body)
            if is_receipt:
                return self._read_receipt(phone_number_id, body)
            to, kind = self._check_message(body)
        except _Refusal as refusal:
            return _error(
                refusal.status,
                refusal.message,
                code=refusal.code,
                subcode=refusal.subcode,
                details=refusal.details,
            )
        record = SentMessage(
            phone_number_id=phone_number_id,
            to=to,
            type=kind,
            body=body,
            wamid=new_wamid(),
            at=datetime.now(UTC),
        )
        with self._lock:
            self._sent.append(record)
            failure = self._delivery_failures.popleft() if self._delivery_failures else None
        wa_id = re.sub(r"[^0-9]", "", to)
        answer: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id}],
            "messages": [{"id": record.wamid}],
        }
        if kind == "template":
            answer["messages"][0]["message_status"] = "accepted"
        background = None
        if self.webhook_url and self.app_secret:
            background = BackgroundTask(
                self._report_statuses,
                record,
                number.display_phone_number,
                self.webhook_url,
                self.app_secret,
                failure,
            )
        return JSONResponse(answer, background=background)

    def _read_receipt(self, phone_number_id: str, body: Mapping[str, Any]) -> Response:
        if body.get("status") != "read":
            raise _Refusal(f"Param status must be one of {{READ}} - got {body.get('status')!r}.")
        message_id = body.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise _Refusal("The parameter message_id is required.")
        if not message_id.startswith("wamid."):
            raise _Refusal(
                "Message ID is not valid.",
                code=131009,
                message="(#131009) Parameter value is not valid",
            )
        typing = body.get("typing_indicator")
        if typing is not None and typing != {"type": "text"}:
            raise _Refusal("Param typing_indicator['type'] must be one of {TEXT}.")
        with self._lock:
            self._read_receipts.append(
                ReadReceipt(phone_number_id, message_id, typing is not None, datetime.now(UTC))
            )
        return JSONResponse({"success": True})

    async def _object(self, request: Request, object_id: str) -> Response:
        """``GET /{id}``: Meta's graph has one namespace of ids; a business number's id
        answers its fields, anything else is looked up as media."""
        with self._lock:
            is_number = object_id in self._numbers and object_id not in self._media
        if is_number:
            return await self._phone_number(request, object_id)
        return await self._media_info(request, object_id)

    async def _phone_number(self, request: Request, phone_number_id: str) -> Response:
        early = await self._intercept(request, "number")
        if early is not None:
            return early
        token = _bearer(request)
        with self._lock:
            number = self._numbers.get(phone_number_id)
            registered = self._tokens_for(None)
        if token is None or token not in registered:
            return _invalid_token()
        if number is None or number.access_token != token:
            return _no_such_object(phone_number_id, "get")
        wanted = [f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()]
        for name in wanted:
            if name not in _NUMBER_FIELDS:
                return _error(
                    400,
                    f"(#100) Tried accessing nonexisting field ({name}) on node type "
                    "(WhatsAppBusinessPhoneNumber)",
                    code=100,
                )
        every = {
            "verified_name": number.verified_name,
            "code_verification_status": "VERIFIED",
            "display_phone_number": number.display_phone_number,
            "quality_rating": "GREEN",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
            "id": phone_number_id,
        }
        chosen = [*wanted, "id"] if wanted else list(_NUMBER_FIELDS)
        return JSONResponse({name: every[name] for name in _NUMBER_FIELDS if name in chosen})

    async def _media_info(self, request: Request, media_id: str) -> Response:
        early = await self._intercept(request, "media")
        if early is not None:
            return early
        token = _bearer(request)
        with self._lock:
            media = self._media.get(media_id)
            allowed = self._tokens_for(media.phone_number_id if media else None)
            registered = self._tokens_for(None)
        if token is None or token not in registered:
            return _invalid_token()
        if media is None or token not in allowed:
            return _no_such_object(media_id, "get")
        download = secrets.token_urlsafe(24)
        with self._lock:
            now = time.monotonic()
            self._downloads = {k: v for k, v in self._downloads.items() if v[1] > now}
            self._downloads[download] = (media_id, now + MEDIA_URL_TTL_SECONDS)
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": f"{request.base_url}download/{download}",
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "file_size": str(len(media.content)),  # Meta sends it as a string
                "id": media_id,
            }
        )

    async def _download(self, request: Request, token: str) -> Response:
        early = await self._intercept(request, "download")
        if early is not None:
            return early
        bearer = _bearer(request)
        with self._lock:
            entry = self._downloads.get(token)
            media = self._media.get(entry[0]) if entry and entry[1] > time.monotonic() else None
            allowed = self._tokens_for(media.phone_number_id if media else None)
        if bearer is None or bearer not in allowed:
            return _invalid_token()
        if media is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        if self.stream_downloads:
            return StreamingResponse(_chunks(media.content), media_type=media.mime_type)
        return Response(media.content, media_type=media.mime_type)

    # -- shared ------------------------------------------------------------------------

    async def _intercept(self, request: Request, endpoint: str) -> Response | None:
        """Waits ``delay_seconds``, then answers a scripted fault if one is due."""
        with self._lock:
            fault = next((f for f in self._faults if f.endpoint in ("any", endpoint)), None)
            if fault is not None:
                self._faults.remove(fault)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if fault is None:
            return None
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.raw_body is not None:
            return Response(
                fault.raw_body, status_code=fault.status, headers=headers, media_type="text/html"
            )
        assert fault.code is not None
        response = _error(
            fault.status,
            fault.message,
            code=fault.code,
            subcode=fault.subcode,
            details=fault.details,
        )
        response.headers.update(headers)
        return response

    def _tokens_for(self, phone_number_id: str | None) -> set[str]:
        """Tokens allowed for a number's media (None: any registered token). Locked."""
        if phone_number_id is None:
            return {n.access_token for n in self._numbers.values()}
        number = self._numbers.get(phone_number_id)
        return {number.access_token} if number else set()

    def _check_message(self, body: Mapping[str, Any]) -> tuple[str, str]:
        """(to, type) of a message Meta would accept; raises _Refusal otherwise."""
        recipient_type = body.get("recipient_type", "individual")
        if recipient_type not in ("individual", "group"):
            raise _Refusal(
                f"Param recipient_type must be one of {{INDIVIDUAL, GROUP}} - got "
                f"{recipient_type!r}."
            )
        to = body.get("to")
        if not isinstance(to, str) or not to.strip():
            raise _Refusal(
                "The parameter to is required.", message="(#100) The parameter to is required."
            )
        digits = re.sub(r"[^0-9]", "", to)
        if not _PHONE.fullmatch(to) or not 5 <= len(digits) <= 15:
            raise _Refusal("Param to must be a valid WhatsApp user phone number.")
        kind = body.get("type", "text")
        if kind not in _MESSAGE_TYPES:
            raise _Refusal(f"Param type must be one of {sorted(_MESSAGE_TYPES)} - got {kind!r}.")
        content = body.get(kind)
        if kind == "contacts":
            if not isinstance(content, list) or not content:
                raise _Refusal("The parameter contacts is required.")
        elif not isinstance(content, Mapping):
            raise _Refusal(
                f"The parameter {kind} is required.",
                message=f"(#100) The parameter {kind} is required.",
            )
        context = body.get("context")
        if context is not None and not (
            isinstance(context, Mapping) and _nonempty(context.get("message_id"))
        ):
            raise _Refusal("Param context['message_id'] is required.")
        callback = body.get("biz_opaque_callback_data")
        if callback is not None:
            _limit("biz_opaque_callback_data", callback, _CALLBACK_DATA_LIMIT)
        if kind == "text":
            assert isinstance(content, Mapping)
            _limit("text['body']", content.get("body"), _TEXT_LIMIT)
            if not isinstance(content.get("preview_url", False), bool):
                raise _Refusal("Param text['preview_url'] must be a boolean.")
        elif kind == "interactive":
            assert isinstance(content, Mapping)
            _check_interactive(content)
        elif kind == "template":
            assert isinstance(content, Mapping)
            self._check_template(content)
        elif kind in _MEDIA_TYPES:
            assert isinstance(content, Mapping)
            if not (_nonempty(content.get("id")) or _nonempty(content.get("link"))):
                raise _Refusal(f"Param {kind} must contain either id or link.")
            if "caption" in content:
                if kind in ("audio", "sticker"):
                    raise _Refusal(f"Param {kind}['caption'] is not supported.")
                _limit(f"{kind}['caption']", content["caption"], _CAPTION_LIMIT)
        elif kind == "reaction":
            assert isinstance(content, Mapping)
            if not _nonempty(content.get("message_id")) or not isinstance(
                content.get("emoji"), str
            ):
                raise _Refusal("Param reaction requires message_id and emoji.")
        elif kind == "location":
            assert isinstance(content, Mapping)
            for key in ("latitude", "longitude"):
                if not isinstance(content.get(key), int | float | str):
                    raise _Refusal(f"The parameter location['{key}'] is required.")
        return to, kind

    def _check_template(self, template: Mapping[str, Any]) -> None:
        name = template.get("name")
        language = template.get("language")
        code = language.get("code") if isinstance(language, Mapping) else None
        if not _nonempty(name):
            raise _Refusal("The parameter template['name'] is required.")
        if not _nonempty(code):
            raise _Refusal("The parameter template['language']['code'] is required.")
        components = template.get("components")
        if components is not None and not (
            isinstance(components, list) and all(isinstance(c, Mapping) for c in components)
        ):
            raise _Refusal("Param template['components'] must be an array of objects.")
        with self._lock:
            known = not self._templates or (name, code) in self._templates
        if not known:
            raise _Refusal(
                f"template name ({name}) does not exist in {code}",
                code=132001,
                status=404,
                message="(#132001) Template name does not exist in the translation",
            )

    async def _report_statuses(
        self,
        record: SentMessage,
        display_phone_number: str,
        url: str,
        app_secret: str,
        failure: dict[str, Any] | None,
    ) -> None:
        """Posts the status webhooks of an accepted message, in order."""
        states: list[str] = ["sent"]
        if failure is not None:
            states.append("failed")
        else:
            states.append("delivered")
            if self.auto_read:
                states.append("read")
        category = "utility" if record.type == "template" else "service"
        client = self._webhook_client()
        for state in states:
            if self.status_delay_seconds:
                await asyncio.sleep(self.status_delay_seconds)
            body = status_webhook(
                record.phone_number_id,
                record.wamid,
                re.sub(r"[^0-9]", "", record.to),
                state,
                display_phone_number=display_phone_number,
                waba_id=self.waba_id,
                callback_data=record.callback_data,
                errors=[failure] if state == "failed" and failure else (),
                pricing_category=category,
            )
            await self._post(client, url, body, app_secret)

    async def _post(
        self, client: aiohttp.ClientSession, url: str, body: Mapping[str, Any], app_secret: str
    ) -> None:
        raw, headers = webhook_request(body, app_secret)
        status: int | None = None
        error: str | None = None
        attempts = 0
        for attempt in range(WEBHOOK_ATTEMPTS):
            attempts = attempt + 1
            try:
                async with client.post(url, data=raw, headers=headers) as response:
                    status = response.status
                    ok = 200 <= status < 300
                    error = None if ok else (await response.read()).decode("utf-8", "replace")[:200]
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            else:
                if ok:
                    break
            await asyncio.sleep(0.1 * 2**attempt)
        with self._lock:
            self._deliveries.append(WebhookDelivery(url, raw, status, error, attempts))


# --- checks ---------------------------------------------------------------------------


def _check_product(body: Mapping[str, Any]) -> None:
    product = body.get("messaging_product")
    if product is None:
        raise _Refusal(
            "The parameter messaging_product is required.",
            message="(#100) The parameter messaging_product is required.",
        )
    if product != "whatsapp":
        raise _Refusal(f"Param messaging_product must be one of {{WHATSAPP}} - got {product!r}.")


def _check_interactive(interactive: Mapping[str, Any]) -> None:
    kind = interactive.get("type")
    if kind not in _INTERACTIVE_TYPES:
        raise _Refusal(f"Param interactive['type'] must be one of {sorted(_INTERACTIVE_TYPES)}.")
    header = interactive.get("header")
    if header is not None:
        if not isinstance(header, Mapping):
            raise _Refusal("Param interactive['header'] must be an object.")
        if header.get("type") == "text":
            _limit("interactive['header']['text']", header.get("text"), 60)
    footer = interactive.get("footer")
    if footer is not None:
        _limit("interactive['footer']['text']", _get(footer, "text"), 60)
    action = interactive.get("action")
    if not isinstance(action, Mapping):
        raise _Refusal("The parameter interactive['action'] is required.")
    if kind == "button":
        _limit("interactive['body']['text']", _get(interactive.get("body"), "text"), 1024)
        _check_buttons(action.get("buttons"))
    elif kind == "list":
        _limit("interactive['body']['text']", _get(interactive.get("body"), "text"), 4096)
        _limit("interactive['action']['button']", action.get("button"), 20)
        _check_sections(action.get("sections"))


def _check_buttons(buttons: Any) -> None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise _Refusal("Param interactive['action']['buttons'] must have 1 to 3 buttons.")
    ids, titles = [], []
    for i, button in enumerate(buttons):
        where = f"interactive['action']['buttons'][{i}]"
        if _get(button, "type") != "reply":
            raise _Refusal(f"Param {where}['type'] must be one of {{REPLY}}.")
        reply = _get(button, "reply")
        _limit(f"{where}['reply']['id']", _get(reply, "id"), 256)
        _limit(f"{where}['reply']['title']", _get(reply, "title"), 20)
        ids.append(_get(reply, "id"))
        titles.append(_get(reply, "title"))
    if len(set(ids)) != len(ids) or len(set(titles)) != len(titles):
        raise _Refusal("Button ids and titles must be unique.")


def _check_sections(sections: Any) -> None:
    if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
        raise _Refusal("Param interactive['action']['sections'] must have 1 to 10 sections.")
    row_ids: list[Any] = []
    for s, section in enumerate(sections):
        where = f"interactive['action']['sections'][{s}]"
        if len(sections) > 1 or _get(section, "title") is not None:
            _limit(f"{where}['title']", _get(section, "title"), 24)
        rows = _get(section, "rows")
        if not isinstance(rows, list) or not rows:
            raise _Refusal(f"Param {where}['rows'] must have at least one row.")
        for r, row in enumerate(rows):
            _limit(f"{where}['rows'][{r}]['id']", _get(row, "id"), 200)
            _limit(f"{where}['rows'][{r}]['title']", _get(row, "title"), 24)
            if _get(row, "description") is not None:
                _limit(f"{where}['rows'][{r}]['description']", _get(row, "description"), 72)
            row_ids.append(_get(row, "id"))
    if len(row_ids) > 10:
        raise _Refusal(f"Total row count exceeded: {len(row_ids)} rows, at most 10.")
    if len(set(row_ids)) != len(row_ids):
        raise _Refusal("Row ids must be unique.")


def _limit(where: str, value: Any, limit: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _Refusal(f"The parameter {where} is required.")
    if len(value) > limit:
        raise _Refusal(f"Param {where} must be at most {limit} characters long.")


async def _chunks(content: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]
        await asyncio.sleep(0)


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _error(
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


def _invalid_token() -> JSONResponse:
    response = _error(401, "Invalid OAuth access token - Cannot parse access token", code=190)
    response.headers["WWW-Authenticate"] = (
        'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token"'
    )
    return response


def _no_such_object(object_id: str, verb: str) -> JSONResponse:
    return _error(
        400,
        f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        code=100,
        subcode=33,
    )
