"""API shapes of conversations and their messages. An attachment is described here; its
bytes come only from the download route."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from cybergine.conversations import preview
from cybergine.conversations.answering import Reason
from cybergine.conversations.models import (
    Attachment,
    AttachmentStatus,
    Channel,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Message,
    MessageStatus,
    Sender,
)


class CustomerOut(BaseModel):
    id: uuid.UUID
    channel: Channel
    display_name: str | None
    phone_number: str | None
    opted_out: bool
    opted_in_at: datetime | None
    opted_out_at: datetime | None
    # Where consent was given or withdrawn: "customer_message", "keyword:STOP", "api".
    opt_in_source: str | None
    opt_out_source: str | None
    # Their personal data was erased (policy §14): the record stays, naming nobody.
    erased: bool

    @classmethod
    def of(cls, customer: Customer) -> CustomerOut:
        return cls(
            id=customer.id,
            channel=customer.channel,
            display_name=customer.display_name,
            phone_number=customer.phone_number,
            opted_out=customer.opted_out,
            opted_in_at=customer.opted_in_at,
            opted_out_at=customer.opted_out_at,
            opt_in_source=customer.opt_in_source,
            opt_out_source=customer.opt_out_source,
            erased=customer.erased,
        )


class ConversationOut(BaseModel):
    id: uuid.UUID
    channel: Channel
    state: ConversationState
    assistant_id: uuid.UUID | None
    whatsapp_number_id: uuid.UUID | None
    customer: CustomerOut
    assigned_user_id: uuid.UUID | None
    human_review_requested: bool
    handoff_reason: str | None
    handoff_at: datetime | None
    last_inbound_at: datetime | None
    last_message_at: datetime | None
    unread_count: int
    created_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, conversation: Conversation, customer: Customer) -> ConversationOut:
        return cls(
            id=conversation.id,
            channel=conversation.channel,
            state=conversation.state,
            assistant_id=conversation.assistant_id,
            whatsapp_number_id=conversation.whatsapp_number_id,
            customer=CustomerOut.of(customer),
            assigned_user_id=conversation.assigned_user_id,
            human_review_requested=conversation.human_review_requested,
            handoff_reason=conversation.handoff_reason,
            handoff_at=conversation.handoff_at,
            last_inbound_at=conversation.last_inbound_at,
            last_message_at=conversation.last_message_at,
            unread_count=conversation.unread_count,
            created_at=conversation.created_at,
            closed_at=conversation.closed_at,
        )


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class MessageErrorOut(BaseModel):
    code: int | None
    title: str | None
    detail: str | None

    @classmethod
    def of(cls, message: Message) -> MessageErrorOut | None:
        if (message.error_code, message.error_title, message.error_detail) == (None, None, None):
            return None
        return cls(code=message.error_code, title=message.error_title, detail=message.error_detail)


class AttachmentOut(BaseModel):
    id: uuid.UUID
    status: AttachmentStatus
    mime_type: str | None
    filename: str | None
    size_bytes: int | None
    sha256: str | None
    error: str | None

    @classmethod
    def of(cls, attachment: Attachment) -> AttachmentOut:
        return cls(
            id=attachment.id,
            status=attachment.status,
            mime_type=attachment.mime_type,
            filename=attachment.filename,
            size_bytes=attachment.size_bytes,
            sha256=attachment.sha256,
            error=attachment.error,
        )


class MessageOut(BaseModel):
    id: uuid.UUID
    direction: Direction
    sender: Sender
    author_user_id: uuid.UUID | None
    type: str
    text: str | None
    payload: dict[str, Any] | None
    external_id: str | None
    status: MessageStatus
    error: MessageErrorOut | None
    reply_to_id: uuid.UUID | None
    sources: list[dict[str, Any]] | None
    grounded: bool | None
    llm_provider: str | None
    llm_model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    created_at: datetime
    attachment: AttachmentOut | None

    @classmethod
    def of(cls, message: Message, attachment: Attachment | None) -> MessageOut:
        return cls(
            id=message.id,
            direction=message.direction,
            sender=message.sender,
            author_user_id=message.author_user_id,
            type=message.type,
            text=message.text,
            payload=message.payload,
            external_id=message.external_id,
            status=message.status,
            error=MessageErrorOut.of(message),
            reply_to_id=message.reply_to_id,
            sources=message.sources,
            grounded=message.grounded,
            llm_provider=message.llm_provider,
            llm_model=message.llm_model,
            prompt_tokens=message.prompt_tokens,
            completion_tokens=message.completion_tokens,
            sent_at=message.sent_at,
            delivered_at=message.delivered_at,
            read_at=message.read_at,
            failed_at=message.failed_at,
            created_at=message.created_at,
            attachment=AttachmentOut.of(attachment) if attachment is not None else None,
        )


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class TemplateIn(BaseModel):
    """A message template approved by Meta: the only thing WhatsApp lets a business send
    more than 24 hours after the customer's last message."""

    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(
        default="en", min_length=2, max_length=15, pattern=r"^[a-z]{2,3}(_[A-Za-z0-9]{2,8})?$"
    )
    components: list[dict[str, Any]] | None = Field(default=None, max_length=20)


