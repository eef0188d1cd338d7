"""Client of Meta's Graph API for the WhatsApp Cloud API: send messages, mark them read,
look up and download inbound media.

``base_url`` includes the API version (``https://graph.facebook.com/v23.0``); the access
token is passed per call, because every business number of every tenant has its own.

Decisions:
- One attempt per call. Retrying, with backoff, is the job queue's business; this client
  only says whether a retry can help (``GraphError.retryable``) and how long the server
  asked to wait (``retry_after``, from ``Retry-After``). Retryable: network errors and
  timeouts, HTTP 5xx, 408 and 429, and Meta's temporary codes (``RETRYABLE_CODES``:
  throughput and pair rate limits, "something went wrong", service unavailable). Any
  other 4xx is final, and so are Meta codes that no retry can fix (``FINAL_CODES``: an
  expired token, a closed 24-hour window, an invalid parameter) whatever the status.
  A timeout after a send is retryable although Meta may have accepted the message: the
  Cloud API has no idempotency key, so a rare duplicate is the price of not losing one.
- Errors never carry the access token, the text we sent or a media URL (a capability):
  the server's message is redacted, and network errors are raised ``from None`` so the
  aiohttp request, with its ``Authorization`` header, is not attached to the traceback.
- A 200 answer without the expected fields is a final error: for a send the message may
  well have gone out, and a retry would send it twice.
- The token is sent to a media URL only on the Graph API's own origin (a simulator or a
  proxy) or over https to Meta's CDN domains (``MEDIA_DOMAINS``). A webhook can carry a
  media URL, and an attacker's URL must not receive the token. Ids put into the URL path
  (phone number ids, media ids) must be plain ids, so a crafted media id cannot reach
  another Graph endpoint with our token.
- A download stops as soon as it passes ``max_bytes``: at once when ``Content-Length``
  says so, else while streaming, so an oversized file is never held in memory.
"""

from __future__ import annotations

import asyncio
import json as json_module
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import aiohttp
import httpx

from cybergine.observability import tracing
from cybergine.outbound import AsyncClosable, redact_inputs, retry_after_seconds, server_message

__all__ = [
    "FINAL_CODES",
    "MEDIA_DOMAINS",
    "RETRYABLE_CODES",
    "GraphClient",
    "GraphError",
    "MediaInfo",
    "MediaTooLarge",
    "PhoneNumberInfo",
]

# Meta error codes a later attempt can succeed on.
RETRYABLE_CODES = frozenset(
    {
        1,  # API unknown: possibly a temporary server error
        2,  # API service: temporary downtime or overload
        4,  # API too many calls: app rate limit
        80007,  # WhatsApp Business Account rate limit
        130429,  # throughput rate limit hit
        131000,  # something went wrong
        131016,  # service unavailable
        131056,  # (business, consumer) pair rate limit hit
        133004,  # server temporarily unavailable
    }
)
# Meta error codes no retry can fix, whatever the HTTP status says.
FINAL_CODES = frozenset(
    {
        3,  # capability or permissions issue
        10,  # permission denied
        100,  # invalid parameter
        190,  # access token expired or invalid
        131008,  # required parameter missing
        131009,  # parameter value is not valid
        131021,  # recipient cannot be sender
        131026,  # message undeliverable
        131047,  # re-engagement: more than 24 hours since the customer last wrote
        131051,  # unsupported message type
        132000,  # template parameter count mismatch
        132001,  # template does not exist
    }
)
WINDOW_CLOSED_CODE = 131047
TOKEN_INVALID_CODE = 190
MEDIA_DOMAINS = ("fbsbx.com", "facebook.com", "fbcdn.net", "whatsapp.net")

_USER_AGENT = "cybergine-whatsapp"
_PATH_ID = re.compile(r"[0-9A-Za-z_-]{1,128}")
_DIGITS = re.compile(r"-?[0-9]{1,18}")
_MESSAGE_LIMIT = 500
_ERROR_BODY_LIMIT = 64 * 1024
# Keys of a message body whose values are content (ours or the customer's), redacted from
# any error text that quotes them back.
_CONTENT_KEYS = frozenset(
    {"body", "text", "title", "description", "button", "caption", "payload", "footer"}
)


