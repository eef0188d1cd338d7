"""``/demo/store``: a small online shop with the demo assistant's chat widget on it, to see
the widget as a shop's customers do (``cybergine demo`` seeds what it needs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from cybergine.assistants.models import Assistant
from cybergine.dashboard.templating import render
from cybergine.demo import DEMO_ASSISTANT_NAME, find_demo_organisation
from cybergine.errors import NotFound
from cybergine.web.access import public
from cybergine.web.deps import SessionDep
from cybergine.web.middleware import CONTENT_SECURITY_POLICY

router = APIRouter(include_in_schema=False)

# A storefront shows product images from wherever the shop keeps them (its CDN), and so do
# the chat widget's product cards on it; everything else stays as strict as everywhere.
_DASHBOARD_IMAGES = "img-src 'self' data:"
assert _DASHBOARD_IMAGES in CONTENT_SECURITY_POLICY
STOREFRONT_CSP = CONTENT_SECURITY_POLICY.replace(_DASHBOARD_IMAGES, "img-src 'self' data: https:")

PRODUCTS = (
    ("Trail Runner", "Light, grippy and waterproof.", "89.00", "#2f855a"),
    ("City Classic", "White leather, everyday comfort.", "79.00", "#2b6cb0"),
    ("Cloud Knit", "Breathable knit for long walks.", "99.00", "#805ad5"),
    ("Court Low", "A retro court shoe in suede.", "69.00", "#c05621"),
)


@router.get("/demo/store", response_class=HTMLResponse)
async def demo_store(
    request: Request,
    _: Annotated[None, public("the demo storefront: a public shop page")],
    session: SessionDep,
) -> HTMLResponse:
    demo = await find_demo_organisation(session)
    widget_key = (
        await session.scalar(
            select(Assistant.widget_key)
            .where(Assistant.organisation_id == demo.id, Assistant.name == DEMO_ASSISTANT_NAME)
            .limit(1)
        )
        if demo is not None
        else None
    )
    if widget_key is None:
        raise NotFound("The demo shop has not been set up: run `cybergine demo`.")
    response = render(request, "demo_store.html", {"widget_key": widget_key, "products": PRODUCTS})
    response.headers["content-security-policy"] = STOREFRONT_CSP
    return response
