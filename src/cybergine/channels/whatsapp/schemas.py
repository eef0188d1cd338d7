"""API shapes of WhatsApp numbers. The access token, app secret and verify token are
write-only: accepted on create and update, shown only as ``has_*`` flags."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cybergine.channels.whatsapp.models import WhatsAppNumber
from cybergine.channels.whatsapp.service import NumberChanges

WEBHOOK_PATH = "/webhooks/whatsapp"


class _Settings(BaseModel):
    """Every setting optional; the service validates values and applies the defaults, so
    a PATCH can tell a field not sent from one set to null."""

    model_config = ConfigDict(extra="forbid")

    waba_id: str | None = Field(default=None, description="WhatsApp Business Account id")
    display_phone_number: str | None = Field(default=None, description="e.g. +1 (555) 010-0200")
    access_token: str | None = Field(
        default=None, description="Write-only; stored encrypted; can be replaced, not removed"
    )
    app_secret: str | None = Field(
        default=None,
        description="Write-only; stored encrypted; "
        "null: the server's CYBERGINE_WHATSAPP_APP_SECRET",
    )
    verify_token: str | None = Field(
        default=None,
        description="Write-only; only its SHA-256 is kept; "
        "null: the server's CYBERGINE_WHATSAPP_VERIFY_TOKEN",
    )
    opt_out_keywords: list[str] | None = Field(
        default=None, description="Extra opt-out words, beyond the built-in ones"
    )
    opt_in_keywords: list[str] | None = Field(
        default=None, description="Extra opt-in words, beyond the built-in ones"
    )
    send_rate: float | None = Field(
        default=None,
        description="Messages per second, up to 1000; null: CYBERGINE_WHATSAPP_SEND_RATE",
    )
    active: bool | None = None

    def changes(self) -> NumberChanges:
        return NumberChanges(
            **{name: getattr(self, name) for name in type(self).model_fields},
            fields_set=set(self.model_fields_set),
        )


class NumberIn(_Settings):
    assistant_id: uuid.UUID = Field(description="The assistant that answers on this number")
    phone_number_id: str = Field(description="Meta's phone number id; cannot be changed later")
    waba_id: str = Field(description="WhatsApp Business Account id")
    display_phone_number: str = Field(description="e.g. +1 (555) 010-0200")
    access_token: str = Field(description="Write-only; stored encrypted")


class NumberUpdate(_Settings):
    assistant_id: uuid.UUID | None = Field(
        default=None, description="null: no assistant answers; messages wait for agents"
    )


class NumberOut(BaseModel):
    id: uuid.UUID
    assistant_id: uuid.UUID | None
    phone_number_id: str
    waba_id: str
    display_phone_number: str
    has_access_token: bool
    has_app_secret: bool
    has_verify_token: bool
    opt_out_keywords: list[str]
    opt_in_keywords: list[str]
    send_rate: float | None
    active: bool
    webhook_url: str = Field(description="The callback URL to configure in Meta's app")
    last_webhook_at: datetime | None = Field(
        description="When Meta last delivered a webhook for this number (to the minute)"
    )
    last_error: str | None = Field(
        description="The last thing that went wrong: a send Meta refused, or a webhook "
        "whose signature did not match"
    )
    last_error_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, number: WhatsAppNumber, *, public_url: str) -> NumberOut:
        return cls(
            id=number.id,
            assistant_id=number.assistant_id,
            phone_number_id=number.phone_number_id,
            waba_id=number.waba_id,
            display_phone_number=number.display_phone_number,
            has_access_token=bool(number.access_token),
            has_app_secret=number.app_secret is not None,
            has_verify_token=number.verify_token_sha256 is not None,
            opt_out_keywords=list(number.opt_out_keywords),
            opt_in_keywords=list(number.opt_in_keywords),
            send_rate=number.send_rate,
            active=number.active,
            webhook_url=public_url + WEBHOOK_PATH,
            last_webhook_at=number.last_webhook_at,
            last_error=number.last_error,
            last_error_at=number.last_error_at,
            created_at=number.created_at,
            updated_at=number.updated_at,
        )
