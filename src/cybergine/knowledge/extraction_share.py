"""Each organisation's share of the processes that read uploaded files.

The readers (``extraction_process``) are few, and an upload is cheap to send and costly
to answer: a tenant that re-sends a file the readers refuse in a tenth of a second keeps
the web process, the fork server and PostgreSQL busy answering it, and every other
tenant waits (issue 12: six such loops doubled others' sign-in and quadrupled their
widget replies). So, per web process:

- an organisation's files are read one at a time; the next waits for its turn *before*
  its body is read, holding nothing but the connection;
- each organisation has a budget of reading time, refilled at
  ``seconds_per_minute`` (also its largest burst). A file costs the time its reading
  took, and at least ``MINIMUM_CHARGE``: a flood of files answered instantly costs the
  platform too. While the budget is spent, an upload is refused with 429 and a
  Retry-After saying when it would be admitted, before anything is read.

A shop adding a catalogue of documents never notices: a few dozen files at once, then
one every couple of seconds. The shares are per process, as the readers are.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from cybergine.errors import CybergineError
from cybergine.knowledge.extraction_process import ExtractionBusy

__all__ = ["ExtractionShareUsed", "ExtractionShares"]

# Forking a reader, receiving the form and answering take time the reading itself does
# not show; a file is charged at least this much.
MINIMUM_CHARGE = 1.0
# Past this many organisations remembered, the ones with a full budget and nothing in
# flight are forgotten (they would start afresh anyway).
_REMEMBERED = 1024


class ExtractionShareUsed(CybergineError):
    status = 429
    type_slug = "extraction-share-used"
    title = "Too many files read for this organisation just now"


@dataclass
class _Share:
    budget: float
    updated: float
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class ExtractionShares:
    def __init__(
        self,
        *,
        seconds_per_minute: float,
        wait_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = seconds_per_minute
        self.rate = seconds_per_minute / 60.0
        self.wait_seconds = wait_seconds
        self._clock = clock
        self._shares: dict[uuid.UUID, _Share] = {}

    def _share(self, organisation_id: uuid.UUID) -> _Share:
        now = self._clock()
        share = self._shares.get(organisation_id)
        if share is None:
            if len(self._shares) >= _REMEMBERED:
                self._forget_idle(now)
            share = self._shares[organisation_id] = _Share(budget=self.capacity, updated=now)
        else:
            share.budget = min(self.capacity, share.budget + (now - share.updated) * self.rate)
            share.updated = now
        return share

    def _forget_idle(self, now: float) -> None:
        for organisation_id, share in list(self._shares.items()):
            refilled = share.budget + (now - share.updated) * self.rate
            if refilled >= self.capacity and not share.turn.locked() and not share.waiting:
                del self._shares[organisation_id]

    def _refuse_if_spent(self, share: _Share) -> None:
        if share.budget > 0:
            return
        # The first whole second at which the budget is above zero again.
        wait = math.floor(-share.budget / self.rate) + 1
        raise ExtractionShareUsed(
            f"This organisation's files are being read faster than the platform reads "
            f"for one organisation; try again in {wait} s.",
            retry_after=wait,
        )

    @asynccontextmanager
    async def admitted(self, organisation_id: uuid.UUID) -> AsyncIterator[None]:
        """The organisation's turn to have one file read; charged when the block ends.
        Refused (429) while its budget is spent; refused as busy (503, the readers'
        own answer) after waiting ``wait_seconds`` for its previous file."""
        share = self._share(organisation_id)
        self._refuse_if_spent(share)
        share.waiting += 1
        try:
            try:
                await asyncio.wait_for(share.turn.acquire(), timeout=self.wait_seconds)
            except TimeoutError as exc:
                raise ExtractionBusy(
                    "This organisation's previous files are still being read; try again shortly."
                ) from exc
        finally:
            share.waiting -= 1
        started = self._clock()
        try:
            # The budget may have been spent by the file read while this one waited.
            self._refuse_if_spent(self._share(organisation_id))
            yield
        finally:
            share = self._share(organisation_id)
            share.budget -= max(MINIMUM_CHARGE, self._clock() - started)
            share.turn.release()
