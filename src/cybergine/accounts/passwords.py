"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cybergine.errors import InvalidInput

MIN_LENGTH = 10
# Long enough for any passphrase, short enough that hashing it cannot be used to tie up
# the server.
MAX_LENGTH = 256

# argon2-cffi's defaults are RFC 9106's second recommended option: argon2id,
# t=3, m=64 MiB, p=4.
_hasher = PasswordHasher()

# Verified against when the account does not exist, so a missing account takes as long
# to reject as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


def check_policy(password: str, *, email: str | None = None) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"Use a password of at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"Use a password of at most {MAX_LENGTH} characters.")
    if not password.strip():
        raise InvalidInput("A password cannot be only spaces.")
    if email and password.strip().lower() == email.strip().lower():
        raise InvalidInput("Your password cannot be your e-mail address.")


async def hash_password(password: str) -> str:
    # Hashing costs tens of milliseconds of CPU: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash or _DUMMY_HASH, password) and (
            password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
