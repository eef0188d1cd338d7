"""The API reference: ``/api/v1``'s OpenAPI document, rendered by Swagger UI (vendored
from the npm registry, ``static/vendor/README.md``) on our own origin and under the same
Content-Security-Policy as every page (scripts and styles from our origin only).

Public, like the document it reads (``/api/v1/openapi.json``): it shows nothing more,
and a developer holding only an API key, with no dashboard account, can read it too.
A reference only: "Try it out" is off, since calls from this page would carry the
browser's session rather than the developer's key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cybergine.dashboard.templating import templates
from cybergine.web.access import public

router = APIRouter(include_in_schema=False)

SWAGGER_UI = "vendor/swagger-ui-dist-5.35.0"


@router.get("/api/docs", response_class=HTMLResponse)
async def api_reference(
    request: Request,
    _: Annotated[None, public("the API reference: the public OpenAPI document, rendered")],
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "api_reference.html",
        {"swagger_ui": SWAGGER_UI, "spec_url": request.app.openapi_url},
    )
