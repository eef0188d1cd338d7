"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cybergine.errors import InvalidInput

MIN_LENGTH = 10
# Long enough for any passphrase, short enough that hashing it cannot be used to tie up
# the server.
MAX_LENGTH = 256

# RFC 9106's second recommended option (argon2-cffi's defaults): argon2id, t=3,
# m=64 MiB, p=4.
PRODUCTION = profiles.RFC_9106_LOW_MEMORY

_parameters = PRODUCTION
_hasher = PasswordHasher.from_parameters(_parameters)

# Verified against when the account does not exist, so a missing account takes as long
# to reject as a wrong password. Made at the first such check, not at import: every
# process imports this module (workers, CLI commands), few of them check a password, and
# the hash costs a production-strength hashing's CPU.
_dummy_hash: str | None = None


def _verify(password_hash: str | None, password: str) -> bool:
    global _dummy_hash
    if not password_hash:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("not a real password, only for timing")
        password_hash = _dummy_hash
    return _hasher.verify(password_hash, password)


def use_parameters(parameters: Parameters) -> None:
    """Hash (and time missing accounts) with these parameters from now on, in this process.

    Only the test suite calls it: at production strength every account a test seeds costs
    about 0.2 s of CPU. Hashes made with other parameters still verify, and are rehashed
    to the current ones at the next sign-in."""
    global _parameters, _hasher, _dummy_hash
    _parameters = parameters
    _hasher = PasswordHasher.from_parameters(parameters)
    _dummy_hash = None


def parameters() -> Parameters:
    """The parameters new hashes are made with."""
    return _parameters


def check_policy(password: str, *, email: str | None = None) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"Use a password of at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"Use a password of at most {MAX_LENGTH} characters.")
    if not password.strip():
        raise InvalidInput("A password cannot be only spaces.")
    if email and password.strip().lower() == email.strip().lower():
        raise InvalidInput("Your password cannot be your e-mail address.")


# Hashing costs tens of milliseconds of CPU and 64 MiB: off the event loop, on threads of
# its own, so that sign-ins neither wait behind other blocking work nor, in a flood,
# take every thread of the shared pool (or more memory than these few hashes at once).
_HASHING = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="cybergine-argon2")
_T = TypeVar("_T")


async def _hashing(function: Callable[..., _T], *args: str | None) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, function, *args)


async def hash_password(password: str) -> str:
    return await _hashing(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return await _hashing(_verify, password_hash, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
