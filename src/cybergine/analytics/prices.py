"""What a model's tokens cost: the operator's prices per million tokens
(``CYBERGINE_MODEL_PRICES``), looked up by the provider and model an answer recorded.

Pure: no database, no settings. A model with no price has an unknown cost (None),
never a cost of 0; usage with no tokens at all (an offline answer) costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

MILLION = Decimal(1_000_000)
# A snapshot's date at the end of a model's name: gpt-4o-mini-2024-07-18, claude-x-20250219.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


class ModelPrice(BaseModel):
    """The price of a million tokens of a model, in ``CYBERGINE_MODEL_PRICE_CURRENCY``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: Decimal = Field(ge=0, description="Per million prompt (input) tokens")
    completion: Decimal = Field(ge=0, description="Per million completion (output) tokens")


def price_key(provider: str | None, model: str | None) -> str:
    """``provider/model`` as prices are keyed: the provider's kind without what follows a
    colon (answers record ``openai:<configured model>``), the model as the server
    reported it."""
    kind = (provider or "").split(":", 1)[0].strip().lower()
    return f"{kind}/{(model or '').strip()}"


def check_keys(prices: Mapping[str, ModelPrice]) -> None:
    """Each key names a provider and a model (``openai/gpt-4o-mini``)."""
    for key in prices:
        provider, slash, model = key.partition("/")
        if not slash or not provider.strip() or not model.strip():
            raise ValueError(
                f"model price key {key!r} must be 'provider/model', e.g. 'openai/gpt-4o-mini'"
            )


def find_price(
    prices: Mapping[str, ModelPrice], provider: str | None, model: str | None
) -> ModelPrice | None:
    """The model's price: its own key, else the key of the model it is a dated snapshot
    of (``openai/gpt-4o-mini`` prices ``gpt-4o-mini-2024-07-18``); None when neither is
    set. Provider names match whatever their case."""
    if not prices:
        return None
    wanted = price_key(provider, model)
    keyed = {_normal(key): price for key, price in prices.items()}
    if wanted in keyed:
        return keyed[wanted]
    undated = _SNAPSHOT.sub("", wanted)
    return keyed.get(undated) if undated != wanted else None


def _normal(key: str) -> str:
    provider, _, model = key.partition("/")
    return f"{provider.strip().lower()}/{model.strip()}"


def cost(price: ModelPrice | None, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    """What the tokens cost at ``price``: None when unpriced, 0 when there are none."""
    if not prompt_tokens and not completion_tokens:
        return Decimal(0)
    if price is None:
        return None
    return (prompt_tokens * price.prompt + completion_tokens * price.completion) / MILLION
