"""The summary prices the model usage of the known history (``known.py``): openai/gpt-x
150 prompt + 30 completion tokens (assistant A, C1's two answers), anthropic/claude 30 + 5
(assistant B, C3), and C2's extractive answer, which called no model. Without a price a
cost is unknown (null), never 0."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cybergine.analytics.prices import ModelPrice
from cybergine.settings import Settings
from tests.analytics.conftest import Seeded

GPT_X = ModelPrice(prompt=Decimal(2), completion=Decimal(8))  # per million tokens
CLAUDE = ModelPrice(prompt=Decimal(3), completion=Decimal(15))
# (150 * 2 + 30 * 8) / 1e6, and (30 * 3 + 5 * 15) / 1e6.
GPT_X_COST = 0.00054
CLAUDE_COST = 0.000165


def _summary(seeded: Seeded) -> dict[str, object]:
    response = seeded.api.get("/api/v1/analytics/summary", params=seeded.period())
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _rows(body: dict[str, object]) -> dict[str, dict[str, object]]:
    return {f"{row['provider']}/{row['model']}": row for row in body["model_usage"]}  # type: ignore[attr-defined]


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    prices = getattr(request, "param", {})
    return settings.model_copy(update={"model_prices": prices, "model_price_currency": "EUR"})


@pytest.mark.parametrize(
    "settings", [{"openai/gpt-x": GPT_X, "anthropic/claude": CLAUDE}], indirect=True
)
def test_each_model_row_each_assistant_and_the_total_have_their_cost(seeded: Seeded) -> None:
    body = _summary(seeded)
    rows = _rows(body)
    assert rows["openai/gpt-x"]["cost"] == pytest.approx(GPT_X_COST)
    assert rows["anthropic/claude"]["cost"] == pytest.approx(CLAUDE_COST)
    assert rows["extractive/None"]["cost"] == 0  # no tokens: nothing to pay
    cost = body["model_cost"]
    assert cost["currency"] == "EUR"  # type: ignore[index]
    total = cost["total"]  # type: ignore[index]
    assert (total["prompt_tokens"], total["completion_tokens"]) == (180, 35)
    assert total["cost"] == pytest.approx(GPT_X_COST + CLAUDE_COST)
    assert total["complete"] is True
    by_assistant = {row["assistant_id"]: row for row in cost["by_assistant"]}  # type: ignore[index]
    a, b = str(seeded.known.assistant_a), str(seeded.known.assistant_b)
    assert set(by_assistant) == {a, b}
    assert by_assistant[a]["cost"] == pytest.approx(GPT_X_COST)
    assert (by_assistant[a]["prompt_tokens"], by_assistant[a]["completion_tokens"]) == (150, 30)
    assert by_assistant[b]["cost"] == pytest.approx(CLAUDE_COST)


@pytest.mark.parametrize("settings", [{"openai/gpt-x": GPT_X}], indirect=True)
def test_a_model_without_a_price_makes_its_totals_unknown(seeded: Seeded) -> None:
    body = _summary(seeded)
    rows = _rows(body)
    assert rows["openai/gpt-x"]["cost"] == pytest.approx(GPT_X_COST)
    assert rows["anthropic/claude"]["cost"] is None
    total = body["model_cost"]["total"]  # type: ignore[index]
    assert total["cost"] is None
    assert total["priced_cost"] == pytest.approx(GPT_X_COST)
    assert total["complete"] is False
    by_assistant = {row["assistant_id"]: row for row in body["model_cost"]["by_assistant"]}  # type: ignore[index]
    assert by_assistant[str(seeded.known.assistant_a)]["cost"] == pytest.approx(GPT_X_COST)
    assert by_assistant[str(seeded.known.assistant_b)]["cost"] is None


def test_without_prices_every_cost_is_unknown_not_zero(seeded: Seeded) -> None:
    body = _summary(seeded)
    rows = _rows(body)
    assert rows["openai/gpt-x"]["cost"] is None
    assert rows["anthropic/claude"]["cost"] is None
    total = body["model_cost"]["total"]  # type: ignore[index]
    assert (total["cost"], total["complete"]) == (None, False)
    assert (total["prompt_tokens"], total["completion_tokens"]) == (180, 35)
