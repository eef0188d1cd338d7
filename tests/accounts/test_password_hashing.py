"""Password hashing runs on threads of its own."""

from __future__ import annotations

import asyncio
import threading

from cybergine.accounts.passwords import hash_password, verify_password

PASSWORD = "correct horse battery staple"


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
