"""The AI bridge through the fake LLM: answers, validation, and each backend failure."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.harness import LLM, Contract, Server, Trio

QUERY = "/api/v1/query"


def test_query_answers_through_the_llm(contract: Contract, scanned: Trio) -> None:
    def scenario(s: Server) -> Any:
        return [
            s.observe("POST", QUERY, json={"query": "How is the total computed?"}),
            s.observe("POST", QUERY, json={"query": "Grüße? 世界", "context_mode": "FULL"}),
            s.observe(
                "POST",
                QUERY,
                json={"query": "q", "context_mode": "MINIMAL", "llm_model": "other-model"},
            ),  # fmt: skip
            s.observe("POST", QUERY, json={"query": "cart", "include_files": ["shop/cart.py"]}),
            s.observe("POST", QUERY, json={"query": "q", "include_files": ["no/such.py"]}),
        ]

    seen = contract.check(scenario)
    assert seen[0]["status"] == 200
    assert seen[0]["body"]["response"].startswith("You asked: 'How is the total computed?'")


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "x" * 1001},
        {},
        {"query": "q", "context_mode": "full"},
        {"query": None, "include_files": "a"},
        {"query": ["q"], "llm_model": 5},
    ],
    ids=["empty", "too-long", "missing", "mode", "types", "list"],
)
def test_query_validation(contract: Contract, body: Any) -> None:
    seen = contract.check(lambda s: s.observe("POST", QUERY, json=body))
    assert seen["status"] == 422


@pytest.mark.parametrize(
    ("failure", "status"),
    [("down", 503), ("error", 502), ("garbage", 502), ("nochoices", 502), ("slow", 504)],
)
def test_a_failing_backend(
    contract: Contract, scanned: Trio, llm: LLM, failure: str, status: int
) -> None:
    around = llm.down if failure == "down" else lambda: llm.mode(failure)
    seen = contract.check(lambda s: s.observe("POST", QUERY, json={"query": "anyone?"}), around)
    assert seen["status"] == status
    assert isinstance(seen["body"]["detail"], str)
