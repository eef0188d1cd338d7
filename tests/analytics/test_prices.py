"""Model prices: keyed 'provider/model', a dated snapshot priced as its model, an unknown
model's cost unknown (never 0), and no tokens cost nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from cybergine.analytics.prices import ModelPrice, cost, find_price
from cybergine.settings import load_settings

MINI = ModelPrice(prompt=Decimal("0.15"), completion=Decimal("0.60"))
DATED = ModelPrice(prompt=Decimal("0.10"), completion=Decimal("0.40"))
PRICES = {"openai/gpt-4o-mini": MINI, "openai/gpt-4o-mini-2024-07-18-special": DATED}


def test_a_model_is_found_by_provider_kind_and_the_model_the_server_reported() -> None:
    # Answers record the provider as "openai:<configured model>".
    assert find_price(PRICES, "openai:gpt-4o-mini", "gpt-4o-mini") is MINI
    assert find_price(PRICES, "OpenAI", "gpt-4o-mini") is MINI


def test_a_dated_snapshot_takes_its_model_s_price_unless_it_has_its_own() -> None:
    assert find_price(PRICES, "openai", "gpt-4o-mini-2024-07-18") is MINI
    assert find_price(PRICES, "openai", "gpt-4o-mini-20240718") is MINI
    assert find_price(PRICES, "openai", "gpt-4o-mini-2024-07-18-special") is DATED


def test_another_model_or_provider_has_no_price() -> None:
    assert find_price(PRICES, "openai", "gpt-4o") is None
    assert find_price(PRICES, "azure", "gpt-4o-mini") is None
    assert find_price(PRICES, "openai", "gpt-4o-mini-large") is None
    assert find_price({}, "openai", "gpt-4o-mini") is None


def test_a_cost_is_tokens_times_the_price_per_million() -> None:
    # 1,000,000 prompt tokens at 0.15 and 500,000 completion tokens at 0.60.
    assert cost(MINI, 1_000_000, 500_000) == Decimal("0.45")
    assert cost(MINI, 1234, 567) == Decimal("0.0005253")


def test_without_a_price_the_cost_is_unknown_but_no_tokens_cost_nothing() -> None:
    assert cost(None, 10, 0) is None
    assert cost(None, 0, 0) == 0
    assert cost(MINI, 0, 0) == 0


def test_the_setting_reads_json_and_refuses_a_key_without_a_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "CYBERGINE_MODEL_PRICES", '{"openai/gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}'
    )
    settings = load_settings()
    assert settings.model_prices == {"openai/gpt-4o-mini": MINI}
    assert settings.model_price_currency == "USD"
    monkeypatch.delenv("CYBERGINE_MODEL_PRICES")
    assert load_settings().model_prices == {}  # the default: every cost unknown
    with pytest.raises(ValidationError, match="provider/model"):
        load_settings(model_prices={"gpt-4o-mini": {"prompt": 1, "completion": 2}})
    with pytest.raises(ValidationError):
        load_settings(model_prices={"openai/x": {"prompt": -1, "completion": 2}})
    with pytest.raises(ValidationError):
        load_settings(model_price_currency="dollars")
