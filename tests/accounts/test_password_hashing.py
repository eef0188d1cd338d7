"""Password hashing: production strength, on threads of its own."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

from argon2 import Type, extract_parameters

from cybergine.accounts import passwords
from cybergine.accounts.passwords import hash_password, verify_password

PASSWORD = "correct horse battery staple"


async def test_production_hashes_at_rfc_9106_strength() -> None:
    # The suite hashes with the cheapest parameters (tests/conftest.py); this is the one
    # test that keeps production's. A process that has not been told otherwise uses them:
    fresh = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            "from cybergine.accounts import passwords as p; print(p.parameters() == p.PRODUCTION)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert fresh.stdout.strip() == "True"
    production = passwords.PRODUCTION
    assert (production.type, production.time_cost, production.memory_cost) == (Type.ID, 3, 65536)
    assert (production.parallelism, production.salt_len, production.hash_len) == (4, 16, 32)

    cheap = await hash_password(PASSWORD)
    suite = passwords.parameters()
    passwords.use_parameters(production)
    try:
        hashed = await hash_password(PASSWORD)
        assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert extract_parameters(hashed) == production
        assert await verify_password(hashed, PASSWORD)
        assert not await verify_password(hashed, "wrong " + PASSWORD)
        assert not passwords.needs_rehash(hashed)
        # A hash made with weaker parameters still lets its owner in, and is then rehashed.
        assert await verify_password(cheap, PASSWORD)
        assert passwords.needs_rehash(cheap)
    finally:
        passwords.use_parameters(suite)


async def test_sign_in_does_not_wait_for_the_shared_thread_pool() -> None:
    # Every thread of the event loop's default pool is busy (as a slow file once kept
    # them): hashing and checking a password must go on regardless.
    loop = asyncio.get_running_loop()
    release = threading.Event()
    blockers = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    try:
        hashed = await asyncio.wait_for(hash_password(PASSWORD), timeout=5)
        assert await asyncio.wait_for(verify_password(hashed, PASSWORD), timeout=5)
        assert not await asyncio.wait_for(verify_password(hashed, "wrong " + PASSWORD), 5)
    finally:
        release.set()
        await asyncio.gather(*blockers)
