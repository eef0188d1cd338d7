"""The retrieval tester: a question in, the passages an assistant would read for it out,
best first, each with its lexical, dense and fused scores and whether it clears the
grounding threshold (the line under which the assistant does not answer from a passage).

It runs the one search the replies run (``knowledge.service.search_knowledge``, with as
many results as an assistant reads), in everything, one collection, or the collections
an assistant answers from. A read, so a GET: the question is in the address, and a result
can be shared with a colleague.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.assistants.service import list_assistants
from cybergine.conversations.answering import RETRIEVAL_K
from cybergine.dashboard.templating import render_page
from cybergine.errors import CybergineError, NotFound
from cybergine.knowledge import search as retrieval
from cybergine.knowledge import service
from cybergine.knowledge.chunking import without_context_line
from cybergine.knowledge.providers import embedding_provider
from cybergine.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)

Reader = Annotated[Caller, authorize(Permission.CONFIGURATION_READ)]

# As many passages as an assistant reads for a question.
RESULTS = RETRIEVAL_K
MAX_QUESTION = 2000  # as the API's search allows

QuestionQuery = Annotated[str, Query(max_length=MAX_QUESTION)]
# "", "collection:<id>" or "assistant:<id>"
SearchInQuery = Annotated[str, Query(max_length=60)]


@dataclass(frozen=True)
class Result:
    rank: int
    hit: retrieval.Hit
    href: str  # the document's or Q&A pair's page
    heading_path: str  # the context line indexing put at the chunk's top, if any
    quote: str

    @classmethod
    def of(cls, rank: int, hit: retrieval.Hit) -> Result:
        heading_path = ""
        if hit.kind == "document":
            own_words = without_context_line(hit.text, hit.title)
            heading_path = hit.text[: len(hit.text) - len(own_words)].strip()
        kind_path = "qa" if hit.kind == "qa" else "documents"
        return cls(rank, hit, f"/knowledge/{kind_path}/{hit.item_id}", heading_path, hit.quote)


def _parse_search_in(value: str) -> tuple[str, uuid.UUID | None]:
    if not value:
        return "", None
    kind, _, raw_id = value.partition(":")
    try:
        chosen = uuid.UUID(raw_id)
    except ValueError:
        chosen = None
    if kind not in ("collection", "assistant") or chosen is None:
        raise NotFound("Choose one of the places offered.", field="search_in")
    return kind, chosen


@router.get("/knowledge/tester", response_class=HTMLResponse)
async def retrieval_tester(
    request: Request,
    caller: Reader,
    settings: SettingsDep,
    q: QuestionQuery = "",
    search_in: SearchInQuery = "",
) -> HTMLResponse:
    collections = await service.list_collections(caller.scope)
    assistants = await list_assistants(caller.scope)
    provider = embedding_provider(settings)
    context: dict[str, Any] = {
        "q": q,
        "search_in": search_in,
        "collections": collections,
        "assistants": assistants,
        "dense_search": provider is not None,
        "weights_dense": retrieval.DEFAULT_WEIGHTS.dense,
        "weights_lexical": retrieval.DEFAULT_WEIGHTS.lexical,
        "min_similarity": retrieval.MIN_SIMILARITY,
        "min_bm25": retrieval.MIN_BM25,
        "results": None,
        "line_before": None,
        "errors": {},
        "searched_collections": None,
    }
    if not q:
        return await render_page(request, "knowledge_tester.html", caller, context)
    try:
        # Only this organisation's collections and assistants are offered, and only they
        # are searched: another's id is "not offered", whether it exists or not.
        kind, chosen = _parse_search_in(search_in)
        collection: str | None = None
        assistant_id: uuid.UUID | None = None
        if kind == "collection":
            names = {c.id: c.name for c in collections}
            if chosen not in names:
                raise NotFound("Choose one of the collections offered.", field="search_in")
            collection = names[chosen]
        elif kind == "assistant":
            assistant = next((a for a in assistants if a.id == chosen), None)
            if assistant is None:
                raise NotFound("Choose one of the assistants offered.", field="search_in")
            assistant_id = assistant.id
            context["searched_collections"] = list(assistant.knowledge_collections)
        hits = await service.search_knowledge(
            caller.scope,
            query=q,
            k=RESULTS,
            collections=[collection] if collection else None,
            assistant_id=assistant_id,
            provider=provider,
        )
    except CybergineError as exc:
        field = "q" if exc.extra.get("field") == "query" else "search_in"
        context["errors"] = {field: exc.detail}
        return await render_page(
            request, "knowledge_tester.html", caller, context, status_code=exc.status
        )
    results = [Result.of(rank, hit) for rank, hit in enumerate(hits, start=1)]
    context["results"] = results
    # The line goes above the first passage under the threshold; one that clears it
    # further down (ranked lower on words, yet similar enough) says so on its own row.
    context["line_before"] = next((r.rank for r in results if not r.hit.grounded), None)
    return await render_page(request, "knowledge_tester.html", caller, context)
