"""The simulator itself: Meta's Graph API for WhatsApp served on 127.0.0.1, recording
what it accepts and sending the status webhooks Meta would (see the package's docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import aiohttp
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from cybergine.channels.whatsapp.simulator.checks import Refusal, check_message, check_product
from cybergine.channels.whatsapp.simulator.meta_formats import (
    DEFAULT_VERSION,
    DEFAULT_WABA_ID,
    bearer_token,
    error_response,
    inbound_webhook,
    invalid_token,
    known_error,
    new_wamid,
    no_such_object,
    status_webhook,
    webhook_request,
)
from cybergine.channels.whatsapp.simulator.records import (
    Fault,
    Media,
    Number,
    ReadReceipt,
    SentMessage,
    WebhookDelivery,
)
from cybergine.channels.whatsapp.simulator.webhook_retries import (
    META_RETRIES,
    Deliveries,
    WebhookRetries,
    post_until_delivered,
)
from cybergine.tls import client_context
from cybergine.web.threaded import ThreadedServer

MEDIA_URL_TTL_SECONDS = 300.0  # Meta: a media URL is valid for five minutes

_FAULT_ENDPOINTS = frozenset({"send", "read", "media", "download", "number", "any"})
# The fields of a WhatsAppBusinessPhoneNumber node it knows; Meta answers these without `fields`.
_NUMBER_FIELDS = (
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
    "id",
)


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
        webhook_retries: WebhookRetries = META_RETRIES,
    ) -> None:
        self.version = version
        self.webhook_retries = webhook_retries
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        self.auto_read = auto_read
        self.waba_id = waba_id
        self.delay_seconds = 0.0
        self.status_delay_seconds = 0.0  # between one status webhook and the next
        self.stream_downloads = False  # downloads in chunks, without Content-Length
        self._lock = threading.Lock()
        self._numbers: dict[str, Number] = {}
        self._media: dict[str, Media] = {}
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
        self._reports = Deliveries()  # status webhooks being tried, for up to days
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
            self._numbers[phone_number_id] = Number(
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
            self._media[media_id] = Media(content, mime_type, phone_number_id)

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
        known_status, code, known_message, known_details = known_error(status=status, code=code)
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
        with httpx.Client(timeout=timeout, verify=client_context()) as client:
            return client.post(url, content=raw, headers=headers).status_code

    async def adeliver(self, body: Mapping[str, Any]) -> int:
        """``deliver``, from async code."""
        url, raw, headers = self._signed(body)
        async with httpx.AsyncClient(timeout=10.0, verify=client_context()) as client:
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
            await self._reports.stop()
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
        token = bearer_token(request)
        if token is None or token not in registered:
            return invalid_token()
        if number is None or number.access_token != token:
            return no_such_object(phone_number_id, "post")
        try:
            if not isinstance(body, dict):
                raise Refusal(
                    "The request body is not a JSON object.",
                    message="(#100) The parameter messaging_product is required.",
                )
            check_product(body)
            if is_receipt:
                return self._read_receipt(phone_number_id, body)
            with self._lock:
                templates = frozenset(self._templates)
            to, kind = check_message(body, templates)
        except Refusal as refusal:
            return error_response(
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
            wamid=new_wamid(to),
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
                self._start_report,
                record,
                number.display_phone_number,
                self.webhook_url,
                self.app_secret,
                failure,
            )
        return JSONResponse(answer, background=background)

    async def _start_report(self, *report: Any) -> None:
        """Once the answer is sent: Meta answers a send before its statuses come."""
        self._reports.start(self._report_statuses(*report))

    def _read_receipt(self, phone_number_id: str, body: Mapping[str, Any]) -> Response:
        if body.get("status") != "read":
            raise Refusal(f"Param status must be one of {{READ}} - got {body.get('status')!r}.")
        message_id = body.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise Refusal("The parameter message_id is required.")
        if not message_id.startswith("wamid."):
            raise Refusal(
                "Message ID is not valid.",
                code=131009,
                message="(#131009) Parameter value is not valid",
            )
        typing = body.get("typing_indicator")
        if typing is not None and typing != {"type": "text"}:
            raise Refusal("Param typing_indicator['type'] must be one of {TEXT}.")
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
        token = bearer_token(request)
        with self._lock:
            number = self._numbers.get(phone_number_id)
            registered = self._tokens_for(None)
        if token is None or token not in registered:
            return invalid_token()
        if number is None or number.access_token != token:
            return no_such_object(phone_number_id, "get")
        wanted = [f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()]
        for name in wanted:
            if name not in _NUMBER_FIELDS:
                return error_response(
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
        token = bearer_token(request)
        with self._lock:
            media = self._media.get(media_id)
            allowed = self._tokens_for(media.phone_number_id if media else None)
            registered = self._tokens_for(None)
        if token is None or token not in registered:
            return invalid_token()
        if media is None or token not in allowed:
            return no_such_object(media_id, "get")
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
        bearer = bearer_token(request)
        with self._lock:
            entry = self._downloads.get(token)
            media = self._media.get(entry[0]) if entry and entry[1] > time.monotonic() else None
            allowed = self._tokens_for(media.phone_number_id if media else None)
        if bearer is None or bearer not in allowed:
            return invalid_token()
        if media is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        if self.stream_downloads:
            return StreamingResponse(media.chunks(), media_type=media.mime_type)
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
        response = error_response(
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

    async def _report_statuses(
        self,
        record: SentMessage,
        display_phone_number: str,
        url: str,
        app_secret: str,
        failure: dict[str, Any] | None,
    ) -> None:
        """Posts the status webhooks of an accepted message, in order: the next once the
        last was delivered, or given up (``webhook_retries``)."""
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
            raw, headers = webhook_request(body, app_secret)
            await post_until_delivered(
                client, url, raw, headers, self.webhook_retries, self._record_delivery
            )

    def _record_delivery(self, delivery: WebhookDelivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)
