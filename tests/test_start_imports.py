"""What a process loads to start: the platform's heavy optional parts are loaded where
they are used, not by every `serve`, `worker` and `demo` (CONTRIBUTING, "A long-lived
process"), and they still load when that use comes."""

from __future__ import annotations

import json
import subprocess
import sys

# What every start would otherwise pay for: the OpenAI SDK (its hundreds of models), the
# Shopify simulator's GraphQL engine, and the PDF and Word parsers (documents are read in
# the extraction fork server's children, which load them once).
LOADED_ON_USE = ("openai", "graphql", "pypdf", "docx")

PROBE = """
import json, sys
import cybergine.app, cybergine.cli, cybergine.demo, cybergine.jobs
started = sorted(sys.modules)
from cybergine.llm.openai_chat import shared_chat
shared_chat("http://127.0.0.1:9/v1", None, "model", None)
from cybergine.shopify.simulator import ShopifySimulator
import io, zipfile
from cybergine.knowledge.extract import CorruptDocument, extract
word = io.BytesIO()
with zipfile.ZipFile(word, "w") as archive:
    archive.writestr("word/document.xml", "<w:document/>")
for damaged in (b"%PDF-1.7 not really", word.getvalue()):
    try:
        extract(damaged)
    except CorruptDocument:
        pass
print(json.dumps({"started": started, "used": sorted(sys.modules)}))
"""


def test_a_start_loads_no_optional_heavy_part_until_it_is_used() -> None:
    # A process of its own: this one has loaded everything the other tests use.
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(result.stdout)
    assert "cybergine.app" in loaded["started"]
    assert [name for name in LOADED_ON_USE if name in loaded["started"]] == []
    assert [name for name in LOADED_ON_USE if name not in loaded["used"]] == []
