"""The OpenAI-compatible chat provider against a real HTTP server
(tests/support/openai_simulator.py): no mocks."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cybergine.llm.openai_chat import OpenAICompatibleChat
from cybergine.llm.providers import (
    HANDOFF_TOOL,
    SEARCH_KNOWLEDGE_TOOL,
    ChatMessage,
    LLMError,
    LLMProvider,
    ToolCall,
    Usage,
)
from tests.support.openai_simulator import (
    Fault,
    OpenAISimulator,
    Reply,
    ScriptedToolCall,
    echo_reply,
)

CHAT = "/v1/chat/completions"
SYSTEM = "You are the helpful assistant of Example Shop."
QUESTION = "How long do refunds take for order 1234?"
CONVERSATION = (ChatMessage("system", SYSTEM), ChatMessage("user", QUESTION))


@pytest.fixture
def simulator() -> Iterator[OpenAISimulator]:
    # One per test: a request a slow test left in flight must not take the next test's
    # scripted reply.
    with OpenAISimulator(api_key="sk-test-key") as sim:
        yield sim


def chat_for(sim: OpenAISimulator, **overrides: Any) -> OpenAICompatibleChat:
    options: dict[str, Any] = {
        "base_url": sim.base_url,
        "api_key": "sk-test-key",
        "model": "gpt-4o-mini",
        "backoff": 0.05,
    }
    options.update(overrides)
    return OpenAICompatibleChat(**options)


async def test_text_reply_with_usage(simulator: OpenAISimulator) -> None:
    async with chat_for(simulator) as provider:
        assert isinstance(provider, LLMProvider)
        assert provider.name == "openai:gpt-4o-mini"
        completion = await provider.complete(CONVERSATION)
        again = await provider.complete(CONVERSATION)
    expected = echo_reply([{"role": "user", "content": QUESTION}])
    assert completion.content == expected == again.content
    assert completion.tool_calls == ()
    assert completion.finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    usage = completion.usage
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    first = simulator.received(CHAT)[0]
    assert first.headers["authorization"] == "Bearer sk-test-key"
    assert first.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
        ],
        "temperature": 0.2,
        "max_tokens": 500,
        "store": False,
    }  # no "tools" key when there are none (OpenAI refuses an empty list)


async def test_no_request_asks_the_provider_to_store_it(simulator: OpenAISimulator) -> None:
    """Every completion, tool rounds included, says ``"store": false`` (policy §7: data
    sent to a model provider is for generation only)."""
    simulator.reply_next(Reply(tool_calls=(ScriptedToolCall("search_knowledge", {"query": "x"}),)))
    async with chat_for(simulator) as provider:
        first = await provider.complete(CONVERSATION, tools=(SEARCH_KNOWLEDGE_TOOL,))
        [call] = first.tool_calls
        await provider.complete(
            [
                *CONVERSATION,
                ChatMessage("assistant", None, tool_calls=first.tool_calls),
                ChatMessage("tool", "Nothing matches.", tool_call_id=call.id),
            ]
        )
    bodies = [r.body for r in simulator.received(CHAT)]
    assert len(bodies) == 2
    assert all(body["store"] is False for body in bodies)


async def test_tool_call_round_trip(simulator: OpenAISimulator) -> None:
    simulator.reply_next(
        Reply(
            tool_calls=(
                ScriptedToolCall("search_knowledge", {"query": "refund time"}, id="call_abc"),
            )
        ),
        Reply(content="Refunds are issued within 14 days."),
    )
    tools = (SEARCH_KNOWLEDGE_TOOL, HANDOFF_TOOL)
    async with chat_for(simulator) as provider:
        asked = await provider.complete(CONVERSATION, tools=tools, temperature=0, max_tokens=200)
        assert asked.content is None
        assert asked.finish_reason == "tool_calls"
        assert asked.tool_calls == (
            ToolCall(id="call_abc", name="search_knowledge", arguments={"query": "refund time"}),
        )
        assert asked.tool_calls[0].arguments_valid
        history = [
            *CONVERSATION,
            ChatMessage("assistant", asked.content, tool_calls=asked.tool_calls),
            ChatMessage("tool", "Refunds: within 14 days of receipt.", tool_call_id="call_abc"),
        ]
        answered = await provider.complete(history, tools=tools)
    assert answered.content == "Refunds are issued within 14 days."
    assert answered.finish_reason == "stop"
    assert answered.tool_calls == ()

    first, second = (r.body for r in simulator.received(CHAT))
    assert first["temperature"] == 0
    assert first["max_tokens"] == 200
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "search_knowledge",
                "description": SEARCH_KNOWLEDGE_TOOL.description,
                "parameters": {
                    "type": "object",
                    "properties": {
                        "query": {
                            "type": "string",
                            "description": "What to look for, in the customer's language.",
                        }
                    },
                    "required": ["query"],
                    "additionalProperties": False,
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "handoff_to_human",
                "description": HANDOFF_TOOL.description,
                "parameters": HANDOFF_TOOL.parameters,
            },
        },
    ]
    assert HANDOFF_TOOL.parameters["required"] == ["reason"]
    assert second["tools"] == first["tools"]
    assistant, tool = second["messages"][-2:]
    (call,) = assistant.pop("tool_calls")
    assert assistant == {"role": "assistant", "content": None}
    arguments = call["function"].pop("arguments")
    assert isinstance(arguments, str)  # a JSON string, as OpenAI documents it
    assert json.loads(arguments) == {"query": "refund time"}
    assert call == {"id": "call_abc", "type": "function", "function": {"name": "search_knowledge"}}
    assert tool == {
        "role": "tool",
        "content": "Refunds: within 14 days of receipt.",
        "tool_call_id": "call_abc",
    }


async def test_429_waits_for_retry_after_then_succeeds(simulator: OpenAISimulator) -> None:
    simulator.fail_next(Fault(429, retry_after=0.3))
    async with chat_for(simulator, backoff=10) as provider:  # Retry-After wins
        started = time.monotonic()
        completion = await provider.complete(CONVERSATION)
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 5
    assert len(simulator.received(CHAT)) == 2
    assert completion.finish_reason == "stop"


async def test_retry_after_as_an_http_date(simulator: OpenAISimulator) -> None:
    when = email.utils.formatdate(time.time() + 1, usegmt=True)
    simulator.fail_next(Fault(503, headers={"Retry-After": when}))
    async with chat_for(simulator, backoff=10) as provider:
        started = time.monotonic()
        await provider.complete(CONVERSATION)
        elapsed = time.monotonic() - started
    assert elapsed < 3
    assert len(simulator.received(CHAT)) == 2


async def test_retry_after_beyond_the_limit_is_not_waited_for(
    simulator: OpenAISimulator,
) -> None:
    simulator.fail_next(Fault(429, retry_after=120))
    async with chat_for(simulator, max_retry_after=5) as provider:
        started = time.monotonic()
        with pytest.raises(LLMError, match="HTTP 429 after 1 attempt") as caught:
            await provider.complete(CONVERSATION)
    assert time.monotonic() - started < 2
    assert (caught.value.status, caught.value.retryable, caught.value.attempts) == (429, True, 1)
    assert len(simulator.received(CHAT)) == 1


async def test_500_twice_then_success(simulator: OpenAISimulator) -> None:
    simulator.fail_next(Fault(500), Fault(500))
    async with chat_for(simulator) as provider:
        completion = await provider.complete(CONVERSATION)
    assert completion.content == echo_reply([{"role": "user", "content": QUESTION}])
    assert len(simulator.received(CHAT)) == 3


async def test_500_always_exhausts_the_attempts(simulator: OpenAISimulator) -> None:
    simulator.fail_next(Fault(500), Fault(502), Fault(500), Fault(500))
    async with chat_for(simulator, max_attempts=3) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(CONVERSATION)
    error = caught.value
    assert (error.status, error.retryable, error.attempts) == (500, True, 3)
    assert "HTTP 500 after 3 attempts" in str(error)
    assert "The server had an error" in str(error)
    assert QUESTION not in str(error)
    assert len(simulator.received(CHAT)) == 3


async def test_400_is_not_retried_and_carries_the_servers_message(
    simulator: OpenAISimulator,
) -> None:
    async with chat_for(simulator) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(CONVERSATION, temperature=3)
    error = caught.value
    assert (error.status, error.retryable, error.attempts) == (400, False, 1)
    assert "refused with HTTP 400: Invalid 'temperature'" in str(error)
    assert QUESTION not in str(error)
    assert SYSTEM not in str(error)
    assert len(simulator.received(CHAT)) == 1


async def test_a_server_quoting_the_prompt_does_not_leak_it(simulator: OpenAISimulator) -> None:
    quoted = json.dumps(
        {"error": {"message": f"Content rejected: '{QUESTION}' (policy)", "type": "invalid"}}
    )
    simulator.fail_next(Fault(400, body=quoted))
    async with chat_for(simulator) as provider:
        with pytest.raises(LLMError, match=r"Content rejected: '\[input text\]'") as caught:
            await provider.complete(CONVERSATION)
    assert QUESTION not in str(caught.value)
    assert not caught.value.retryable


async def test_a_bad_key_is_a_401_not_retried(simulator: OpenAISimulator) -> None:
    async with chat_for(simulator, api_key="sk-wrong-key") as provider:
        with pytest.raises(LLMError, match=r"HTTP 401.*Incorrect API key") as caught:
            await provider.complete(CONVERSATION)
    assert (caught.value.status, caught.value.retryable) == (401, False)
    assert "sk-wrong-key" not in str(caught.value)
    assert len(simulator.received(CHAT)) == 1


async def test_a_slow_server_times_out_after_the_retries(simulator: OpenAISimulator) -> None:
    simulator.delay_seconds = 1.0
    async with chat_for(simulator, timeout=0.2, max_attempts=2) as provider:
        started = time.monotonic()
        with pytest.raises(LLMError, match=r"failed after 2 attempts: \w*Timeout") as caught:
            await provider.complete(CONVERSATION)
    assert time.monotonic() - started < 1.5
    assert (caught.value.status, caught.value.retryable, caught.value.attempts) == (None, True, 2)
    assert len(simulator.received(CHAT)) == 2


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('{"id": "chatcmpl-1", "choices": [{"index": 0, "mess', "not JSON"),
        ('{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}', 'no "choices"'),
        ('{"choices": [{"index": 0, "finish_reason": "stop"}]}', 'no "message"'),
        ('{"choices": [{"message": {"role": "assistant", "content": 7}}]}', "not a string"),
    ],
)
async def test_a_malformed_body_is_an_error(
    simulator: OpenAISimulator, body: str, why: str
) -> None:
    simulator.fail_next(Fault(200, body=body))
    async with chat_for(simulator) as provider:
        with pytest.raises(LLMError, match=f"malformed chat completion response.*{why}") as caught:
            await provider.complete(CONVERSATION)
    assert (caught.value.status, caught.value.retryable) == (200, False)
    assert QUESTION not in str(caught.value)


@pytest.mark.parametrize("raw", ['{"query": "refu', '"refund time"', "[1, 2]"])
async def test_tool_call_arguments_that_are_not_a_json_object(
    simulator: OpenAISimulator, raw: str
) -> None:
    simulator.reply_next(
        Reply(tool_calls=(ScriptedToolCall("search_knowledge", raw, id="call_bad"),)),
        Reply(content="Sorry, let me try again."),
    )
    async with chat_for(simulator) as provider:
        asked = await provider.complete(CONVERSATION, tools=(SEARCH_KNOWLEDGE_TOOL,))
        (call,) = asked.tool_calls
        assert (call.id, call.name, call.arguments, call.raw_arguments) == (
            "call_bad",
            "search_knowledge",
            {},
            raw,
        )
        assert not call.arguments_valid
        # The conversation goes on: the call is sent back exactly as the model made it.
        history = [
            *CONVERSATION,
            ChatMessage("assistant", None, tool_calls=asked.tool_calls),
            ChatMessage(
                "tool", "error: the arguments were not valid JSON", tool_call_id="call_bad"
            ),
        ]
        answered = await provider.complete(history, tools=(SEARCH_KNOWLEDGE_TOOL,))
    assert answered.content == "Sorry, let me try again."
    sent = simulator.received(CHAT)[1].body["messages"][-2]["tool_calls"][0]
    assert sent["function"]["arguments"] == raw


async def test_missing_usage_is_zeros(simulator: OpenAISimulator) -> None:
    simulator.reply_next(Reply(content="Hello!", usage=False, model="llama3.1:8b"))
    async with chat_for(simulator, model="llama3.1") as provider:
        completion = await provider.complete(CONVERSATION)
    assert completion.usage == Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    assert completion.content == "Hello!"
    assert completion.model == "llama3.1:8b"  # what the server says it ran


async def test_extra_headers_and_query_parameters(simulator: OpenAISimulator) -> None:
    simulator.api_key = None  # Azure-style: the key goes in its own header
    try:
        async with chat_for(
            simulator,
            api_key=None,
            headers={"api-key": "azure-key"},
            params={"api-version": "2024-10-21"},
        ) as provider:
            await provider.complete(CONVERSATION)
    finally:
        simulator.api_key = "sk-test-key"
    (request,) = simulator.received(CHAT)
    assert request.headers["api-key"] == "azure-key"
    assert "authorization" not in request.headers
    assert request.query == {"api-version": "2024-10-21"}


async def test_the_openai_environment_variables_are_not_read(
    simulator: OpenAISimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK would fill these in; they must not reach a server the provider was not
    # configured for.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-from-the-environment")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-from-the-environment")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    simulator.api_key = None  # a keyless server, as Ollama
    try:
        async with chat_for(simulator, api_key=None) as provider:
            await provider.complete(CONVERSATION)
    finally:
        simulator.api_key = "sk-test-key"
    (request,) = simulator.received(CHAT)
    assert "authorization" not in request.headers
    assert "openai-organization" not in request.headers
    assert "openai-project" not in request.headers


async def test_an_authorization_header_given_without_a_key_is_sent(
    simulator: OpenAISimulator,
) -> None:
    async with chat_for(
        simulator, api_key=None, headers={"Authorization": "Bearer sk-test-key"}
    ) as provider:
        await provider.complete(CONVERSATION)
    (request,) = simulator.received(CHAT)
    assert request.headers["authorization"] == "Bearer sk-test-key"


async def test_retries_are_counted_in_the_request_headers(simulator: OpenAISimulator) -> None:
    simulator.fail_next(Fault(500))
    async with chat_for(simulator) as provider:
        await provider.complete(CONVERSATION)
    counts = [r.headers["x-stainless-retry-count"] for r in simulator.received(CHAT)]
    assert counts == ["0", "1"]


class CountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


async def test_a_transport_passed_in_is_used_and_not_closed(simulator: OpenAISimulator) -> None:
    transport = CountingTransport()
    try:
        async with chat_for(simulator, transport=transport) as provider:
            await provider.complete(CONVERSATION)
        assert transport.requests == 1
        assert not transport.closed
    finally:
        await transport.aclose()


async def test_an_unreachable_server_is_a_retryable_error() -> None:
    from tests.support.server import free_port

    provider = OpenAICompatibleChat(
        base_url=f"http://127.0.0.1:{free_port()}/v1", api_key=None, model="m", backoff=0.01
    )
    async with provider:
        with pytest.raises(LLMError, match="failed after 3 attempts: ConnectError") as caught:
            await provider.complete(CONVERSATION)
    assert (caught.value.status, caught.value.retryable, caught.value.attempts) == (None, True, 3)


def test_messages_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="tool_call_id"):
        ChatMessage("tool", "result")
    with pytest.raises(ValueError, match="tool_call_id"):
        ChatMessage("user", "hi", tool_call_id="call_1")
    with pytest.raises(ValueError, match="only assistant"):
        ChatMessage("user", "hi", tool_calls=(ToolCall("c", "search_knowledge", {}),))
