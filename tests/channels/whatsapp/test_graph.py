"""GraphClient against the Graph API simulator, over real HTTP: sends, read receipts,
media, the classification of every kind of failure, and the status webhooks."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import socket
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from cybergine.channels.whatsapp.graph import GraphClient, GraphError, MediaTooLarge
from cybergine.channels.whatsapp.messages import (
    buttons_body,
    list_body,
    template_body,
    text_body,
)
from cybergine.channels.whatsapp.payloads import parse_webhook
from cybergine.channels.whatsapp.signature import HEADER, verify_signature
from cybergine.channels.whatsapp.simulator import GraphSimulator, inbound_webhook
from tests.support.server import LiveServer

PHONE_ID = "106540352242922"
OTHER_PHONE_ID = "106540352242999"
TOKEN = "EAAGtest-access-token-0123456789abcdef"
OTHER_TOKEN = "EAAGother-access-token-9876543210"
CUSTOMER = "16315551181"
APP_SECRET = "simulator-app-secret"


@pytest.fixture
def simulator() -> Iterator[GraphSimulator]:
    with GraphSimulator() as sim:
        sim.add_number(PHONE_ID, TOKEN, display_phone_number="15550001111")
        sim.add_number(OTHER_PHONE_ID, OTHER_TOKEN)
        yield sim


@pytest.fixture
async def client(simulator: GraphSimulator) -> AsyncIterator[GraphClient]:
    async with GraphClient(base_url=simulator.base_url, timeout=5) as graph:
        yield graph


@dataclass(frozen=True)
class Delivery:
    raw: bytes
    headers: dict[str, str]


class Receiver:
    """Our side of the webhook, reduced to recording what arrives."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self.app = FastAPI()
        self.app.add_api_route("/webhook", self.hook, methods=["POST"])

    async def hook(self, request: Request) -> Response:
        raw = await request.body()
        with self.lock:
            self.deliveries.append(Delivery(raw, dict(request.headers)))
        return Response(status_code=200)

    async def wait_for(self, count: int, within: float = 10.0) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            with self.lock:
                got = list(self.deliveries)
            if len(got) >= count or loop.time() > deadline:
                return got
            await asyncio.sleep(0.02)


@pytest.fixture
def receiver(simulator: GraphSimulator) -> Iterator[Receiver]:
    hook = Receiver()
    with LiveServer(hook.app) as server:
        simulator.webhook_url = f"{server.url}/webhook"
        simulator.app_secret = APP_SECRET
        yield hook


def statuses_of(delivery: Delivery) -> list[Any]:
    return list(parse_webhook(httpx.Response(200, content=delivery.raw).json()).statuses)


# --- sending ----------------------------------------------------------------------------


