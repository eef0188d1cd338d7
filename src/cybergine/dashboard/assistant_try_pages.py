"""The "Try it" panel on an assistant's page: a private test chat.

Each question is answered by ``conversations.preview`` (the reply pipeline's own decision,
nothing stored) and comes back as one turn for the panel's log, with "Why this answer"
underneath. The chat's earlier turns live in the page: each turn carries hidden inputs
tied to the panel's form (``form="try-form"``), so the browser sends them with the next
question and the server keeps nothing. The panel itself is ``assistant_try.html``,
included by the assistant's page."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import Authorized, authorize_outside_transaction
from cybergine.accounts.permissions import Permission
from cybergine.conversations import preview
from cybergine.conversations.answering import Turn
from cybergine.dashboard.templating import templates
from cybergine.errors import InvalidInput
from cybergine.knowledge.providers import embedding_provider
from cybergine.llm.prompts import Speaker
from cybergine.onboarding.service import record_tried
from cybergine.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)

# As the API: trying the assistant may spend the organisation's model tokens.
Tester = Annotated[Authorized, authorize_outside_transaction(Permission.CONFIGURATION_MANAGE)]

# The text box's limit, for the panel wherever the assistant's page includes it.
templates.env.globals["try_max_chars"] = preview.MAX_QUESTION_CHARS

_SPEAKERS: frozenset[str] = frozenset(("customer", "assistant", "agent"))

OUTCOME_LABELS = {
    "answered": "Answered",
    "fallback": "Fell back",
    "greeted": "Greeted",
    "handed_off": "Handed to a person",
}


@router.post("/assistants/{assistant_id}/try", response_class=HTMLResponse)
async def try_assistant(
    request: Request, assistant_id: uuid.UUID, tester: Tester, settings: SettingsDep
) -> HTMLResponse:
    form = await request.form()
    question = form.get("text")
    text = question if isinstance(question, str) else ""
    try:
        result = await preview.preview_reply(
            tester.database,
            tester.principal.organisation_id,
            assistant_id,
            text=text,
            history=_history(form.getlist("history_role"), form.getlist("history_text")),
            settings=settings,
            embeddings=embedding_provider(settings),
        )
    except InvalidInput as error:
        # Shown under the text box, which keeps what was typed; the log is left alone.
        response = templates.TemplateResponse(
            request,
            "assistant_try_compose.html",
            {"assistant_id": assistant_id, "text": text, "error": str(error)},
            status_code=error.status,
        )
        response.headers["HX-Retarget"] = "#try-compose"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    await record_tried(tester.database, tester.principal, assistant_id)  # the checklist's step
    return templates.TemplateResponse(
        request,
        "assistant_try_turn.html",
        {
            "assistant_id": assistant_id,
            "question": text.strip(),
            "answer": result,
            "outcome_label": OUTCOME_LABELS[result.outcome],
            "answered_by": _answered_by(result),
        },
    )


def _history(roles: list[Any], texts: list[Any]) -> list[Turn]:
    """The test chat's earlier turns as the page sent them: pairs of a speaker and a text,
    the last ``MAX_PREVIEW_TURNS``, anything else left out."""
    turns: list[Turn] = []
    for role, said in zip(roles, texts, strict=False):
        if isinstance(role, str) and role in _SPEAKERS and isinstance(said, str):
            turns.append((cast(Speaker, role), said[: preview.MAX_TURN_CHARS]))
    return turns[-preview.MAX_PREVIEW_TURNS :]


def _answered_by(result: preview.Preview) -> str:
    if result.responder == "model":
        used = f"{result.model or 'The model'} ({result.provider})"
        if result.prompt_tokens is not None:
            used += f": {result.prompt_tokens} tokens in, {result.completion_tokens} out"
        return used
    if result.reason_code in ("handoff_button", "handoff_request", "greeting", "not_text"):
        return "The assistant's own settings: no search, no model."
    if result.reason_code == "no_grounded_source":
        return "The assistant's fallback message: no model is asked without a source."
    return "The offline responder, which quotes your knowledge base."
