"""The :class:`~cybergine.llm.providers.LLMProvider` of every OpenAI-compatible
``/v1/chat/completions`` endpoint (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp server),
through the official ``openai`` SDK (``AsyncOpenAI``); the retry policy and the reading of
servers' errors stay ours, shared with the embeddings client.

Its own module because the SDK is the heaviest import of the platform: a process loads it
when it first builds a provider (``conversations.answering``), not at start.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import httpx
from openai import APIConnectionError, APIStatusError, AsyncOpenAI, Omit, omit
from openai.types import CompletionUsage
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessage,
    ChatCompletionMessageParam,
)
from openai.types.chat.chat_completion import Choice

from cybergine.egress import DestinationRefused, OutboundPolicy
from cybergine.llm.providers import (
    ChatMessage,
    Completion,
    LLMError,
    ToolCall,
    ToolSpec,
    Usage,
)
from cybergine.observability.metrics import metered_model_call
from cybergine.observability.tracing import traced_model_call

# One retry policy and one reading of servers' errors for every OpenAI-compatible client.
from cybergine.outbound import (
    AsyncClosable,
    BorrowedTransport,
    redact_inputs,
    retry_wait,
    server_message,
)
from cybergine.tls import client_context

# --- Wire format --------------------------------------------------------------------------


def encode_message(message: ChatMessage) -> dict[str, Any]:
    """A message as OpenAI's Chat Completions API takes it."""
    encoded: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "tool":
        encoded["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        encoded["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.name,
                    # Send back what the model sent, even when it did not parse.
                    "arguments": call.raw_arguments
                    if call.raw_arguments is not None
                    else json.dumps(call.arguments),
                },
            }
            for call in message.tool_calls
        ]
    elif message.content is None:
        encoded["content"] = ""  # null content is only taken beside tool calls
    if message.name is not None:
        encoded["name"] = message.name
    return encoded


def encode_tool(tool: ToolSpec) -> ChatCompletionFunctionToolParam:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _parse_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    if isinstance(raw, dict):  # some servers send the object itself
        return raw, None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None  # a call without arguments
    text = raw if isinstance(raw, str) else json.dumps(raw)
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}, text
    if not isinstance(parsed, dict):
        return {}, text
    return parsed, None


def _prompt_texts(messages: Sequence[ChatMessage]) -> list[str]:
    """What a server's error message must not repeat back to our logs."""
    texts: list[str] = []
    for message in messages:
        if message.content:
            texts.append(message.content)
        for call in message.tool_calls:
            texts.append(call.raw_arguments or json.dumps(call.arguments))
    # Longest first, so a text containing another is replaced whole.
    return sorted(texts, key=len, reverse=True)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# --- OpenAI-compatible provider -----------------------------------------------------------

# The SDK will not start without a key (and would read OPENAI_API_KEY in its place, which
# must not reach a third-party server). Keyless servers (Ollama, Azure with its own
# ``api-key`` header) get this one, and the Authorization header is left out of the
# request, so it is never sent.
_NO_KEY = "not-needed"


