"""Reading submitted forms: every field a string, trimmed to a sane length."""

from __future__ import annotations

from fastapi import Request

MAX_FIELD = 4096


async def fields(request: Request, *names: str) -> dict[str, str]:
    form = await request.form()
    values: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        values[name] = value[:MAX_FIELD] if isinstance(value, str) else ""
    return values


def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after sign-in is a phishing tool."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