class MessageIn(BaseModel):
    """An agent's message to the customer: text, a template, or both (the template is
    what goes out when the 24-hour window has closed)."""

    text: str | None = Field(default=None, min_length=1, max_length=20_000)
    template: TemplateIn | None = None

    @model_validator(mode="after")
    def _something_to_send(self) -> MessageIn:
        if self.text is None and self.template is None:
            raise ValueError("Give the text of the message, or a template.")
        # Whether the text says anything is the service's rule (``message_text``).
        return self


# --- The assistant's test chat (conversations.preview) ---------------------------------


class PreviewTurn(BaseModel):
    role: Literal["customer", "assistant", "agent"]
    text: str = Field(max_length=preview.MAX_TURN_CHARS)


class PreviewIn(BaseModel):
    text: str = Field(
        min_length=1,
        max_length=preview.MAX_QUESTION_CHARS,
        description="The question, as a customer would write it.",
    )
    history: list[PreviewTurn] = Field(
        default_factory=list,
        max_length=preview.MAX_PREVIEW_TURNS,
        description=(
            "The test chat's earlier turns, oldest first (kept by the client, never stored); "
            "the last ten are used, as in a real conversation."
        ),
    )


class PreviewSourceOut(BaseModel):
    document_id: uuid.UUID
    title: str
    kind: Literal["document", "qa"] | None = Field(
        description="None for a passage the model found with a search of its own"
    )
    score: float = Field(description="The fused score retrieval ranked by")
    lexical: float | None = Field(description="BM25")
    dense: float | None = Field(description="Cosine similarity; None without an embedding model")
    above_threshold: bool = Field(description="Close enough to the question to answer from")
    cited: bool
    number: int | None = Field(description="As cited in the answer: [1]")


class PreviewOut(BaseModel):
    text: str
    disclosure: str | None = Field(description="The AI disclosure shown before a first reply")
    outcome: Literal["answered", "fallback", "greeted", "handed_off"]
    reason: str = Field(description="Why, in plain words")
    reason_code: Reason = Field(description="Why, as a code")
    handed_off_by: str | None
    within_business_hours: bool
    offers_person: bool
    system: bool = Field(description="A notice from the platform (a handoff), not the assistant")
    threshold: str
    sources: list[PreviewSourceOut]
    responder: Literal["extractive", "model"]
    provider: str | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    model_error: str | None = Field(
        description="The model failed and the offline answer stood in: what the server said"
    )
    redacted: bool = Field(description="Personal data was masked before reaching the model")
    assistant_active: bool

    @classmethod
    def of(cls, result: preview.Preview) -> PreviewOut:
        return cls(
            text=result.text,
            disclosure=result.disclosure,
            outcome=result.outcome,
            reason=result.reason,
            reason_code=result.reason_code,
            handed_off_by=result.handed_off_by,
            within_business_hours=result.within_business_hours,
            offers_person=result.offers_person,
            system=result.system,
            threshold=result.threshold,
            sources=[
                PreviewSourceOut(
                    document_id=s.item_id,
                    title=s.title,
                    kind=s.kind,
                    score=s.score,
                    lexical=s.lexical,
                    dense=s.dense,
                    above_threshold=s.above_threshold,
                    cited=s.cited,
                    number=s.number,
                )
                for s in result.sources
            ],
            responder=result.responder,
            provider=result.provider,
            model=result.model,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            model_error=result.model_error,
            redacted=result.redacted,
            assistant_active=result.assistant_active,
        )