class OpenAICompatibleChat(AsyncClosable):
    """``POST {base_url}/chat/completions`` through the ``openai`` SDK (``base_url`` ends in
    ``/v1`` for OpenAI, Ollama, vLLM and llama.cpp; Azure: the deployment's URL, with
    ``api_key=None, headers={"api-key": KEY}, params={"api-version": "..."}``).

    429, 408 and 5xx answers, timeouts and network errors are tried up to ``max_attempts``
    times in all, waiting ``backoff * 2**n`` seconds or the server's ``Retry-After``
    (seconds or an HTTP date); a ``Retry-After`` beyond ``max_retry_after`` is not waited
    for. Each attempt is bounded by ``timeout`` seconds in all. Any other 4xx raises
    :class:`LLMError` at once (``retryable=False``) with the status and the server's
    message, with any quoted part of the conversation cut out.

    One SDK client per provider (re-made if used from another event loop) for connection
    reuse; ``aclose()`` (or ``async with``) releases it. A ``transport`` passed in is used
    but never closed. With a ``policy`` (a base URL a tenant chose), every request and
    connection is held to it (:mod:`cybergine.egress`), and a refusal is not retried.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout: float = 30.0,
        max_attempts: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: OutboundPolicy | None = None,
    ) -> None:
        if transport is not None and policy is not None:
            raise ValueError("a policy brings its own transport: give one or the other")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.name = f"openai:{model}"
        self.model = model
        self._base_url = base_url.rstrip("/")
        self.url = self._base_url + "/chat/completions"
        self._api_key = api_key or None
        self._timeout = timeout
        self._headers = dict(headers or {})
        # Without a key, no Authorization header is sent unless the caller gave one.
        self._omit_authorization = self._api_key is None and not any(
            name.lower() == "authorization" for name in self._headers
        )
        self._params = dict(params or {})
        self._transport = BorrowedTransport(transport) if transport is not None else None
        self._policy = policy
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._client: AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.close()

    @metered_model_call("openai")
    @traced_model_call("openai")
    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float = 0.2,
        max_tokens: int = 500,
    ) -> Completion:
        if not messages:
            raise ValueError("complete() needs at least one message")
        # The SDK sends these as they are; its TypedDicts are narrower than what
        # OpenAI-compatible servers take (``name`` on any role, empty content).
        encoded = cast("list[ChatCompletionMessageParam]", [encode_message(m) for m in messages])
        client = self._openai()
        texts = _prompt_texts(messages)
        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            wait = self._backoff * 2 ** (attempt - 1)
            plural = "s" if attempt > 1 else ""
            # The SDK would count its own retries only; these are ours.
            headers: dict[str, str | Omit] = {"x-stainless-retry-count": str(attempt - 1)}
            if self._omit_authorization:
                headers["Authorization"] = omit
            try:
                # The SDK's timeout bounds each phase (connect, each read); this bounds the whole.
                async with asyncio.timeout(self._timeout):
                    raw = await client.chat.completions.with_raw_response.create(
                        model=self.model,
                        messages=encoded,
                        temperature=temperature,
                        max_tokens=max_tokens,
                        tools=[encode_tool(t) for t in tools] if tools else omit,
                        # The model decides whether to call one (OpenAI's default,
                        # spelled out for servers whose default differs).
                        tool_choice="auto" if tools else omit,
                        # Never kept by the provider for its own use (policy §7, §8).
                        store=False,
                        extra_headers=headers,
                    )
            except (APIConnectionError, TimeoutError) as exc:
                if isinstance(exc.__cause__, DestinationRefused):
                    raise LLMError(
                        f"chat completion request to {self.url} refused by the outbound "
                        f"policy: {exc.__cause__}",
                        retryable=False,
                        attempts=attempt,
                    ) from None
                if last:
                    raise LLMError(
                        f"chat completion request to {self.url} failed after {attempt} "
                        f"attempt{plural}: {self._failure(exc)}",
                        retryable=True,
                        attempts=attempt,
                    ) from None
                await asyncio.sleep(wait)
                continue
            except APIStatusError as exc:
                status = exc.status_code
                # The SDK gives back responses of the client it was given: httpx's.
                response = cast(httpx.Response, exc.response)
                message = redact_inputs(
                    server_message(response.content, response.reason_phrase), texts
                )
                if status in (408, 429) or status >= 500:
                    later = retry_wait(
                        response.headers, wait, last=last, longest=self._max_retry_after
                    )
                    if later is not None:
                        await asyncio.sleep(later)
                        continue
                    raise LLMError(
                        f"chat completion request to {self.url} failed with HTTP {status} "
                        f"after {attempt} attempt{plural}: {message}",
                        status=status,
                        retryable=True,
                        attempts=attempt,
                    ) from None
                raise LLMError(
                    f"chat completion request to {self.url} refused with HTTP {status}: {message}",
                    status=status,
                    retryable=False,
                    attempts=attempt,
                ) from None
            return self._parse(raw.parse, raw.status_code)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- internals --

    def _openai(self) -> AsyncOpenAI:
        # A client is bound to the loop it was made on; a provider shared by processes'
        # several loops (tests, the CLI) gets one per loop.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.is_closed() or self._client_loop is not loop:
            http_client = (
                self._policy.client(timeout=self._timeout)
                if self._policy is not None
                else httpx.AsyncClient(
                    transport=self._transport,
                    timeout=httpx.Timeout(self._timeout),
                    verify=client_context(),
                )
            )
            client = AsyncOpenAI(
                base_url=self._base_url,
                api_key=self._api_key or _NO_KEY,
                timeout=self._timeout,
                # Retries are ours: the SDK's backoff, Retry-After limit (2 minutes) and
                # 409 retries cannot be set, nor does it tell how many requests it made.
                max_retries=0,
                default_headers=self._headers,
                default_query=self._params,
                # The SDK takes an httpx client as well as an httpx2 one (it checks at run
                # time), though its annotation names only httpx2's.
                http_client=cast(Any, http_client),
            )
            # The SDK fills these from OPENAI_ORG_ID / OPENAI_PROJECT_ID; this module reads
            # no settings, and they would go to any server. Headers passed in still win.
            client.organization = None
            client.project = None
            self._client, self._client_loop = client, loop
        return self._client

    def _failure(self, exc: BaseException) -> str:
        # The SDK says "Connection error." for every network failure; httpx's error, its
        # cause, names which one.
        if isinstance(exc, APIConnectionError) and exc.__cause__ is not None:
            exc = exc.__cause__
        reason = type(exc).__name__
        if str(exc):
            reason += f": {exc}"
        elif isinstance(exc, TimeoutError):
            reason += f" (no answer within {self._timeout:g}s)"
        return reason

    def _parse(self, parse: Callable[[], object], status: int) -> Completion:
        def malformed(why: str) -> LLMError:
            return LLMError(
                f"malformed chat completion response from {self.url}: {why}", status=status
            )

        try:
            body: object = parse()
        except ValueError:
            raise malformed("not JSON") from None
        # The SDK builds its models without validating them (servers that are only
        # OpenAI-compatible would fail a strict check), so every field used is checked here.
        if not isinstance(body, ChatCompletion):
            # A body that is not JSON under another content type comes back as its text.
            raise malformed("not JSON" if isinstance(body, str) else 'no "choices"')
        choices: object = body.choices
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Choice):
            raise malformed('no "choices"')
        choice = choices[0]
        message = choice.message
        if not isinstance(message, ChatCompletionMessage):
            raise malformed('no "message" in the first choice')
        content: object = message.content
        if content is not None and not isinstance(content, str):
            raise malformed('"content" is not a string')
        raw_calls: object = message.tool_calls or []
        if not isinstance(raw_calls, list):
            raise malformed('"tool_calls" is not a list')
        calls: list[ToolCall] = []
        for index, item in enumerate(raw_calls):
            function = getattr(item, "function", None)
            name = getattr(function, "name", None)
            if not isinstance(name, str) or not name:
                raise malformed(f"tool call {index} has no function name")
            call_id = getattr(item, "id", None)
            arguments, raw_arguments = _parse_arguments(getattr(function, "arguments", None))
            calls.append(
                ToolCall(
                    id=call_id if isinstance(call_id, str) and call_id else f"call_{index}",
                    name=name,
                    arguments=arguments,
                    raw_arguments=raw_arguments,
                )
            )
        finish_reason: object = choice.finish_reason
        usage = body.usage
        if isinstance(usage, CompletionUsage):
            prompt = _int(usage.prompt_tokens)
            completion = _int(usage.completion_tokens)
            total = _int(usage.total_tokens) or prompt + completion
            counted = Usage(prompt, completion, total)
        else:
            counted = Usage()
        model: object = body.model
        return Completion(
            content=content,
            tool_calls=tuple(calls),
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            usage=counted,
            model=model if isinstance(model, str) and model else self.model,
        )


@functools.lru_cache(maxsize=64)
def shared_chat(
    base_url: str, api_key: str | None, model: str, policy: OutboundPolicy | None
) -> OpenAICompatibleChat:
    """One client per endpoint, key, model and policy in this process, for connection reuse."""
    return OpenAICompatibleChat(base_url=base_url, api_key=api_key, model=model, policy=policy)
