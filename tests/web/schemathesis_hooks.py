"""schemathesis hooks for ``tests/web/test_api_fuzz.py`` (loaded by the fuzzer's own
process through ``SCHEMATHESIS_HOOKS``).

The fuzzer calls every operation with the harness's owner key, DELETE
``/api/v1/api-keys/{id}`` included, and ``GET /api/v1/api-keys`` hands it that key's id:
left alone, it would sooner or later revoke the key it works with, and every request
after that would be a 401 that proves nothing. Revoking its own key is the one way the
API offers to lose access (a key's role cannot be changed, members and invitations do not
touch keys, the organisation cannot be deleted through the API), so this is the one request
changed: a revocation aimed at the harness key is sent for an id that does not exist (a
404 the document promises). Every other key, the ones the fuzzer creates included, may be
revoked. The test checks afterwards that the key still works.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from typing import Any

import schemathesis

HARNESS_KEY_ID_ENV = "FUZZ_HARNESS_KEY_ID"
REVOKE_KEY_PATH = "/api/v1/api-keys/{api_key_id}"
# The web chat run: a real widget key for half of the sessions it starts (random keys
# find only 404s).
WIDGET_KEY_ENV = "FUZZ_WIDGET_KEY"
SESSION_PATH = "/widget/v1/session"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    widget_key = os.environ.get(WIDGET_KEY_ENV)
    if widget_key and case.operation.path == SESSION_PATH and isinstance(case.body, dict):
        if random.random() < 0.5:
            case.body["widget_key"] = widget_key
        return
    if case.operation.method.upper() != "DELETE" or case.operation.path != REVOKE_KEY_PATH:
        return
    if _names_harness_key((case.path_parameters or {}).get("api_key_id")):
        case.path_parameters["api_key_id"] = str(uuid.uuid4())


def _names_harness_key(value: object) -> bool:
    # Any spelling the server would parse as that UUID (case, braces, no hyphens, urn:).
    try:
        return uuid.UUID(str(value).strip()) == uuid.UUID(os.environ[HARNESS_KEY_ID_ENV])
    except ValueError:
        return False


# Bodies that are text in a media type schemathesis has no serializer for (the knowledge
# import's CSV and JSON Lines): sent as the UTF-8 of the generated string, lone
# surrogates included, so the server meets undecodable bytes too.
@schemathesis.serializer("text/csv", "application/x-ndjson")
def text_body(context: Any, value: Any) -> bytes:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")