async def test_send_text_returns_the_wamid_the_simulator_recorded(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    body = text_body(CUSTOMER, "Hello from the assistant")
    wamid = await client.send(PHONE_ID, TOKEN, body)
    assert wamid.startswith("wamid.")
    [sent] = simulator.sent
    assert sent.wamid == wamid
    assert (sent.phone_number_id, sent.to, sent.type) == (PHONE_ID, CUSTOMER, "text")
    assert sent.body == body
    assert sent.text == "Hello from the assistant"
    assert await client.send(PHONE_ID, TOKEN, body) != wamid  # every message its own id


async def test_every_builder_produces_a_body_meta_accepts(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    bodies = [
        buttons_body(CUSTOMER, "Pick", [("y", "Yes"), ("n", "No")], footer="f"),
        list_body(
            CUSTOMER,
            "Choose",
            "Menu",
            [("Food", [("p", "Pizza", "Hot")]), ("Drinks", [("t", "Tea", None)])],
        ),
        template_body(
            CUSTOMER,
            "order_update",
            "en_US",
            [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}],
        ),
        text_body(CUSTOMER, "\U0001f600" * 4096, reply_to="wamid.INBOUND", callback_data="c-1"),
    ]
    for body in bodies:
        await client.send(PHONE_ID, TOKEN, body)
    sent = simulator.sent
    assert [s.type for s in sent] == ["interactive", "interactive", "template", "text"]
    assert sent[3].reply_to == "wamid.INBOUND"
    assert sent[3].callback_data == "c-1"


async def test_a_body_meta_would_refuse_is_a_final_error_without_the_text(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    too_long = "private customer detail " * 200  # 4800 characters, bypassing the builder
    body = {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "text",
        "text": {"body": too_long},
    }
    with pytest.raises(GraphError) as caught:
        await client.send(PHONE_ID, TOKEN, body)
    err = caught.value
    assert (err.status, err.code, err.retryable) == (400, 100, False)
    assert "must be at most 4096 characters" in str(err)
    assert "private customer detail" not in str(err)
    assert simulator.sent == []


async def test_a_bad_token_is_token_invalid_and_final(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    wrong = "EAAGwrong-token-should-never-appear"
    with pytest.raises(GraphError) as caught:
        await client.send(PHONE_ID, wrong, text_body(CUSTOMER, "Hi"))
    err = caught.value
    assert err.token_invalid
    assert (err.status, err.code, err.retryable) == (401, 190, False)
    assert wrong not in str(err)
    assert wrong not in repr(err.__dict__)
    assert simulator.sent == []


async def test_a_token_of_another_number_cannot_send_from_this_one(client: GraphClient) -> None:
    with pytest.raises(GraphError) as caught:
        await client.send(PHONE_ID, OTHER_TOKEN, text_body(CUSTOMER, "Hi"))
    assert (caught.value.code, caught.value.subcode, caught.value.retryable) == (100, 33, False)
    assert not caught.value.token_invalid


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [
        ({"status": 500}, None),
        ({"status": 503, "retry_after": 3}, 3.0),
        ({"status": 429, "retry_after": 7}, 7.0),
        ({"code": 130429}, None),
        ({"code": 131056, "retry_after": 2}, 2.0),
        ({"code": 131000}, None),
        ({"code": 133004}, None),
        ({"code": 80007}, None),
        ({"code": 4}, None),
        ({"code": 2}, None),
    ],
)
async def test_temporary_failures_are_retryable(
    client: GraphClient,
    simulator: GraphSimulator,
    fault: dict[str, Any],
    retry_after: float | None,
) -> None:
    simulator.fail_next(**fault)
    with pytest.raises(GraphError) as caught:
        await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi"))
    err = caught.value
    assert err.retryable
    assert err.retry_after == retry_after
    if "code" in fault:
        assert err.code == fault["code"]
    if "status" in fault:
        assert err.status == fault["status"]
    # One attempt per call: the fault was used once, the next call goes through.
    await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi"))
    assert len(simulator.sent) == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"code": 100},
        {"code": 131026},
        {"code": 131051},
        {"status": 403},
        {"status": 404},
        {"status": 400, "code": 368},  # a code we do not list: a 4xx is final
        {"status": 500, "code": 131047},  # a final code stays final whatever the status
    ],
)
async def test_permanent_failures_are_not_retryable(
    client: GraphClient, simulator: GraphSimulator, fault: dict[str, Any]
) -> None:
    simulator.fail_next(**fault)
    with pytest.raises(GraphError) as caught:
        await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi"))
    assert not caught.value.retryable


async def test_error_text_never_quotes_the_token_or_the_message(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    text = "My card number is 4111 1111 1111 1111"
    simulator.fail_next(
        code=100,
        message=f"(#100) Invalid parameter near {text!r} for token {TOKEN}",
        details=f"Param text['body'] ({text}) is odd",
    )
    with pytest.raises(GraphError) as caught:
        await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, text))
    err = caught.value
    rendered = f"{err} {err.message} {err.details}"
    assert "(#100) Invalid parameter" in rendered
    assert TOKEN not in rendered
    assert "4111" not in rendered
    assert "[access token]" in err.message
    assert (err.code, err.retryable) == (100, False)
    assert err.fbtrace_id
    assert err.error_type == "OAuthException"


