"""What a process loads to start: the platform's heavy optional parts are loaded where
they are used, not by every `serve`, `worker` and `demo` (CONTRIBUTING, "A long-lived
process"), and they still load when that use comes."""

from __future__ import annotations

import json
import subprocess
import sys

# What every start would otherwise pay for: the OpenAI SDK (its hundreds of models) and
# the Shopify simulator's GraphQL engine.
LOADED_ON_USE = ("openai", "graphql")

PROBE = """
import json, sys
import cybergine.app, cybergine.cli, cybergine.demo, cybergine.jobs
started = sorted(sys.modules)
from cybergine.llm.openai_chat import shared_chat
shared_chat("http://127.0.0.1:9/v1", None, "model", None)
from cybergine.shopify.simulator import ShopifySimulator
print(json.dumps({"started": started, "used": sorted(sys.modules)}))
"""


def test_a_start_loads_neither_the_model_sdk_nor_the_simulators_graphql_until_used() -> None:
    # A process of its own: this one has loaded everything the other tests use.
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(result.stdout)
    assert "cybergine.app" in loaded["started"]
    assert [name for name in LOADED_ON_USE if name in loaded["started"]] == []
    assert [name for name in LOADED_ON_USE if name not in loaded["used"]] == []
