"""A local OpenAI-compatible HTTP server for tests and the demo.

It follows OpenAI's documented request and response shapes (``POST /v1/embeddings``,
``POST /v1/chat/completions``, ``GET /v1/models``; more endpoints are added as methods
next to ``embeddings``), checks ``Authorization: Bearer <key>``, and answers
deterministically. Tests flip switches on the instance, from any thread, while it serves:

    with OpenAISimulator(dimensions=384) as sim:
        provider = OpenAICompatibleEmbeddings(base_url=sim.base_url, api_key=sim.api_key, ...)
        sim.fail_next(Fault(429, retry_after=0))  # the next request is rate-limited
        sim.delay_seconds = 2                     # every request answers slowly
        sim.shuffle = True                        # "data" comes back in reverse order
        sim.reply_next(Reply(tool_calls=(ScriptedToolCall("search_knowledge", {"query": "x"}),)))

Embeddings are hashed bags of words: each lower-cased word gets a fixed pseudo-random
vector (seeded by its sha256), a text is the normalised sum of its words' vectors. The
same text always gets the same vector, and texts sharing words are close, which is enough
for a demo to retrieve something sensible with no model at all.

Chat completions answer the scripted replies queued with ``reply_next`` in order, then by
default a deterministic echo of the last user message (:func:`echo_reply`). The request is
checked as OpenAI checks it (roles, tool messages answering a preceding assistant
message's ``tool_calls``, string ``arguments``, non-empty ``tools``, ``temperature``,
a boolean ``store``: whether the provider may keep the completion, ``tool_choice``
only with ``tools`` and naming one of them); ``tool_choice: "none"`` turns a scripted
tool call into words, as the model would answer.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.server import LiveServer

WORD = re.compile(r"\w+", re.UNICODE)
MAX_INPUTS = 2048  # OpenAI: "any array must be 2048 dimensions or less"


@dataclass(frozen=True)
class Fault:
    """One scripted bad answer. ``body`` replaces the JSON error (e.g. a malformed body
    with status 200); ``retry_after`` becomes the Retry-After header (seconds)."""

    status: int = 500
    retry_after: float | None = None
    body: str | None = None
    endpoint: str | None = None  # only requests to this path ("/v1/embeddings"); None: any
    headers: Mapping[str, str] | None = None  # more headers (e.g. a Retry-After HTTP date)


@dataclass(frozen=True)
class ScriptedToolCall:
    """A tool call a scripted reply makes. ``arguments`` as a ``str`` is sent exactly as
    given (e.g. malformed JSON); ``id`` ``None``: ``call_<n>``."""

    name: str
    arguments: dict[str, Any] | str
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One scripted chat completion. ``finish_reason`` ``None``: ``"tool_calls"`` when
    there are tool calls, else ``"stop"``; ``usage=False`` leaves ``usage`` out, as some
    servers do; ``model`` ``None``: the model asked for."""

    content: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    finish_reason: str | None = None
    usage: bool = True
    model: str | None = None


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON, or None
    query: dict[str, str]


def openai_error(
    status: int, message: str, *, type_: str, code: str | None = None, param: str | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": type_, "param": param, "code": code}},
        status_code=status,
    )


_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests. Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


@functools.lru_cache(maxsize=65536)
def _word_vector(word: str, dimensions: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
    vector: np.ndarray[Any, np.dtype[np.float64]] = np.random.default_rng(seed).standard_normal(
        dimensions
    )
    return vector


def deterministic_embedding(text: str, dimensions: int) -> list[float]:
    """The simulator's vector for ``text``: unit length, the same on every call."""
    words = WORD.findall(text.lower()) or [f"\x00{text}"]
    total = np.zeros(dimensions)
    for word in words:
        total += _word_vector(word, dimensions)
    norm = float(np.linalg.norm(total)) or 1.0
    result: list[float] = (total / norm).tolist()
    return result


def _approximate_tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 1.3))


