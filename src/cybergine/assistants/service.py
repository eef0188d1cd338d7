"""Assistant rules: validation of every setting, uniqueness of names, and the audit trail.

Takes the caller's ``TenantScope`` and ``Principal``; never commits. Creates, changes and
deletions are audited with the names of the fields involved, never their values (one of
them is an API key).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func

from cybergine import egress
from cybergine.accounts.principal import Principal
from cybergine.assistants import disclosure
from cybergine.assistants.business_hours import clean_business_hours
from cybergine.assistants.changes import AssistantChanges
from cybergine.assistants.models import (
    DEFAULT_AI_DISCLOSURE,
    DEFAULT_FALLBACK_MESSAGE,
    DEFAULT_LANGUAGES,
    DEFAULT_LLM_MODEL,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    MAX_MAX_TOKENS,
    MAX_ORIGIN_LENGTH,
    MAX_TEMPERATURE,
    Assistant,
    LlmProvider,
    Tone,
    new_widget_key,
)
from cybergine.channels.whatsapp.models import WhatsAppNumber
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, InvalidInput
from cybergine.job_names import JobName
from cybergine.knowledge.service import clean_collection_name
from cybergine.llm.endpoints import ChatEndpoints
from cybergine.origins import https_link, origin_of
from cybergine.privacy import audit
from cybergine.queue import defer

MAX_NAME_CHARS = 100
MAX_LONG_TEXT_CHARS = 20_000  # persona, instructions
MAX_MESSAGE_CHARS = 2_000  # greeting, fallback message, AI disclosure
MAX_LANGUAGES = 20
MAX_COLLECTIONS = 50
MAX_KEYWORDS = 100
MAX_KEYWORD_CHARS = 100
MAX_API_KEY_CHARS = 500
MAX_BASE_URL_CHARS = 500  # the column's width


# language[-Script][-REGION], e.g. "en", "fr", "pt-BR", "zh-Hant-TW", "es-419".
_LANGUAGE_TAG = re.compile(r"([a-z]{2,3})(?:-([a-z]{4}))?(?:-([a-z]{2}|[0-9]{3}))?", re.IGNORECASE)

# Settings that may be null (cleared); null for any other is refused.
NULLABLE = frozenset({"llm_base_url", "llm_api_key", "business_hours", "csat_question"})
# Settings that decide which sites the widget answers on (a shop's storefront embed).
WIDGET_PLACEMENT = frozenset({"allowed_origins", "active"})
# Settings that decide where completions go and with which key (:class:`ChatEndpoints`).
ENDPOINT_SETTINGS = frozenset({"llm_provider", "llm_base_url", "llm_api_key"})


# --- Validation ---------------------------------------------------------------------


def _text(value: str, *, field_name: str, limit: int, required: bool) -> str:
    value = value.replace("\x00", "").strip()
    if required and not value:
        raise InvalidInput(f"{_label(field_name)} cannot be empty.", field=field_name)
    if len(value) > limit:
        raise InvalidInput(
            f"{_label(field_name)} is limited to {limit} characters.", field=field_name
        )
    return value


def _label(field_name: str) -> str:
    return field_name.replace("_", " ").capitalize()


def clean_name(name: str) -> str:
    name = " ".join(name.replace("\x00", "").split())
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(
            f"An assistant's name has 1 to {MAX_NAME_CHARS} characters.", field="name"
        )
    return name


def clean_ai_disclosure(value: str) -> str:
    value = value.replace("\x00", "").strip()
    if not value:
        raise InvalidInput(
            "The AI disclosure cannot be empty: customers must always be told they are "
            "talking to an automated system (privacy policy §7). Reword it instead.",
            field="ai_disclosure",
        )
    value = _text(value, field_name="ai_disclosure", limit=MAX_MESSAGE_CHARS, required=True)
    if not disclosure.says_automated(value):
        raise InvalidInput(
            "The AI disclosure must tell customers they are talking to an automated "
            "assistant (privacy policy §7), for example: "
            f'"{DEFAULT_AI_DISCLOSURE}" Say it with a word such as AI, bot, chatbot, '
            "automated or virtual assistant, or its equivalent in "
            f"{_listed(list(disclosure.LANGUAGE_NAMES.values())[1:])} (KI, IA, intelligence "
            'artificielle, asistente virtual, …), and do not deny it ("not a bot").',
            field="ai_disclosure",
        )
    return value


def _listed(names: Sequence[str]) -> str:
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)


def clean_language(tag: str) -> str:
    """A BCP-47 tag in its canonical case ("PT-br" -> "pt-BR")."""
    match = _LANGUAGE_TAG.fullmatch(tag.strip())
    if match is None:
        raise InvalidInput(
            f"{tag!r} is not a language code: use BCP-47 tags like 'en', 'fr' or 'pt-BR'.",
            field="languages",
        )
    language, script, region = match.groups()
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


def clean_languages(tags: Sequence[str]) -> list[str]:
    cleaned: list[str] = []
    for tag in tags:
        value = clean_language(tag)
        if value not in cleaned:
            cleaned.append(value)
    if not cleaned:
        raise InvalidInput("Give at least one language, such as 'en'.", field="languages")
    if len(cleaned) > MAX_LANGUAGES:
        raise InvalidInput(
            f"An assistant speaks at most {MAX_LANGUAGES} languages.", field="languages"
        )
    return cleaned


def clean_collections(names: Sequence[str]) -> list[str]:
    cleaned: list[str] = []
    for name in names:
        try:
            value = clean_collection_name(name) if name.strip() else ""
        except InvalidInput as exc:
            raise InvalidInput(exc.detail, field="knowledge_collections") from None
        if not value:
            raise InvalidInput("A collection name cannot be empty.", field="knowledge_collections")
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_COLLECTIONS:
        raise InvalidInput(
            f"An assistant searches at most {MAX_COLLECTIONS} collections "
            "(or leave the list empty for all of them).",
            field="knowledge_collections",
        )
    return cleaned


def clean_keywords(keywords: Sequence[str]) -> list[str]:
    cleaned: list[str] = []
    seen: set[str] = set()
    for keyword in keywords:
        value = " ".join(keyword.replace("\x00", "").split())
        if not value:
            continue
        if len(value) > MAX_KEYWORD_CHARS:
            raise InvalidInput(
                f"A hand-off keyword is limited to {MAX_KEYWORD_CHARS} characters.",
                field="handoff_keywords",
            )
        if value.casefold() not in seen:
            seen.add(value.casefold())
            cleaned.append(value)
    if len(cleaned) > MAX_KEYWORDS:
        raise InvalidInput(
            f"An assistant has at most {MAX_KEYWORDS} hand-off keywords.",
            field="handoff_keywords",
        )
    return cleaned


def clean_temperature(value: float) -> float:
    if not 0 <= value <= MAX_TEMPERATURE:  # also refuses NaN
        raise InvalidInput(
            f"The temperature is between 0 and {MAX_TEMPERATURE:g}.", field="temperature"
        )
    return float(value)


def clean_max_tokens(value: int) -> int:
    if not 1 <= value <= MAX_MAX_TOKENS:
        raise InvalidInput(
            f"The longest answer (max_tokens) is 1 to {MAX_MAX_TOKENS} tokens.", field="max_tokens"
        )
    return value


def clean_base_url(value: str) -> str:
    """Its form only; where it leads is checked by :class:`ChatEndpoints` (it resolves)."""
    value = value.strip().rstrip("/")
    if len(value) > MAX_BASE_URL_CHARS:
        raise InvalidInput(
            f"The LLM base URL is at most {MAX_BASE_URL_CHARS} characters.", field="llm_base_url"
        )
    try:
        egress.parse_url(value)
    except egress.DestinationRefused as refused:
        raise InvalidInput(str(refused), field="llm_base_url") from None
    return value


def clean_api_key(value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_API_KEY_CHARS or any(ch.isspace() for ch in value):
        raise InvalidInput(
            "The LLM API key is 1 to 500 characters without spaces (send null to remove it).",
            field="llm_api_key",
        )
    return value


MAX_ORIGINS = 50
WIDGET_POSITIONS = ("left", "right")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
WIDGET_FIELDS = (
    *("colour", "position", "title", "avatar_url", "language"),
    *("ask_consent", "privacy_notice_url"),
)
MAX_NOTICE_URL_CHARS = 500


def clean_origins(origins: Sequence[str]) -> list[str]:
    """Sites that may embed the widget, as origins (``https://shop.example``): a path,
    a wildcard or another scheme is refused rather than silently widened."""
    if len(origins) > MAX_ORIGINS:
        raise InvalidInput(f"At most {MAX_ORIGINS} allowed origins.", field="allowed_origins")
    cleaned: list[str] = []
    for raw in origins:
        value = str(raw).strip().rstrip("/")
        origin = origin_of(value)  # None too for what does not parse (``http://[::1``)
        parts = urlsplit(value) if origin is not None else None
        if (
            origin is None
            or parts is None
            or len(origin) > MAX_ORIGIN_LENGTH
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username
            or "*" in value
        ):
            raise InvalidInput(
                f"{str(raw)[:100]!r} is not an origin: give scheme and host, like "
                "https://shop.example.",
                field="allowed_origins",
            )
        if origin not in cleaned:
            cleaned.append(origin)
    return cleaned


def clean_widget(widget: Mapping[str, Any]) -> dict[str, Any]:
    """How the widget looks: colour (#rrggbb), position (left/right), title, avatar URL
    (https), language (one of the assistant's tags), whether to ask before
    remembering the chat on the visitor's device, and the shop's privacy notice (https)."""
    unknown = set(widget) - set(WIDGET_FIELDS)
    if unknown:
        raise InvalidInput(
            f"Unknown widget settings: {', '.join(sorted(unknown))}.", field="widget"
        )
    cleaned: dict[str, Any] = {}
    colour = widget.get("colour")
    if colour is not None:
        if not isinstance(colour, str) or not _COLOUR.fullmatch(colour):
            raise InvalidInput("The colour is #rrggbb, like #0b5fff.", field="widget")
        cleaned["colour"] = colour.lower()
    position = widget.get("position")
    if position is not None:
        if position not in WIDGET_POSITIONS:
            raise InvalidInput("The position is left or right.", field="widget")
        cleaned["position"] = position
    title = widget.get("title")
    if title is not None:
        cleaned["title"] = _text(title, field_name="widget", limit=60, required=True)
    avatar = widget.get("avatar_url")
    if avatar is not None:
        if not isinstance(avatar, str) or not avatar.startswith("https://") or len(avatar) > 500:
            raise InvalidInput("The avatar is an https:// URL.", field="widget")
        cleaned["avatar_url"] = avatar
    language = widget.get("language")
    if language is not None:
        cleaned["language"] = clean_languages([language])[0]
    if "ask_consent" in widget:
        cleaned["ask_consent"] = bool(widget["ask_consent"])
    notice = widget.get("privacy_notice_url")
    if notice is not None:
        cleaned["privacy_notice_url"] = clean_privacy_notice_url(notice)
    return cleaned


def clean_privacy_notice_url(value: Any) -> str:
    """The shop's privacy notice the widget links to (every visitor sees it)."""
    link = https_link(value, max_length=MAX_NOTICE_URL_CHARS)
    if link is None:
        raise InvalidInput(
            "The privacy notice is an https:// address, like https://shop.example/privacy.",
            field="widget",
        )
    return link


def clean_setting(name: str, value: Any) -> Any:
    """The value to store for setting ``name``, or InvalidInput naming it. Saving checks
    every setting again; a form calls this to point at every mistake at once."""
    if value is None:
        if name in NULLABLE:
            return None
        if name == "ai_disclosure":
            return clean_ai_disclosure("")
        raise InvalidInput(f"{_label(name)} cannot be null.", field=name)
    match name:
        case "name":
            return clean_name(value)
        case "persona" | "instructions":
            return _text(value, field_name=name, limit=MAX_LONG_TEXT_CHARS, required=False)
        case "greeting":
            return _text(value, field_name=name, limit=MAX_MESSAGE_CHARS, required=False)
        case "fallback_message":
            return _text(value, field_name=name, limit=MAX_MESSAGE_CHARS, required=True)
        case "csat_question":  # empty: the default question in the assistant's language
            return _text(value, field_name=name, limit=MAX_MESSAGE_CHARS, required=False) or None
        case "ai_disclosure":
            return clean_ai_disclosure(value)
        case "tone":
            return Tone(value)
        case "languages":
            return clean_languages(value)
        case "knowledge_collections":
            return clean_collections(value)
        case "llm_provider":
            return LlmProvider(value)
        case "llm_model":
            return _text(value, field_name=name, limit=100, required=True)
        case "llm_base_url":
            return clean_base_url(value)
        case "llm_api_key":
            return clean_api_key(value)
        case "temperature":
            return clean_temperature(value)
        case "max_tokens":
            return clean_max_tokens(value)
        case "business_hours":
            return clean_business_hours(value)
        case "handoff_keywords":
            return clean_keywords(value)
        case "redact_personal_data" | "active" | "csat_enabled":
            return bool(value)
        case "allowed_origins":
            return clean_origins(value)
        case "widget":
            return clean_widget(value)
    raise InvalidInput(f"{name!r} is not a setting of an assistant.", field=name)


SETTINGS = tuple(f for f in AssistantChanges.__dataclass_fields__ if f != "fields_set")


def _validated(changes: AssistantChanges) -> dict[str, Any]:
    """Every setting in ``fields_set``, cleaned; InvalidInput names the first bad one."""
    return {
        name: clean_setting(name, getattr(changes, name))
        for name in SETTINGS
        if name in changes.fields_set
    }


def _endpoints_for(
    values: Mapping[str, Any], endpoints: ChatEndpoints | None
) -> ChatEndpoints | None:
    """The rules to check ``values`` with: None when they change no endpoint setting."""
    if ENDPOINT_SETTINGS.isdisjoint(values):
        return None
    if endpoints is None:
        raise TypeError("changing where an assistant's completions go needs its ChatEndpoints")
    return endpoints


async def _check_url(values: Mapping[str, Any], endpoints: ChatEndpoints | None) -> None:
    """The outbound policy on a new base URL, before any row is locked (it resolves)."""
    if endpoints is not None and "llm_base_url" in values:
        await endpoints.check_url(values["llm_base_url"])


def _check_key(assistant: Assistant, endpoints: ChatEndpoints | None) -> None:
    """After writing: the settings saved send the platform's key nowhere but its endpoint.
    Checked only when one of them changes, so an old row stays editable otherwise."""
    if endpoints is not None:
        endpoints.check_key(assistant.llm_base_url, assistant.llm_api_key)


def _write(assistant: Assistant, values: Mapping[str, Any]) -> list[str]:
    """Sets the values; returns the names of the fields that changed (never the values)."""
    changed = []
    for name, value in values.items():
        if getattr(assistant, name) != value:
            setattr(assistant, name, value)
            changed.append(name)
    return sorted(changed)


# --- Operations ---------------------------------------------------------------------


async def _assert_name_free(
    scope: TenantScope, name: str, *, except_id: uuid.UUID | None = None
) -> None:
    statement = scope.select(Assistant).where(Assistant.name == name)
    if except_id is not None:
        statement = statement.where(Assistant.id != except_id)
    if (await scope.session.execute(statement)).first() is not None:
        raise Conflict(f"An assistant named {name!r} already exists.", field="name")


def new_assistant() -> Assistant:
    """An assistant with every default spelled out (ORM defaults apply only at flush);
    also what the dashboard's form for a new assistant starts from. Not added to a session."""
    return Assistant(
        persona="",
        instructions="",
        tone=Tone.PROFESSIONAL,
        languages=list(DEFAULT_LANGUAGES),
        greeting="",
        fallback_message=DEFAULT_FALLBACK_MESSAGE,
        ai_disclosure=DEFAULT_AI_DISCLOSURE,
        knowledge_collections=[],
        llm_provider=LlmProvider.EXTRACTIVE,
        llm_model=DEFAULT_LLM_MODEL,
        llm_base_url=None,
        llm_api_key=None,
        temperature=DEFAULT_TEMPERATURE,
        max_tokens=DEFAULT_MAX_TOKENS,
        redact_personal_data=True,
        business_hours=None,
        handoff_keywords=[],
        active=True,
        csat_enabled=True,
        csat_question=None,
        widget_key=new_widget_key(),
        allowed_origins=[],
        widget={},
    )


async def create_assistant(
    scope: TenantScope,
    caller: Principal,
    changes: AssistantChanges,
    *,
    endpoints: ChatEndpoints | None = None,
) -> Assistant:
    """``endpoints``: the platform's model endpoint and outbound policy, needed when the
    changes say where completions go (``llm_provider``, ``llm_base_url``, ``llm_api_key``)."""
    if "name" not in changes.fields_set or changes.name is None:
        raise InvalidInput("Give the assistant a name.", field="name")
    values = _validated(changes)
    checking = _endpoints_for(values, endpoints)
    await _check_url(values, checking)
    await _assert_name_free(scope, values["name"])
    assistant = new_assistant()
    _write(assistant, values)
    if "ai_disclosure" not in values:  # said in the language the assistant speaks
        assistant.ai_disclosure = disclosure.default_disclosure(assistant.languages)
    _check_key(assistant, checking)
    scope.add(assistant)
    await scope.session.flush()
    if assistant.allowed_origins:
        await _widget_origins_changed(scope)
    await audit.record(
        scope.session,
        action="assistant.created",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="assistant",
        target_id=str(assistant.id),
        details={
            "name": assistant.name,
            "fields": sorted(values),
        },
    )
    return assistant


async def _widget_origins_changed(scope: TenantScope) -> None:
    """Which assistant answers on which site may have changed: a Shopify shop's storefront
    embed is told its widget again (a no-op for an organisation without a shop)."""
    await defer(
        scope.session,
        JobName.SET_SHOPIFY_APP_METAFIELDS,
        organisation_id=str(scope.organisation_id),
    )


async def get_assistant(scope: TenantScope, assistant_id: uuid.UUID) -> Assistant:
    return await scope.get(Assistant, assistant_id, what="assistant")


async def list_assistants(scope: TenantScope) -> list[Assistant]:
    result = await scope.session.execute(
        scope.select(Assistant).order_by(Assistant.name, Assistant.id)
    )
    return list(result.scalars())


async def whatsapp_numbers_per_assistant(scope: TenantScope) -> dict[uuid.UUID, int]:
    """How many WhatsApp numbers each assistant answers on (assistants with none left
    out), in one query for a list of assistants."""
    statement = (
        scope.select(WhatsAppNumber)
        .with_only_columns(WhatsAppNumber.assistant_id, func.count())
        .where(WhatsAppNumber.assistant_id.is_not(None))
        .group_by(WhatsAppNumber.assistant_id)
    )
    rows = (await scope.session.execute(statement)).all()
    return {assistant_id: count for assistant_id, count in rows if assistant_id is not None}


async def update_assistant(
    scope: TenantScope,
    caller: Principal,
    assistant_id: uuid.UUID,
    changes: AssistantChanges,
    *,
    endpoints: ChatEndpoints | None = None,
) -> Assistant:
    """``endpoints``: as for :func:`create_assistant`."""
    values = _validated(changes)
    checking = _endpoints_for(values, endpoints)
    await _check_url(values, checking)
    assistant = await scope.get(Assistant, assistant_id, for_update=True, what="assistant")
    # Before writing: the query would otherwise flush a duplicate name into the table.
    if "name" in values and values["name"] != assistant.name:
        await _assert_name_free(scope, values["name"], except_id=assistant.id)
    changed = _write(assistant, values)
    _check_key(assistant, checking)
    if changed:
        await scope.session.flush()
        if WIDGET_PLACEMENT.intersection(changed):
            await _widget_origins_changed(scope)
        await audit.record(
            scope.session,
            action="assistant.updated",
            actor=caller.actor,
            organisation_id=scope.organisation_id,
            target_type="assistant",
            target_id=str(assistant.id),
            details={"fields": changed},
        )
    return assistant


async def delete_assistant(scope: TenantScope, caller: Principal, assistant_id: uuid.UUID) -> None:
    assistant = await scope.get(Assistant, assistant_id, for_update=True, what="assistant")
    name = assistant.name
    await scope.delete(assistant)
    await scope.session.flush()
    await _widget_origins_changed(scope)
    await audit.record(
        scope.session,
        action="assistant.deleted",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="assistant",
        target_id=str(assistant_id),
        details={"name": name},
    )
