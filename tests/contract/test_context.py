"""Context by path (each mode, 400 and 422 cases) and by POST: the same on the three servers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.harness import Contract, Trio

BY_PATH = "/api/v1/project/context"


@pytest.mark.parametrize(
    "target",
    [
        "FULL",
        "FOCUSED?query=total&budget=500",
        "MINIMAL?format=json",
        "SESSION?format=xml",
        "FULL?budget=1&budget=2000&unknown=1",  # the last value wins; unknown ignored
    ],
)
def test_context_by_path_in_each_mode(contract: Contract, scanned: Trio, target: str) -> None:
    seen = contract.check(lambda s: s.observe("GET", f"{BY_PATH}/{target}"))
    assert seen["status"] == 200
    assert seen["body"]["mode"] == target.split("?")[0]
    if target == "FULL":
        assert "def total(items):" in seen["body"]["context_data"]["text"]


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("full", 400),
        ("NOPE", 400),
        ("F%C3%9CLL", 400),
        ("FULL%20", 400),
        ("FULL?budget=-1", 422),
        ("FULL?budget=x", 422),
        ("FULL?budget=1.5", 422),
        ("FULL?budget=", 422),
        ("FULL?format=yaml", 422),
        ("FULL?format=", 422),
        ("nope?budget=x", 422),  # the query string is validated before the mode
        ("nope?budget=-2&format=pdf", 422),
        ("FULL?budget=99999999999999999999999", 400),  # an int, refused by the engine
    ],
)
def test_context_by_path_errors(
    contract: Contract, scanned: Trio, target: str, status: int
) -> None:
    seen = contract.check(lambda s: s.observe("GET", f"{BY_PATH}/{target}"))
    assert seen["status"] == status
    if status == 400 and "?" not in target:
        assert seen["body"] == {"detail": "Invalid context mode"}
    if status == 422:
        assert all({"type", "loc", "msg"} <= set(e) for e in seen["body"]["detail"])


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "FULL"},
        {"mode": "FOCUSED", "include_files": ["shop/cart.py"], "format": "json"},
        {"mode": "FOCUSED", "query": "Grüß Gott 世界", "budget": 300},
    ],
)
def test_context_by_post(contract: Contract, scanned: Trio, body: Any) -> None:
    seen = contract.check(lambda s: s.observe("POST", "/api/v1/context", json=body))
    assert (seen["status"], seen["body"]["mode"]) == (200, body["mode"])


@pytest.mark.parametrize(
    "options",
    [
        {"json": {"mode": "full"}},
        {"json": {}},
        {"json": {"budget": -3}},
        {"json": {"mode": "FULL", "budget": "lots", "format": "yaml"}},
        {"json": {"mode": "FULL", "include_files": "shop/cart.py"}},
        {"json": {"mode": "FULL", "include_files": [1, None]}},
        {"json": {"mode": "FULL", "budget": 2**64}},
        {"json": {"mode": None, "query": 5}},
        {"json": []},
        {"json": "FULL"},
        {"content": b""},
        {"content": b'{"mode": "FULL",}', "headers": {"Content-Type": "application/json"}},
        {"content": b'{"mode": "FULL"}', "headers": {"Content-Type": "text/plain"}},
        {
            "content": b'{"mode": "FULL"}',
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
        {"json": {"mode": "FOCUSED", "include_files": ["no/such.py"]}},  # 400: the engine's
    ],
)
def test_context_by_post_errors(contract: Contract, scanned: Trio, options: Any) -> None:
    seen = contract.check(lambda s: s.observe("POST", "/api/v1/context", **options))
    assert seen["status"] in (400, 422)