def echo_reply(messages: list[dict[str, Any]]) -> str:
    """The default chat reply: a deterministic summary of the last user message."""
    last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), None)
    if isinstance(last, list):  # content parts: keep the text ones
        last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
    words = WORD.findall(last or "")
    digest = hashlib.sha256((last or "").encode()).hexdigest()[:8]
    return f"Simulated reply to {len(words)} words ({digest}): {' '.join(words[:12])}"


_CHAT_ROLES = frozenset(("system", "developer", "user", "assistant", "tool"))


def _check_chat_request(body: dict[str, Any]) -> str | None:
    """What OpenAI would refuse in this request (its message), or None."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "[] is too short - 'messages'"
    pending: set[str] = set()  # tool_call_ids still to be answered
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in _CHAT_ROLES:
            return f"Invalid value for 'messages[{i}].role'."
        assert isinstance(message, dict)
        if pending and role != "tool":
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(sorted(pending))}"
            )
        content = message.get("content")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            pending.discard(call_id)
            if not isinstance(content, str):
                return f"Invalid type for 'messages[{i}].content': expected a string."
        elif role == "assistant" and message.get("tool_calls") is not None:
            calls = message["tool_calls"]
            if not isinstance(calls, list) or not calls:
                return f"[] is too short - 'messages[{i}].tool_calls'"
            for j, call in enumerate(calls):
                where = f"messages[{i}].tool_calls[{j}]"
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(call, dict) or call.get("type") != "function":
                    return f"Invalid value for '{where}.type'."
                if not isinstance(call.get("id"), str) or not isinstance(function, dict):
                    return f"Missing required parameter: '{where}.id'."
                if not isinstance(function.get("name"), str):
                    return f"Missing required parameter: '{where}.function.name'."
                if not isinstance(function.get("arguments"), str):
                    return f"Invalid type for '{where}.function.arguments': expected a string."
                pending.add(call["id"])
            if content is not None and not isinstance(content, str):
                return f"Invalid type for 'messages[{i}].content'."
        elif not isinstance(content, str | list):
            return f"Invalid type for 'messages[{i}].content': expected one of a string or array."
    if pending:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'. The following tool_call_ids did not have "
            f"response messages: {', '.join(sorted(pending))}"
        )
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not tools:
            return "[] is too short - 'tools'"
        for k, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if (
                not isinstance(tool, dict)
                or tool.get("type") != "function"
                or not isinstance(function, dict)
                or not isinstance(function.get("name"), str)
            ):
                return f"Invalid value for 'tools[{k}]'."
    problem = _check_tool_choice(body.get("tool_choice"), tools)
    if problem is not None:
        return problem
    temperature = body.get("temperature", 1)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        return (
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but "
            f"got {temperature} instead."
        )
    if "store" in body and not isinstance(body["store"], bool):
        return "Invalid type for 'store': expected a boolean."
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return (
            "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but "
            f"got {max_tokens} instead."
        )
    return None


def _check_tool_choice(choice: Any, tools: Any) -> str | None:
    """OpenAI's rules for ``tool_choice``: ``"none"``, ``"auto"``, ``"required"`` or
    ``{"type": "function", "function": {"name": ...}}`` naming one of ``tools``, and only
    with ``tools``."""
    if choice is None:
        return None
    if not tools:
        return (
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
            "are specified."
        )
    if isinstance(choice, str):
        if choice in ("none", "auto", "required"):
            return None
        return f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'."
    function = choice.get("function") if isinstance(choice, dict) else None
    if (
        not isinstance(choice, dict)
        or choice.get("type") != "function"
        or not isinstance(function, dict)
    ):
        return "Invalid value for 'tool_choice'."
    names = {t["function"]["name"] for t in tools}
    if function.get("name") not in names:
        return (
            f"Invalid value for 'tool_choice': function '{function.get('name')}' not found "
            "in 'tools'."
        )
    return None


def tool_results(body: dict[str, Any]) -> dict[str, str]:
    """The tool messages of a chat request, by the id of the call they answer."""
    return {
        m["tool_call_id"]: m["content"]
        for m in body.get("messages", [])
        if isinstance(m, dict) and m.get("role") == "tool"
    }


class OpenAISimulator:
    """An OpenAI-compatible API on 127.0.0.1 (a FastAPI app; ``with`` serves it).

    Switches (safe to flip from the test's thread while serving):
    - ``fail_next(*faults)``: the next requests answer these faults, in order;
    - ``delay_seconds``: every request waits this long before answering;
    - ``shuffle``: embeddings come back in reverse ``index`` order (clients must reorder);
    - ``dimensions``: the width of the vectors (a request's ``"dimensions"`` overrides it);
    - ``api_key``: the only key accepted (``None``: no key needed, as with Ollama);
    - ``reply_next(*replies)``: the next chat completions answer these, in order (then
      the default :func:`echo_reply`).
    ``requests`` records every request received (path, headers, JSON body).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "sk-test-simulator",
        dimensions: int = 384,
        embedding_models: tuple[str, ...] | None = None,  # None: any model name
    ) -> None:
        self.api_key = api_key
        self.dimensions = dimensions
        self.embedding_models = embedding_models
        self.delay_seconds = 0.0
        self.shuffle = False
        self.requests: list[Received] = []
        self._faults: deque[Fault] = deque()
        self._replies: deque[Reply] = deque()
        self._completions = 0
        self._lock = threading.Lock()
        self._server: LiveServer | None = None
        self.app = FastAPI(title="OpenAI simulator", openapi_url=None, docs_url=None)
        self.app.add_api_route("/v1/embeddings", self.embeddings, methods=["POST"])
        self.app.add_api_route("/v1/chat/completions", self.chat_completions, methods=["POST"])
        self.app.add_api_route("/v1/models", self.models, methods=["GET"])

    # -- switches --

    def assistant_fields(self) -> dict[str, str | None]:
        """The fields an assistant is given to answer through this server."""
        return {
            "llm_provider": "openai",
            "llm_base_url": self.base_url,
            "llm_api_key": self.api_key,
            "llm_model": "gpt-test",
        }

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def reply_next(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._replies.clear()
            self.requests.clear()
        self.delay_seconds = 0.0
        self.shuffle = False

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    # -- serving --

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running (use it in a with block)")
        return self._server.url

    @property
    def base_url(self) -> str:
        """What an OpenAI client is configured with (ends in /v1)."""
        return f"{self.url}/v1"

    def __enter__(self) -> OpenAISimulator:
        self._server = LiveServer(self.app)
        self._server.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.__exit__(exc_type, exc, tb)
            self._server = None

    # -- shared by every endpoint --

    async def _intercept(
        self, request: Request, *, json_body: bool = True
    ) -> tuple[Any, Response | None]:
        """Record the request, wait, apply a scripted fault, check the key and parse the
        body. Returns ``(body, None)`` to go on, or ``(None, response)`` to answer now."""
        raw = await request.body()
        try:
            body: Any = await request.json() if raw else None
        except ValueError:
            body = None
        path = request.url.path
        with self._lock:
            self.requests.append(
                Received(path, dict(request.headers), body, dict(request.query_params))
            )
            fault = next((f for f in self._faults if f.endpoint in (None, path)), None)
            if fault is not None:
                self._faults.remove(fault)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if fault is not None:
            return None, self._fault_response(fault)
        if self.api_key is not None:
            header = request.headers.get("authorization", "")
            if not header.startswith("Bearer "):
                return None, openai_error(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    type_="invalid_request_error",
                )
            given = header.removeprefix("Bearer ")
            if given != self.api_key:
                return None, openai_error(
                    401,
                    f"Incorrect API key provided: {given[:3]}***{given[-4:]}.",
                    type_="invalid_request_error",
                    code="invalid_api_key",
                )
        if json_body and not isinstance(body, dict):
            return None, openai_error(
                400,
                "We could not parse the JSON body of your request.",
                type_="invalid_request_error",
            )
        return body, None

    @staticmethod
    def _fault_response(fault: Fault) -> Response:
        headers = dict(fault.headers or {})
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.body is not None:
            return Response(
                fault.body, status_code=fault.status, headers=headers, media_type="application/json"
            )
        message, type_, code = _DEFAULT_ERRORS.get(
            fault.status, (f"Simulated error {fault.status}.", "server_error", None)
        )
        response = openai_error(fault.status, message, type_=type_, code=code)
        response.headers.update(headers)
        return response

    # -- endpoints --

    async def models(self, request: Request) -> Response:
        _, early = await self._intercept(request, json_body=False)
        if early is not None:
            return early
        names = self.embedding_models or ("text-embedding-3-small",)
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": n, "object": "model", "created": 0, "owned_by": "simulator"}
                    for n in names
                ],
            }
        )

    async def embeddings(self, request: Request) -> Response:
        body, early = await self._intercept(request)
        if early is not None:
            return early
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(
                400, "you must provide a model parameter", type_="invalid_request_error"
            )
        if self.embedding_models is not None and model not in self.embedding_models:
            return openai_error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                type_="invalid_request_error",
                code="model_not_found",
            )
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        elif isinstance(texts, list) and texts and all(isinstance(t, int) for t in texts):
            texts = [" ".join(f"t{t}" for t in texts)]  # one input given as token ids
        elif isinstance(texts, list) and all(isinstance(t, list) for t in texts):
            texts = [" ".join(f"t{t}" for t in tokens) for tokens in texts]
        if (
            not isinstance(texts, list)
            or not texts
            or len(texts) > MAX_INPUTS
            or not all(isinstance(t, str) and t for t in texts)
        ):
            return openai_error(
                400,
                "'$.input' is invalid. Please check the API reference: "
                "https://platform.openai.com/docs/api-reference.",
                type_="invalid_request_error",
            )
        dimensions = body.get("dimensions", self.dimensions)
        if not isinstance(dimensions, int) or dimensions < 1:
            return openai_error(
                400, "Invalid value for 'dimensions'.", type_="invalid_request_error"
            )
        encoding = body.get("encoding_format", "float")
        data = []
        for index, text in enumerate(texts):
            vector = deterministic_embedding(text, dimensions)
            embedding: Any = vector
            if encoding == "base64":
                embedding = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        if self.shuffle:
            data.reverse()
        tokens = sum(_approximate_tokens(t) for t in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def chat_completions(self, request: Request) -> Response:
        body, early = await self._intercept(request)
        if early is not None:
            return early
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(
                400, "you must provide a model parameter", type_="invalid_request_error"
            )
        problem = _check_chat_request(body)
        if problem is not None:
            return openai_error(400, problem, type_="invalid_request_error")
        with self._lock:
            reply = self._replies.popleft() if self._replies else None
            self._completions += 1
            number = self._completions
        if reply is None:
            reply = Reply(content=echo_reply(body["messages"]))
        if reply.tool_calls and body.get("tool_choice") == "none":
            # Told not to call a tool, the model answers in words.
            reply = Reply(content=reply.content or echo_reply(body["messages"]))
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        completion_text = reply.content or ""
        if reply.tool_calls:
            calls = []
            for n, call in enumerate(reply.tool_calls):
                arguments = (
                    call.arguments
                    if isinstance(call.arguments, str)
                    else json.dumps(call.arguments)
                )
                completion_text += f" {call.name} {arguments}"
                calls.append(
                    {
                        "id": call.id or f"call_{number}_{n}",
                        "type": "function",
                        "function": {"name": call.name, "arguments": arguments},
                    }
                )
            message["tool_calls"] = calls
        else:
            message["refusal"] = None
        answer: dict[str, Any] = {
            "id": f"chatcmpl-sim{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason
                    or ("tool_calls" if reply.tool_calls else "stop"),
                }
            ],
        }
        if reply.usage:
            prompt = sum(
                _approximate_tokens(json.dumps(m.get("content")) + json.dumps(m.get("tool_calls")))
                for m in body["messages"]
            )
            completion = _approximate_tokens(completion_text)
            answer["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return JSONResponse(answer)