async def test_closed_window_is_reported_as_such(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    simulator.fail_next(code=131047)
    with pytest.raises(GraphError) as caught:
        await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi"))
    err = caught.value
    assert err.window_closed
    assert not err.retryable
    assert not err.token_invalid
    assert "more than 24 hours" in str(err)


async def test_an_html_error_page_from_a_proxy_is_readable(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    simulator.fail_next(status=502, raw_body="<html>502 Bad Gateway</html>")
    with pytest.raises(GraphError) as caught:
        await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi"))
    assert caught.value.retryable
    assert caught.value.code is None
    assert "502 Bad Gateway" in str(caught.value)


async def test_a_slow_answer_times_out_as_retryable(simulator: GraphSimulator) -> None:
    simulator.delay_seconds = 1.0
    async with GraphClient(base_url=simulator.base_url, timeout=0.2) as graph:
        with pytest.raises(GraphError) as caught:
            await graph.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi"))
    err = caught.value
    assert err.retryable
    assert err.status is None
    assert "no answer within 0.2 s" in str(err)
    assert err.__cause__ is None
    assert err.__suppress_context__


async def test_an_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    async with GraphClient(base_url=f"http://127.0.0.1:{port}/v23.0", timeout=2) as graph:
        with pytest.raises(GraphError) as caught:
            await graph.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi"))
    assert caught.value.retryable
    assert "could not reach" in str(caught.value)


async def test_ids_that_are_not_plain_ids_never_reach_the_server(client: GraphClient) -> None:
    with pytest.raises(GraphError, match="invalid phone number id") as caught:
        await client.send("../me", TOKEN, text_body(CUSTOMER, "Hi"))
    assert not caught.value.retryable
    with pytest.raises(GraphError, match="invalid media id"):
        await client.media_info("123/../../me", TOKEN)


async def test_template_unknown_to_meta(client: GraphClient, simulator: GraphSimulator) -> None:
    simulator.add_template("order_update", "en_US")
    await client.send(PHONE_ID, TOKEN, template_body(CUSTOMER, "order_update", "en_US"))
    with pytest.raises(GraphError) as caught:
        await client.send(PHONE_ID, TOKEN, template_body(CUSTOMER, "order_update", "fr"))
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (404, 132001, False)


# --- read receipts ----------------------------------------------------------------------


async def test_mark_read(client: GraphClient, simulator: GraphSimulator) -> None:
    await client.mark_read(PHONE_ID, TOKEN, "wamid.INBOUND1")
    await client.mark_read(PHONE_ID, TOKEN, "wamid.INBOUND2", typing_indicator=True)
    receipts = simulator.read_receipts
    assert [(r.message_id, r.typing_indicator) for r in receipts] == [
        ("wamid.INBOUND1", False),
        ("wamid.INBOUND2", True),
    ]
    assert simulator.sent == []
    with pytest.raises(GraphError) as caught:
        await client.mark_read(PHONE_ID, TOKEN, "not-a-wamid")
    assert (caught.value.code, caught.value.retryable) == (131009, False)


async def test_a_send_fault_spares_read_receipts_and_faults_can_target_them(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    simulator.fail_next(code=130429)
    await client.mark_read(PHONE_ID, TOKEN, "wamid.IN")  # not a send: unaffected
    with pytest.raises(GraphError):
        await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi"))
    simulator.fail_next(status=500, endpoint="read")
    await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi"))
    with pytest.raises(GraphError) as caught:
        await client.mark_read(PHONE_ID, TOKEN, "wamid.IN")
    assert caught.value.retryable
    assert caught.value.operation == "mark read"
    with pytest.raises(ValueError, match="endpoint"):
        simulator.fail_next(endpoint="messages")


# --- media ------------------------------------------------------------------------------


async def test_media_lookup_and_download_round_trip(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    content = bytes(range(256)) * 1000
    simulator.add_media("1037543291543636", content, "image/jpeg")
    info = await client.media_info("1037543291543636", TOKEN)
    assert info.id == "1037543291543636"
    assert info.mime_type == "image/jpeg"
    assert info.file_size == len(content)
    assert info.sha256 == hashlib.sha256(content).hexdigest()
    assert await client.download(info.url, TOKEN, max_bytes=len(content)) == content
    simulator.stream_downloads = True
    assert await client.download(info.url, TOKEN, max_bytes=len(content)) == content


async def test_download_needs_the_token(client: GraphClient, simulator: GraphSimulator) -> None:
    simulator.add_media("42", b"data", "audio/ogg", phone_number_id=PHONE_ID)
    info = await client.media_info("42", TOKEN)
    with pytest.raises(GraphError) as caught:
        await client.download(info.url, OTHER_TOKEN, max_bytes=100)
    assert caught.value.token_invalid
    assert not caught.value.retryable
    with pytest.raises(GraphError) as caught:
        await client.media_info("42", OTHER_TOKEN)  # the media belongs to another number
    assert caught.value.code == 100


async def test_media_faults(client: GraphClient, simulator: GraphSimulator) -> None:
    simulator.add_media("5", b"data", "image/png")
    simulator.fail_next(code=131000, endpoint="media")
    with pytest.raises(GraphError) as caught:
        await client.media_info("5", TOKEN)
    assert caught.value.retryable
    assert caught.value.code == 131000
    info = await client.media_info("5", TOKEN)
    simulator.fail_next(status=503, retry_after=1.5, endpoint="download")
    with pytest.raises(GraphError) as caught:
        await client.download(info.url, TOKEN, max_bytes=100)
    assert (caught.value.retryable, caught.value.retry_after) == (True, 1.5)
    assert await client.download(info.url, TOKEN, max_bytes=100) == b"data"


async def test_unknown_media_is_a_final_error(client: GraphClient) -> None:
    with pytest.raises(GraphError) as caught:
        await client.media_info("999", TOKEN)
    assert (caught.value.code, caught.value.subcode, caught.value.retryable) == (100, 33, False)


async def test_download_over_the_limit_is_refused_from_content_length(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    simulator.add_media("7", b"x" * 10_000, "video/mp4")
    info = await client.media_info("7", TOKEN)
    with pytest.raises(MediaTooLarge) as caught:
        await client.download(info.url, TOKEN, max_bytes=9_999)
    assert (caught.value.size, caught.value.limit, caught.value.retryable) == (10_000, 9_999, False)
    assert "Content-Length" in str(caught.value)


async def test_download_over_the_limit_stops_while_streaming(
    client: GraphClient, simulator: GraphSimulator
) -> None:
    simulator.stream_downloads = True  # no Content-Length: only counting can tell
    simulator.add_media("8", b"y" * 1_000_000, "video/mp4")
    info = await client.media_info("8", TOKEN)
    with pytest.raises(MediaTooLarge) as caught:
        await client.download(info.url, TOKEN, max_bytes=50_000)
    assert 50_000 < caught.value.size < 200_000  # stopped soon after the limit


async def test_the_token_is_never_sent_to_a_foreign_media_host(client: GraphClient) -> None:
    for url in ("https://attacker.example/media.jpg", "http://lookaside.fbsbx.com/x"):
        with pytest.raises(GraphError, match="refusing to send the access token") as caught:
            await client.download(url, TOKEN, max_bytes=100)
        assert not caught.value.retryable


async def test_a_redirect_to_another_host_does_not_carry_the_token() -> None:
    seen: list[str | None] = []
    elsewhere = FastAPI()

    @elsewhere.get("/file")
    async def file(request: Request) -> Response:
        seen.append(request.headers.get("authorization"))
        return Response(b"the bytes", media_type="image/jpeg")

    with LiveServer(elsewhere) as other:
        graph_side = FastAPI()

        @graph_side.get("/media/1")
        async def redirect() -> Response:
            return Response(status_code=302, headers={"Location": f"{other.url}/file"})

        with LiveServer(graph_side) as server:
            async with GraphClient(base_url=f"{server.url}/v23.0", timeout=5) as graph:
                assert await graph.download(f"{server.url}/media/1", TOKEN, max_bytes=100) == (
                    b"the bytes"
                )
    assert seen == [None]


async def test_a_download_may_outlast_the_timeout_while_bytes_keep_coming() -> None:
    async def trickle(gap: float) -> AsyncIterator[bytes]:
        for _ in range(6):
            await asyncio.sleep(gap)
            yield b"x" * 1000

    app = FastAPI()

    @app.get("/media/{gap}")
    async def media(gap: float) -> StreamingResponse:
        return StreamingResponse(trickle(gap), media_type="video/mp4")

    with LiveServer(app) as server:
        async with GraphClient(base_url=f"{server.url}/v23.0", timeout=0.5) as graph:
            # 6 x 0.15 s: longer than the timeout in all, never silent for that long
            data = await graph.download(f"{server.url}/media/0.15", TOKEN, max_bytes=10_000)
            assert data == b"x" * 6000
            with pytest.raises(GraphError) as caught:
                await graph.download(f"{server.url}/media/0.8", TOKEN, max_bytes=10_000)
    assert caught.value.retryable
    assert "no answer within 0.5 s" in str(caught.value)


def test_one_client_serves_one_event_loop_after_another(simulator: GraphSimulator) -> None:
    graph = GraphClient(base_url=simulator.base_url, timeout=5)

    async def send(text: str) -> str:
        return await graph.send(PHONE_ID, TOKEN, text_body(CUSTOMER, text))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        first = asyncio.run(send("first loop"))
        second = asyncio.run(send("second loop"))  # the first loop's session is left
        asyncio.run(graph.aclose())
        gc.collect()
    assert [s.wamid for s in simulator.sent] == [first, second]
    assert not [w for w in caught if "Unclosed client session" in str(w.message)]


# --- status webhooks --------------------------------------------------------------------


async def test_status_webhooks_are_signed_and_carry_the_callback_data(
    client: GraphClient, simulator: GraphSimulator, receiver: Receiver
) -> None:
    body = text_body(CUSTOMER, "Your order shipped", callback_data="conversation:42")
    wamid = await client.send(PHONE_ID, TOKEN, body)
    deliveries = await receiver.wait_for(2)
    assert len(deliveries) == 2
    for delivery in deliveries:
        assert verify_signature(delivery.raw, delivery.headers[HEADER.lower()], APP_SECRET)
        assert not verify_signature(delivery.raw, delivery.headers[HEADER.lower()], "other")
    statuses = [s for d in deliveries for s in statuses_of(d)]
    assert [s.status for s in statuses] == ["sent", "delivered"]
    for status in statuses:
        assert status.message_id == wamid
        assert status.phone_number_id == PHONE_ID
        assert status.recipient_wa_id == CUSTOMER
        assert status.raw["biz_opaque_callback_data"] == "conversation:42"
        assert status.raw["timestamp"].isdigit()
    value = httpx.Response(200, content=deliveries[0].raw).json()["entry"][0]["changes"][0]
    assert value["value"]["metadata"] == {
        "display_phone_number": "15550001111",
        "phone_number_id": PHONE_ID,
    }
    await asyncio.sleep(0.3)
    assert len(receiver.deliveries) == 2  # no "read" unless asked
    assert all(d.ok for d in simulator.webhook_deliveries)


async def test_auto_read_adds_a_read_status_and_no_callback_data_means_none(
    client: GraphClient, simulator: GraphSimulator, receiver: Receiver
) -> None:
    simulator.auto_read = True
    wamid = await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi"))
    statuses = [s for d in await receiver.wait_for(3) for s in statuses_of(d)]
    assert [s.status for s in statuses] == ["sent", "delivered", "read"]
    assert {s.message_id for s in statuses} == {wamid}
    assert all("biz_opaque_callback_data" not in s.raw for s in statuses)


async def test_a_failed_delivery_arrives_as_a_failed_status(
    client: GraphClient, simulator: GraphSimulator, receiver: Receiver
) -> None:
    simulator.fail_delivery_next(code=131026)
    await client.send(PHONE_ID, TOKEN, text_body(CUSTOMER, "Hi", callback_data="c"))
    statuses = [s for d in await receiver.wait_for(2) for s in statuses_of(d)]
    assert [s.status for s in statuses] == ["sent", "failed"]
    assert [e.code for e in statuses[1].errors] == [131026]
    assert statuses[1].raw["biz_opaque_callback_data"] == "c"


async def test_inbound_webhook_is_what_meta_posts_for_a_customer_message(
    simulator: GraphSimulator, receiver: Receiver
) -> None:
    body = simulator.inbound_webhook(
        PHONE_ID, CUSTOMER, "Hola, ¿tienen envíos?", name="Ana", message_id="wamid.IN1"
    )
    assert await simulator.adeliver(body) == 200
    [delivery] = await receiver.wait_for(1)
    assert verify_signature(delivery.raw, delivery.headers[HEADER.lower()], APP_SECRET)
    assert delivery.raw.isascii()  # Meta escapes non-ASCII characters
    [message] = parse_webhook(httpx.Response(200, content=delivery.raw).json()).messages
    assert (message.message_id, message.from_wa_id, message.profile_name) == (
        "wamid.IN1",
        CUSTOMER,
        "Ana",
    )
    assert (message.text, message.phone_number_id, message.display_phone_number) == (
        "Hola, ¿tienen envíos?",
        PHONE_ID,
        "15550001111",
    )


def test_inbound_webhook_without_a_simulator_parses() -> None:
    batch = parse_webhook(inbound_webhook(PHONE_ID, CUSTOMER, "Hi"))
    assert batch.problems == ()
    [message] = batch.messages
    assert message.text == "Hi"
    assert message.message_id.startswith("wamid.")
    assert message.profile_name is None
