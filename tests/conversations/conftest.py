"""Fixtures of the conversation tests that answer with a model: an OpenAI-compatible
model server (the local simulator over real HTTP) and a shop whose assistant uses it.
A module that takes ``llm_shop`` allows the simulator's host in its ``settings``, as an
operator would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.openai_simulator import OpenAISimulator
from tests.support.server import LiveServer
from tests.support.whatsapp import Shop, open_shop

INSTRUCTIONS = "Always be brief."


@pytest.fixture
def llm() -> Iterator[OpenAISimulator]:
    with OpenAISimulator() as simulator:
        yield simulator


@pytest.fixture
async def llm_shop(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    graph: GraphSimulator,
    llm: OpenAISimulator,
) -> AsyncIterator[Shop]:
    opened = await open_shop(
        live_server,
        database,
        settings,
        graph,
        assistant={**llm.assistant_fields(), "instructions": INSTRUCTIONS},
    )
    yield opened
    opened.close()