class GraphError(Exception):
    """A Graph API call that failed, classified for the caller's retry decision."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        code: int | None = None,
        subcode: int | None = None,
        details: str | None = None,
        error_type: str | None = None,
        fbtrace_id: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        token_invalid: bool | None = None,
    ) -> None:
        self.message = message
        self.operation = operation
        self.status = status
        self.code = code
        self.subcode = subcode
        self.details = details
        self.error_type = error_type
        self.fbtrace_id = fbtrace_id
        self.retryable = retryable
        self.retry_after = retry_after
        self.token_invalid = code == TOKEN_INVALID_CODE if token_invalid is None else token_invalid
        super().__init__(self._describe())

    @property
    def window_closed(self) -> bool:
        """The customer last wrote more than 24 hours ago: only a template can be sent."""
        return self.code == WINDOW_CLOSED_CODE

    @property
    def title(self) -> str:
        return self.message

    def _describe(self) -> str:
        text = f"WhatsApp {self.operation} failed: {self.message}"
        if self.details and self.details not in self.message:
            text += f" ({self.details})"
        facts = [
            f"HTTP {self.status}" if self.status is not None else None,
            f"code {self.code}" if self.code is not None else None,
            f"subcode {self.subcode}" if self.subcode is not None else None,
            f"fbtrace_id {self.fbtrace_id}" if self.fbtrace_id else None,
            "retryable" if self.retryable else None,
        ]
        known = [fact for fact in facts if fact]
        return f"{text} [{', '.join(known)}]" if known else text


class MediaTooLarge(GraphError):
    """The media file is larger than the caller accepts; never retryable."""

    def __init__(self, *, limit: int, size: int, declared: bool) -> None:
        self.limit = limit
        self.size = size  # the declared Content-Length, or the bytes received when it stopped
        how = f"Content-Length is {size}" if declared else f"stopped after {size} bytes"
        super().__init__(
            f"the media file is larger than the limit of {limit} bytes ({how})",
            operation="media download",
            retryable=False,
        )


@dataclass(frozen=True)
class MediaInfo:
    id: str
    url: str  # short-lived; download it with the same access token
    mime_type: str
    sha256: str | None
    file_size: int | None


@dataclass(frozen=True)
class PhoneNumberInfo:
    """What Meta says of a business number its token can see."""

    id: str
    display_phone_number: str | None
    verified_name: str | None


PHONE_NUMBER_FIELDS = "id,display_phone_number,verified_name"


class GraphClient(AsyncClosable):
    """The Graph API over aiohttp: one session (a pool of keep-alive connections) per event
    loop; the token is per call.

    aiohttp, not httpx like our other clients: every reply makes two Graph API calls (the
    read receipt and the send), and on this machine a request costs ~0.2 ms of client CPU
    on aiohttp against ~0.9 ms on httpx, a tenth of a reply's CPU."""

    def __init__(self, *, base_url: str, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = httpx.URL(self.base_url)
        self._timeout = timeout
        self._download_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is None or session.closed:
            return
        if self._session_loop is asyncio.get_running_loop():
            await session.close()
        else:
            # Made on another loop, which has ended: it cannot be closed from here, and
            # its connections ended with their loop.
            session.detach()

    async def send(self, phone_number_id: str, access_token: str, body: dict[str, Any]) -> str:
        """Sends a message body (see ``messages.py``); returns its wamid."""
        operation = "send"
        path = _path_id(phone_number_id, "phone number id", operation)
        url = f"{self.base_url}/{path}/messages"
        answer = await self._call(
            operation, "POST", url, access_token, json=body, content=_content_strings(body)
        )
        data = _json_object(answer, operation)
        messages = data.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        wamid = first.get("id") if isinstance(first, Mapping) else None
        if not isinstance(wamid, str) or not wamid:
            _unexpected(operation, answer, "no messages[0].id in the answer")
        return wamid

    async def mark_read(
        self,
        phone_number_id: str,
        access_token: str,
        message_id: str,
        *,
        typing_indicator: bool = False,
    ) -> None:
        """Marks an inbound message, and those before it, as read."""
        operation = "mark read"
        path = _path_id(phone_number_id, "phone number id", operation)
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing_indicator:
            body["typing_indicator"] = {"type": "text"}
        answer = await self._call(
            operation, "POST", f"{self.base_url}/{path}/messages", access_token, json=body
        )
        if _json_object(answer, operation).get("success") is not True:
            _unexpected(operation, answer, "the answer is not success: true")

    async def phone_number(self, phone_number_id: str, access_token: str) -> PhoneNumberInfo:
        """The number as Meta shows it (``GET /{phone-number-id}``): answers only when the
        token may use the number, so it checks a pair of credentials before they are
        saved. A bad token is code 190; a number the token cannot see, code 100."""
        operation = "phone number lookup"
        path = _path_id(phone_number_id, "phone number id", operation)
        url = f"{self.base_url}/{path}?fields={PHONE_NUMBER_FIELDS}"
        answer = await self._call(operation, "GET", url, access_token)
        data = _json_object(answer, operation)
        answered_id = data.get("id")
        if not isinstance(answered_id, str | int) or str(answered_id) != phone_number_id:
            _unexpected(operation, answer, "the answer is not about this number")
        display, name = data.get("display_phone_number"), data.get("verified_name")
        return PhoneNumberInfo(
            id=phone_number_id,
            display_phone_number=display if isinstance(display, str) and display else None,
            verified_name=name if isinstance(name, str) and name else None,
        )

    async def media_info(self, media_id: str, access_token: str) -> MediaInfo:
        """Where an inbound media file can be downloaded from, and what it is."""
        operation = "media lookup"
        url = f"{self.base_url}/{_path_id(media_id, 'media id', operation)}"
        answer = await self._call(operation, "GET", url, access_token)
        data = _json_object(answer, operation)
        media_url, mime_type = data.get("url"), data.get("mime_type")
        if not isinstance(media_url, str) or not media_url:
            _unexpected(operation, answer, "no url in the answer")
        if not isinstance(mime_type, str) or not mime_type:
            _unexpected(operation, answer, "no mime_type in the answer")
        sha256 = data.get("sha256")
        answered_id = data.get("id")
        return MediaInfo(
            id=str(answered_id) if isinstance(answered_id, str | int) else media_id,
            url=media_url,
            mime_type=mime_type,
            sha256=sha256 if isinstance(sha256, str) and sha256 else None,
            file_size=_int(data.get("file_size")),  # a number, or a string of digits
        )

    async def download(self, url: str, access_token: str, *, max_bytes: int) -> bytes:
        """The bytes at a media URL from ``media_info``, at most ``max_bytes`` of them."""
        operation = "media download"
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, not {max_bytes}")
        self._check_media_url(url, operation)
        headers = {"Authorization": _bearer(access_token, operation), "Accept": "*/*"}
        try:
            # aiohttp drops the Authorization header on a redirect to another origin. A
            # large file may take longer than the timeout: it bounds each wait instead.
            async with self._http().get(
                url, headers=headers, max_redirects=5, timeout=self._download_timeout
            ) as response:
                if not 200 <= response.status < 300:
                    body = bytearray()  # at most 64 KiB of it; read() may give less at once
                    while len(body) < _ERROR_BODY_LIMIT and (
                        chunk := await response.content.read(_ERROR_BODY_LIMIT - len(body))
                    ):
                        body += chunk
                    answer = _answer(response, bytes(body))
                    raise _response_error(answer, operation, access_token, (url,))
                declared = _int(response.headers.get("content-length"))
                if declared is not None and declared > max_bytes:
                    raise MediaTooLarge(limit=max_bytes, size=declared, declared=True)
                received = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    received += chunk
                    if len(received) > max_bytes:
                        raise MediaTooLarge(limit=max_bytes, size=len(received), declared=False)
                return bytes(received)
        except (aiohttp.ClientError, TimeoutError) as exc:
            _network_error(operation, exc, self._timeout, access_token, url)

    # -- shared -------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        # A session belongs to the loop it was made on; a client used from several loops
        # (tests, the CLI) gets a new one on each.
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            if session is not None and not session.closed:
                session.detach()  # as in aclose: its loop has ended
            self._session_loop = loop
            session = self._session = aiohttp.ClientSession(
                headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                # Meta's API is reached directly: no proxy from the environment, no
                # cookies kept between tenants' calls.
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return session

    async def _call(
        self,
        operation: str,
        method: str,
        url: str,
        access_token: str,
        *,
        json: dict[str, Any] | None = None,
        content: Iterable[str] = (),
    ) -> _Answer:
        headers = {"Authorization": _bearer(access_token, operation)}
        # A client span (observability.tracing): the operation, never the URL's ids.
        with tracing.span(
            f"graph {operation}",
            kind=tracing.CLIENT,
            attributes={"http.request.method": method, "server.address": self._origin.host},
        ) as span:
            try:
                async with self._http().request(
                    method, url, json=json, headers=headers, allow_redirects=False
                ) as response:
                    answer = _answer(response, await response.read())
            except (aiohttp.ClientError, TimeoutError) as exc:
                _network_error(operation, exc, self._timeout, access_token, url)
            if span is not None:
                span.set_attribute("http.response.status_code", answer.status)
            if 200 <= answer.status < 300:
                return answer
            raise _response_error(answer, operation, access_token, content)

    def _check_media_url(self, url: str, operation: str) -> None:
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            raise GraphError("the media URL is not a valid URL", operation=operation) from None
        host = target.host.lower()
        same_origin = (target.scheme, host, target.port) == (
            self._origin.scheme,
            self._origin.host.lower(),
            self._origin.port,
        )
        meta_cdn = target.scheme == "https" and any(
            host == domain or host.endswith("." + domain) for domain in MEDIA_DOMAINS
        )
        if not (same_origin or meta_cdn):
            raise GraphError(
                f"refusing to send the access token to the media host {host or '?'!r}: "
                "not the Graph API's origin and not one of Meta's media domains",
                operation=operation,
            )


@dataclass(frozen=True)
class _Answer:
    """A Graph API answer, read whole (bodies are small JSON objects)."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json_module.loads(self.body)


def _answer(response: aiohttp.ClientResponse, body: bytes) -> _Answer:
    return _Answer(response.status, response.reason or "", response.headers, body)


# --- errors ---------------------------------------------------------------------------


def _response_error(
    answer: _Answer, operation: str, access_token: str, content: Iterable[str]
) -> GraphError:
    """The error a non-2xx answer means, with Meta's fields when the body has them."""
    status = answer.status
    code = subcode = None
    details = error_type = fbtrace_id = None
    message = server_message(answer.body, answer.reason)
    try:
        body: Any = answer.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        code = _int(error.get("code"))
        subcode = _int(error.get("error_subcode"))
        error_data = error.get("error_data")
        if isinstance(error_data, Mapping) and isinstance(error_data.get("details"), str):
            details = error_data["details"]
        error_type = error.get("type") if isinstance(error.get("type"), str) else None
        fbtrace_id = error.get("fbtrace_id") if isinstance(error.get("fbtrace_id"), str) else None
    content = list(content)
    if not message.strip():
        message = answer.reason or f"HTTP {status}"
    return GraphError(
        _redact(message, access_token, content),
        operation=operation,
        status=status,
        code=code,
        subcode=subcode,
        details=_redact(details, access_token, content) if details else None,
        error_type=error_type,
        fbtrace_id=fbtrace_id,
        retryable=_retryable(status, code),
        retry_after=retry_after_seconds(answer.headers),
    )


def _retryable(status: int | None, code: int | None) -> bool:
    if code in RETRYABLE_CODES:
        return True
    if code in FINAL_CODES:
        return False
    return status is not None and (status >= 500 or status in (408, 429))


def _network_error(
    operation: str,
    exc: aiohttp.ClientError | TimeoutError,
    timeout: float,
    access_token: str,
    url: str,
) -> NoReturn:
    """Raise the GraphError for a request that got no answer (never chained: the aiohttp
    exception holds the request, and so the Authorization header)."""
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        raise GraphError(
            f"no answer within {timeout:g} s ({type(exc).__name__})",
            operation=operation,
            retryable=True,
        ) from None
    if isinstance(exc, aiohttp.InvalidURL):  # also a scheme other than http(s)
        raise GraphError(
            f"the request could not be made ({type(exc).__name__})", operation=operation
        ) from None
    if isinstance(exc, aiohttp.TooManyRedirects):
        raise GraphError("too many redirects", operation=operation) from None
    reason = _redact(str(exc).strip()[:200], access_token, (url,))
    raise GraphError(
        f"could not reach the server ({type(exc).__name__}{': ' + reason if reason else ''})",
        operation=operation,
        retryable=True,
    ) from None


def _unexpected(operation: str, answer: _Answer, what: str) -> NoReturn:
    raise GraphError(f"unexpected answer: {what}", operation=operation, status=answer.status)


def _redact(text: str, access_token: str, content: Iterable[str]) -> str:
    """``text`` without the token or any content we sent, and of bounded length."""
    if len(access_token) >= 4:
        text = text.replace(access_token, "[access token]")
    text = redact_inputs(text, [s for s in content if s])
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _content_strings(body: Any, key: str | None = None) -> list[str]:
    """The content strings of a message body: text, titles, captions, parameters."""
    if isinstance(body, Mapping):
        found: list[str] = []
        for k, value in body.items():
            found.extend(_content_strings(value, str(k)))
        return found
    if isinstance(body, list):
        return [s for item in body for s in _content_strings(item, key)]
    if isinstance(body, str) and key in _CONTENT_KEYS:
        return [body]
    return []


# --- small parsing helpers ------------------------------------------------------------


def _bearer(access_token: str, operation: str) -> str:
    if not isinstance(access_token, str) or not access_token.strip():
        raise GraphError("no access token", operation=operation, token_invalid=True)
    if any(c.isspace() for c in access_token) or not access_token.isprintable():
        raise GraphError(
            "the access token contains whitespace or control characters",
            operation=operation,
            token_invalid=True,
        )
    return f"Bearer {access_token}"


def _path_id(value: str, what: str, operation: str) -> str:
    if not isinstance(value, str) or not _PATH_ID.fullmatch(value):
        raise GraphError(f"invalid {what}: expected letters, digits, _ or -", operation=operation)
    return value


def _json_object(answer: _Answer, operation: str) -> Mapping[str, Any]:
    try:
        data: Any = answer.json()
    except ValueError:
        _unexpected(operation, answer, "the body is not JSON")
    if not isinstance(data, Mapping):
        _unexpected(operation, answer, "the body is not a JSON object")
    return data


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    return None
