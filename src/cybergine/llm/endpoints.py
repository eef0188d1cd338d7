"""Which endpoint, and which key, an assistant's chat completions go to.

The platform's key (``CYBERGINE_OPENAI_API_KEY``) goes only to the platform's endpoint
(``CYBERGINE_OPENAI_BASE_URL``). An assistant whose tenant chose another base URL sends its
own key there, and is held to the outbound policy (:mod:`cybergine.egress`); without a key
of its own it is refused when saved, and again when a reply is prepared, so a row saved
before this rule cannot hand the platform's key to a URL a tenant chose.

Pure: the caller gives the platform's endpoint and policy (:meth:`ChatEndpoints.of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cybergine.egress import OutboundPolicy, policy_for
from cybergine.errors import InvalidInput
from cybergine.llm.providers import LLMError

if TYPE_CHECKING:
    from cybergine.settings import Settings

OWN_KEY_NEEDED = (
    "A model base URL of the assistant's own needs its own API key (llm_api_key): the "
    "server's key is only sent to the server's own endpoint. For a server that checks no "
    "key (Ollama), any placeholder will do."
)


@dataclass(frozen=True)
class ChatEndpoint:
    base_url: str
    api_key: str | None
    policy: OutboundPolicy | None  # None: the platform's own endpoint, which is trusted


@dataclass(frozen=True)
class ChatEndpoints:
    platform_url: str
    platform_key: str | None
    policy: OutboundPolicy

    @classmethod
    def of(cls, settings: Settings) -> ChatEndpoints:
        key = settings.openai_api_key
        return cls(
            platform_url=settings.openai_base_url.rstrip("/"),
            platform_key=key.get_secret_value() if key is not None else None,
            policy=policy_for(settings.outbound_allowed_hosts),
        )

    def is_platform(self, base_url: str | None) -> bool:
        """True for no base URL of the assistant's own, or exactly the platform's."""
        return base_url is None or base_url.rstrip("/") == self.platform_url

    def choose(self, base_url: str | None, api_key: str | None) -> ChatEndpoint:
        """Where an assistant with these settings sends its completions, with which key;
        :class:`LLMError` (not worth retrying) for a tenant's URL without a tenant's key."""
        if self.is_platform(base_url):
            return ChatEndpoint(self.platform_url, api_key or self.platform_key, None)
        if base_url is None or not api_key:
            raise LLMError(OWN_KEY_NEEDED, retryable=False, attempts=0)
        return ChatEndpoint(base_url, api_key, self.policy)

    async def check_url(self, base_url: str | None) -> None:
        """A base URL about to be saved: the platform's, or one the outbound policy allows
        (:class:`InvalidInput` on ``llm_base_url``; resolves the host name)."""
        if not self.is_platform(base_url):
            assert base_url is not None
            await self.policy.validate(base_url, field="llm_base_url")

    def check_key(self, base_url: str | None, api_key: str | None) -> None:
        """The settings about to be saved: a base URL of the assistant's own comes with a
        key of its own (:class:`InvalidInput` on ``llm_api_key``, the field to fill)."""
        if self._lacks_own_key(base_url, api_key):
            raise InvalidInput(OWN_KEY_NEEDED, field="llm_api_key")

    def _lacks_own_key(self, base_url: str | None, api_key: str | None) -> bool:
        return not self.is_platform(base_url) and not api_key
