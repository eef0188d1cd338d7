"""The browser tab's icon at the address every browser asks for first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from cybergine.dashboard.templating import STATIC_DIR
from cybergine.web.access import public
from cybergine.web.assets import SingleAsset, asset_response

router = APIRouter(include_in_schema=False)

FAVICON = SingleAsset(STATIC_DIR / "favicon.ico")


@router.get("/favicon.ico")
async def favicon(
    request: Request, _: Annotated[None, public("the browser tab's icon, a static file")]
) -> Response:
    # A fixed URL (browsers ask for it without a link): a day, then a revalidation.
    return asset_response(
        await FAVICON.get(), request.headers, cache_control="public, max-age=86400"
    )
