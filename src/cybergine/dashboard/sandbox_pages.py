"""``/dev/whatsapp``: chat as a WhatsApp customer with the demo shop, through the Graph API
simulator (``cybergine serve --whatsapp-simulator``; embedded mode, this machine only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from cybergine.accounts.auth import check_anonymous_csrf, public
from cybergine.channels.whatsapp.sandbox import MAX_TEXT, Sandbox
from cybergine.dashboard.forms import fields
from cybergine.dashboard.misc_pages import local_developer
from cybergine.dashboard.templating import render
from cybergine.demo import DEMO_DISPLAY_PHONE_NUMBER
from cybergine.errors import InvalidInput, NotFound

router = APIRouter(include_in_schema=False)

Local = Annotated[
    None, public("developer WhatsApp sandbox: embedded mode, loopback clients, simulator on")
]


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox | None = getattr(request.app.state, "whatsapp_sandbox", None)
    if sandbox is None or not local_developer(request):
        raise NotFound("Not found.")
    return sandbox


def _thread(request: Request, sandbox: Sandbox, *, error: str | None = None) -> HTMLResponse:
    return render(request, "sandbox_thread.html", {"bubbles": sandbox.thread(), "error": error})


@router.get("/dev/whatsapp", response_class=HTMLResponse)
async def sandbox_page(request: Request, _: Local) -> HTMLResponse:
    sandbox = _sandbox(request)
    return render(
        request,
        "sandbox.html",
        {
            "bubbles": sandbox.thread(),
            "business_number": DEMO_DISPLAY_PHONE_NUMBER,
            "max_text": MAX_TEXT,
            "error": None,
        },
    )


@router.get("/dev/whatsapp/thread", response_class=HTMLResponse)
async def sandbox_thread(request: Request, _: Local) -> HTMLResponse:
    return _thread(request, _sandbox(request))


@router.post("/dev/whatsapp/messages", response_class=HTMLResponse)
async def sandbox_say(request: Request, _: Local) -> Response:
    await check_anonymous_csrf(request)
    sandbox = _sandbox(request)
    form = await fields(request, "text")
    text = form["text"].strip()
    if not text:
        raise InvalidInput("Write a message first.", field="text")
    status = await sandbox.customer_says(text)
    return _thread(request, sandbox, error=None if status == 200 else _refused(status))


@router.post("/dev/whatsapp/taps", response_class=HTMLResponse)
async def sandbox_tap(request: Request, _: Local) -> Response:
    await check_anonymous_csrf(request)
    sandbox = _sandbox(request)
    form = await fields(request, "button_id", "title")
    status = await sandbox.customer_taps(form["button_id"], form["title"])
    return _thread(request, sandbox, error=None if status == 200 else _refused(status))


def _refused(status: int) -> str:
    return f"The server refused the webhook (HTTP {status}); see its log."
