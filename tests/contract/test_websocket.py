"""``/api/v1/ws``: the handshake's auth and the JSON messages, the same on the three servers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.contract.harness import KEY, Contract, Server, Trio, stable

pytest.importorskip("wsproto")

from wsclient import WSClient  # noqa: E402

WS = "/api/v1/ws"
AUTH_401 = {"body": {"detail": "Invalid or missing API key"}}


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        (WS, {}),
        (WS, {"X-API-Key": "wrong"}),
        (f"{WS}?api_key=wrong", {}),
        (f"{WS}?api_key=", {}),
        (f"{WS}?api_key={KEY}", {}),
        (WS, {"Authorization": f"Bearer {KEY}"}),
    ],
    ids=["none", "wrong-header", "wrong-query", "empty-query", "query", "bearer"],
)
def test_the_handshake_checks_the_key(
    contract: Contract, target: str, headers: dict[str, str]
) -> None:
    def scenario(s: Server) -> Any:
        client = WSClient(s.port, target, headers)
        try:
            if client.rejected is not None:
                status, body = client.rejected
                return {"rejected": status, "body": json.loads(body) if body else None}
            client.send({"type": "ping"})
            return {"accepted": client.recv()}
        finally:
            client.close()

    seen = contract.check(scenario)
    known = KEY in target or any(KEY in value for value in headers.values())
    assert seen == ({"accepted": {"type": "pong"}} if known else {"rejected": 401, **AUTH_401})


def test_messages_and_errors_keep_the_socket_open(contract: Contract, scanned: Trio) -> None:
    messages: list[Any] = [
        {"type": "ping"},
        "not json",
        "[1, 2]",
        {"type": 7},
        {"type": "dance", "data": {}},
        {"type": "context_request", "data": {"mode": "nope", "budget": -1}},
        {"type": "context_request"},
        {"type": "context_request", "data": {"mode": "FOCUSED", "query": "total"}},
        {"type": "context_request", "data": {"mode": "FOCUSED", "include_files": ["no.py"]}},
        {"type": "scan_request", "data": {"include_patterns": 5}},
        {"type": "ping", "data": "ignored"},
    ]

    def scenario(s: Server) -> Any:
        client = WSClient(s.port, WS, {"X-API-Key": KEY})
        try:
            answers = []
            for message in messages:
                client.send(message)
                answers.append(stable(client.recv()))
            client.send({"type": "scan_request", "data": None})
            progress = []
            while (answer := client.recv()).get("type") == "scan_progress":
                progress.append({**answer["data"], "current": 0})
            answers.append({"progress": sorted(progress, key=str), "then": stable(answer)})
            return answers
        finally:
            client.close()

    seen = contract.check(scenario)
    assert seen[0] == {"type": "pong"}
    assert seen[1] == {"type": "error", "data": {"detail": "Invalid JSON"}}
    assert seen[7]["type"] == "context_result"
    assert seen[-1]["then"]["type"] == "scan_complete"
