"""Sign-up by e-mailed link.

Asking to sign up answers the same whether or not the address is registered ("check
your e-mail"), so the form tells no one who has an account: sign-in and password reset
already keep that secret. A new address gets a link to finish: choose a password, and
the account and its organisation are created and signed in. A registered address gets
an e-mail saying so, with links to sign in and to reset the password. Requests are
throttled per address and per IP address, the same way for both.

The link carries what was typed (address, name, organisation), sealed with the server
key and dated, so nothing is stored for a sign-up that is never finished; the account's
existence makes it single-use.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts import throttle
from cybergine.accounts.models import Organisation, User
from cybergine.accounts.service.users import (
    clean_name,
    find_user_by_email,
    normalise_email,
    sign_up,
)
from cybergine.accounts.tokens import constant_time_equal, keyed_hash
from cybergine.db.engine import Database
from cybergine.errors import Conflict, CybergineError, TooManyRequests
from cybergine.mail.service import queue_email

LINK_LIFETIME = timedelta(hours=24)
# Each request sends an e-mail: a few per address, more per IP address (an office).
PER_ADDRESS = throttle.Limit("signup-account", 3, timedelta(hours=1))
PER_IP = throttle.Limit("signup-ip", 10, timedelta(hours=1))
_PURPOSE = "signup-link"


class SignUpLinkUnusable(CybergineError):
    status = 410
    type_slug = "sign-up-link-unusable"
    title = "Sign-up link no longer valid"


@dataclass(frozen=True)
class PendingSignUp:
    email: str
    name: str
    organisation_name: str
    expires_at: datetime


def seal_link(pending: PendingSignUp) -> str:
    """The token of the link that finishes ``pending``."""
    payload = json.dumps(
        {
            "e": pending.email,
            "n": pending.name,
            "o": pending.organisation_name,
            "x": int(pending.expires_at.timestamp()),
        },
        separators=(",", ":"),
    )
    body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{body}.{keyed_hash(_PURPOSE, body)}"


def open_link(token: str) -> PendingSignUp:
    """What a sign-up link says, if the server sealed it and it has not expired."""
    body, _, seal = token.partition(".")
    if not body or not constant_time_equal(seal, keyed_hash(_PURPOSE, body)):
        raise SignUpLinkUnusable("This sign-up link is not valid. Sign up again.")
    try:
        values = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        pending = PendingSignUp(
            email=str(values["e"]),
            name=str(values["n"]),
            organisation_name=str(values["o"]),
            expires_at=datetime.fromtimestamp(int(values["x"]), UTC),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise SignUpLinkUnusable("This sign-up link is not valid. Sign up again.") from exc
    if pending.expires_at <= datetime.now(UTC):
        raise SignUpLinkUnusable("This sign-up link has expired. Sign up again.")
    return pending


async def request_sign_up(
    session: AsyncSession,
    database: Database,
    *,
    email: str,
    name: str,
    organisation_name: str,
    ip: str,
    public_url: str,
) -> str:
    """E-mails the address a link to finish (or a note that it has an account already);
    returns the address as normalised. ``database`` counts the request on a connection
    of its own before anything is sent (``cybergine.accounts.throttle``)."""
    name = clean_name(name)
    organisation_name = clean_name(organisation_name, what="your organisation's name")
    email = normalise_email(email)
    admission = await throttle.admit(
        database, (PER_ADDRESS, email), (PER_IP, throttle.address_block(ip))
    )
    if admission.refused_by is not None:
        raise TooManyRequests(
            "Too many sign-up requests. Wait an hour, or look for the e-mails already sent.",
            retry_after=int(admission.refused_by.window.total_seconds()),
        )
    existing = await find_user_by_email(session, email)
    if existing is not None:
        await queue_email(
            session,
            to=existing.email,
            subject="You already have a Cybergine account",
            body=(
                f"Hello {existing.name},\n\n"
                "Someone, probably you, asked to create a Cybergine account with this "
                "address. You already have one.\n\n"
                f"Sign in: {public_url}/login\n"
                f"Forgot your password? Reset it: {public_url}/password/forgot\n\n"
                "If it was not you, ignore this e-mail: nothing was changed."
            ),
        )
        return email
    pending = PendingSignUp(
        email=email,
        name=name,
        organisation_name=organisation_name,
        expires_at=datetime.now(UTC) + LINK_LIFETIME,
    )
    await queue_email(
        session,
        to=email,
        subject="Finish creating your Cybergine account",
        body=(
            f"Hello {name},\n\n"
            f"Choose a password to finish creating your account and {organisation_name}: "
            f"{public_url}/signup/confirm/{seal_link(pending)}\n\n"
            "The link works for 24 hours. If you did not ask for an account, ignore this "
            "e-mail: nothing is created without it."
        ),
    )
    return email


async def finish_sign_up(
    session: AsyncSession, *, token: str, password: str
) -> tuple[User, Organisation]:
    """Creates the account and its organisation from a sign-up link (the caller signs
    the person in)."""
    pending = open_link(token)
    if await find_user_by_email(session, pending.email) is not None:
        raise Conflict(
            "Your account already exists: sign in, or reset your password if you forgot it.",
            field="email",
        )
    return await sign_up(
        session,
        email=pending.email,
        name=pending.name,
        password=password,
        organisation_name=pending.organisation_name,
    )
