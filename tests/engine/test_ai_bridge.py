"""The AI bridge end to end: a real ContextManager, a real fake LLM server on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM, HangUp, echo_answer, unused_port

from llmstruct.config import ConfigError
from llmstruct.engine.ai_bridge import (
    AIBridge,
    Answer,
    LLMBackendError,
    LLMConfig,
    LLMConfigError,
    LLMTimeout,
    LLMUnavailable,
    StreamEnd,
)
from llmstruct.engine.context import ContextError, ContextManager
from llmstruct.engine.project import scan_to_struct
from llmstruct.engine.scanner import ScanOptions

PROJECT = {
    "shop/__init__.py": '"""A small shop."""\n',
    "shop/cart.py": (
        '"""Shopping carts."""\n\n'
        "from .pricing import apply_discount\n\n\n"
        "class Cart:\n"
        '    """Items a customer intends to buy."""\n\n'
        "    def __init__(self):\n        self.items = []\n\n"
        "    def total(self, prices):\n"
        '        """Sum of the items at ``prices``, discounts applied."""\n'
        "        return apply_discount(sum(prices[s] * q for s, q in self.items))\n"
    ),
    "shop/pricing.py": (
        '"""Prices and discounts."""\n\n\n'
        "def apply_discount(amount):\n"
        '    """Ten percent off orders above one hundred."""\n'
        "    return amount * 0.9 if amount > 100 else amount\n"
    ),
    "shop/orders.py": (
        '"""Turning carts into orders."""\n\n'
        "def checkout(cart, prices):\n"
        '    """Charge the customer for the cart and return the order total."""\n'
        "    return cart.total(prices)\n"
    ),
}
QUESTION = "How is the discount applied to the cart total?"
KEY = "sk-test-4f3c2b1a0987654321fedcba"
#: Answers come at once; only the slow cases wait this long (and use the short one).
READ_TIMEOUT = 5.0
SHORT_READ_TIMEOUT = 0.3
VIA = ["ask", "stream"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ContextManager:
    root = tmp_path_factory.mktemp("shop")
    for rel, text in PROJECT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "struct.json").write_bytes(scan_to_struct(ScanOptions(root)).data)
    return ContextManager(Path(root) / "struct.json", root=root)


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


def settings(url: str, **overrides: Any) -> LLMConfig:
    options: dict[str, Any] = {
        "connect_timeout": 2.0,
        "read_timeout": READ_TIMEOUT,
        "retries": 2,
        "retry_backoff": 0.0,
    }
    return LLMConfig(url, "fake-model", **{**options, **overrides})


def ask(config: LLMConfig, cm: ContextManager, question: str = QUESTION, **kw: Any) -> Answer:
    async def run() -> Answer:
        async with AIBridge(config, cm) as bridge:
            return await bridge.ask(question, **kw)

    return asyncio.run(run())


def stream(
    config: LLMConfig, cm: ContextManager, got: list | None = None, **kw: Any
) -> list[str | StreamEnd]:
    """Everything the stream yields (collected into ``got`` as it arrives)."""
    items: list[str | StreamEnd] = [] if got is None else got

    async def run() -> None:
        async with AIBridge(config, cm) as bridge:
            async with aclosing(bridge.stream(QUESTION, **kw)) as answer:
                async for item in answer:
                    items.append(item)

    asyncio.run(run())
    return items


def call(via: str, config: LLMConfig, cm: ContextManager) -> object:
    return ask(config, cm) if via == "ask" else stream(config, cm)


# -- answers --------------------------------------------------------------------------
def test_answer_has_backend_usage_and_the_focused_context_was_sent(
    llm: FakeLLM, shop: ContextManager
) -> None:
    answer = ask(settings(llm.url), shop)

    expected = shop.build_context("FOCUSED", query_hint=QUESTION)
    assert "apply_discount" in expected.data  # the context is about the question
    (request,) = llm.requests
    assert request.path == "/v1/chat/completions"
    system, user = request.json["messages"]
    assert system["role"] == "system" and expected.data in system["content"]
    assert user == {"role": "user", "content": QUESTION}
    assert request.json["model"] == "fake-model" and request.json["stream"] is False
    assert "authorization" not in request.headers  # no key configured, none sent
    assert answer.response == (
        f"You asked: {QUESTION!r}. The system message has {len(system['content'])} characters."
    )
    assert answer.token_usage == request.usage and answer.token_usage["total_tokens"] > 0
    assert answer.context_used == {
        "mode": "FOCUSED",
        "token_count": expected.token_count,
        "file_count": expected.file_count,
    }
    assert answer.processing_time > 0


def test_mode_files_and_model_override_shape_the_request(
    llm: FakeLLM, shop: ContextManager
) -> None:
    answer = ask(
        settings(llm.url),
        shop,
        context_mode="minimal",
        include_files=["shop/orders.py"],
        model="other-model",
        budget=300,
    )

    expected = shop.build_context(
        "MINIMAL", query_hint=QUESTION, budget=300, include_files=("shop/orders.py",)
    )
    (request,) = llm.requests
    assert request.json["model"] == "other-model"
    assert expected.data in request.json["messages"][0]["content"]
    assert answer.context_used == {
        "mode": "MINIMAL",
        "token_count": expected.token_count,
        "file_count": expected.file_count,
        "files": ["shop/orders.py"],
    }


def test_stream_deltas_reassemble_the_answer_then_usage(llm: FakeLLM, shop: ContextManager) -> None:
    *deltas, end = stream(settings(llm.url), shop)

    (request,) = llm.requests
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}
    assert request.headers["accept"] == "text/event-stream"
    assert len(deltas) > 5 and all(isinstance(delta, str) for delta in deltas)
    assert "".join(map(str, deltas)) == echo_answer(request.json["messages"])
    assert isinstance(end, StreamEnd) and end.token_usage == request.usage
    assert end.context_used["mode"] == "FOCUSED" and end.context_used["token_count"] > 0


def test_stream_without_usage_support_ends_with_empty_usage(
    llm: FakeLLM, shop: ContextManager
) -> None:
    llm.stream_usage = False  # a backend that ignores stream_options
    *deltas, end = stream(settings(llm.url), shop)
    assert "".join(map(str, deltas)) == echo_answer(llm.requests[0].json["messages"])
    assert isinstance(end, StreamEnd) and end.token_usage == {}


def test_stream_from_a_backend_that_answers_whole(llm: FakeLLM, shop: ContextManager) -> None:
    llm.mode = "whole"  # ignores "stream": true, answers with one JSON completion
    answer, end = stream(settings(llm.url), shop)
    assert answer == echo_answer(llm.requests[0].json["messages"])
    assert isinstance(end, StreamEnd) and end.token_usage == llm.requests[0].usage


def test_stopping_a_stream_early_releases_it(llm: FakeLLM, shop: ContextManager) -> None:
    async def run() -> tuple[str | StreamEnd, Answer]:
        async with AIBridge(settings(llm.url), shop) as bridge:
            async with aclosing(bridge.stream(QUESTION)) as answer:
                first = await anext(answer)
            return first, await bridge.ask(QUESTION)

    first, after = asyncio.run(run())
    assert first == "You" and after.response.startswith("You asked")
    assert llm.connections == 2  # the abandoned stream's connection was closed, not reused


def test_one_pooled_connection_serves_several_questions(llm: FakeLLM, shop: ContextManager) -> None:
    async def run() -> list[object]:
        async with AIBridge(settings(llm.url), shop) as bridge:
            first = await bridge.ask(QUESTION)
            streamed = [item async for item in bridge.stream(QUESTION)]
            second = await bridge.ask("Where are orders made?")
            return [first, streamed, second]

    first, streamed, second = asyncio.run(run())
    assert len(llm.requests) == 3 and llm.connections == 1
    assert isinstance(first, Answer) and isinstance(second, Answer)
    assert "orders" in second.response and isinstance(streamed[-1], StreamEnd)  # type: ignore[index]


def test_bad_context_request_fails_before_asking_the_backend(
    llm: FakeLLM, shop: ContextManager
) -> None:
    with pytest.raises(ContextError, match="invalid context mode"):
        ask(settings(llm.url), shop, context_mode="EVERYTHING")
    with pytest.raises(ContextError, match="not in the struct"):
        ask(settings(llm.url), shop, include_files=["shop/missing.py"])
    assert llm.requests == []


# -- the backend down, failing, slow -----------------------------------------------
@pytest.mark.parametrize("via", VIA)
def test_unreachable_backend_is_unavailable_after_retries(via: str, shop: ContextManager) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    with pytest.raises(LLMUnavailable) as caught:
        call(via, settings(url), shop)
    assert caught.value.status == 503 and caught.value.attempts == 3
    assert url in str(caught.value) and "3 attempts" in str(caught.value)


@pytest.mark.parametrize("retries", [0, 2])
def test_connect_failures_are_retried_exactly_retries_times(
    retries: int, shop: ContextManager
) -> None:
    with HangUp() as server:  # every TLS handshake is reset: the request never leaves
        with pytest.raises(LLMUnavailable) as caught:
            ask(settings(server.url, retries=retries), shop)
    assert server.accepted == retries + 1 == caught.value.attempts


@pytest.mark.parametrize("via", VIA)
def test_no_retry_once_the_request_may_have_been_processed(
    via: str, llm: FakeLLM, shop: ContextManager
) -> None:
    llm.mode = "drop"  # reads the request, hangs up without an answer
    with pytest.raises(LLMBackendError) as caught:
        call(via, settings(llm.url, retries=2), shop)
    assert caught.value.status == 502 and caught.value.backend_status is None
    assert len(llm.requests) == 1 and llm.connections == 1


@pytest.mark.parametrize("via", VIA)
def test_backend_error_status_and_message_are_reported(
    via: str, llm: FakeLLM, shop: ContextManager
) -> None:
    llm.mode = "error"
    with pytest.raises(LLMBackendError) as caught:
        call(via, settings(llm.url), shop)
    assert caught.value.status == 502 and caught.value.backend_status == 500
    assert "HTTP 500" in str(caught.value) and "failed on purpose" in caught.value.detail
    assert len(llm.requests) == 1


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("mode", ["garbage", "nochoices"])
def test_malformed_answer_is_a_backend_error(
    via: str, mode: str, llm: FakeLLM, shop: ContextManager
) -> None:
    llm.mode = mode
    with pytest.raises(LLMBackendError) as caught:
        call(via, settings(llm.url), shop)
    assert caught.value.status == 502 and caught.value.backend_status == 200
    assert "HTTP 200" in str(caught.value)


@pytest.mark.parametrize("via", VIA)
def test_slow_backend_times_out_without_retrying(
    via: str, llm: FakeLLM, shop: ContextManager
) -> None:
    llm.mode = "slow"
    with pytest.raises(LLMTimeout) as caught:
        call(via, settings(llm.url, read_timeout=SHORT_READ_TIMEOUT), shop)
    assert caught.value.status == 504 and f"{SHORT_READ_TIMEOUT:g} s" in str(caught.value)
    assert len(llm.requests) == 1


def test_stream_that_stalls_times_out_after_the_first_delta(
    llm: FakeLLM, shop: ContextManager
) -> None:
    llm.mode = "stall"
    got: list[str | StreamEnd] = []
    with pytest.raises(LLMTimeout):
        stream(settings(llm.url, read_timeout=SHORT_READ_TIMEOUT), shop, got)
    assert got == ["You"]


# -- the API key ----------------------------------------------------------------------
def test_api_key_is_sent_as_bearer_and_kept_out_of_errors_and_logs(
    llm: FakeLLM, shop: ContextManager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = settings(llm.url, api_key=KEY)
    ask(config, shop)
    assert llm.requests[0].headers["authorization"] == f"Bearer {KEY}"

    llm.mode = "error"  # a careless backend that echoes the key back
    llm.error_message = f"Incorrect API key provided: {KEY}"
    with pytest.raises(LLMBackendError) as failed:
        ask(config, shop)
    down = settings(f"http://127.0.0.1:{unused_port()}/v1", api_key=KEY, retries=1)
    with pytest.raises(LLMUnavailable) as unreachable:
        ask(down, shop)

    assert "Incorrect API key provided: [redacted]" in str(failed.value)
    for text in (str(failed.value), str(unreachable.value), repr(config), caplog.text):
        assert KEY not in text
    assert "retry 1 of 1" in caplog.text  # the retry was logged, without the key


# -- configuration --------------------------------------------------------------------
def test_config_from_env() -> None:
    config = LLMConfig.from_env(
        {
            "LLMSTRUCT_LLM_BASE_URL": " http://127.0.0.1:11434/v1/ ",
            "LLMSTRUCT_LLM_MODEL": "llama3.2",
            "LLMSTRUCT_LLM_API_KEY": "",
            "LLMSTRUCT_LLM_CONNECT_TIMEOUT": "1.5",
            "LLMSTRUCT_LLM_RETRIES": "0",
        }
    )
    assert config.base_url == "http://127.0.0.1:11434/v1"
    assert config.completions_url == "http://127.0.0.1:11434/v1/chat/completions"
    assert (config.model, config.api_key) == ("llama3.2", None)
    assert (config.connect_timeout, config.read_timeout, config.retries) == (1.5, 60.0, 0)
    keyed = LLMConfig.from_env(
        {
            "LLMSTRUCT_LLM_BASE_URL": "https://api.example/v1",
            "LLMSTRUCT_LLM_MODEL": "m",
            "LLMSTRUCT_LLM_API_KEY": KEY,
        }
    )
    assert keyed.api_key == KEY


URL = "http://127.0.0.1:11434/v1"


@pytest.mark.parametrize(
    "environ, problem",
    [
        ({}, "LLMSTRUCT_LLM_BASE_URL is not set"),
        ({"LLMSTRUCT_LLM_BASE_URL": "  "}, "LLMSTRUCT_LLM_BASE_URL is not set"),
        ({"LLMSTRUCT_LLM_BASE_URL": "localhost:11434"}, "LLMSTRUCT_LLM_BASE_URL: 'localhost"),
        ({"LLMSTRUCT_LLM_BASE_URL": "ftp://host/v1"}, "not an http:// or https:// URL"),
        ({"LLMSTRUCT_LLM_BASE_URL": "http:///v1"}, "with a host"),
        ({"LLMSTRUCT_LLM_BASE_URL": "http://host:99999/v1"}, "malformed URL"),
        ({"LLMSTRUCT_LLM_BASE_URL": "http://[::1/v1"}, "malformed URL"),
        ({"LLMSTRUCT_LLM_BASE_URL": "http://u:hunter2@host/v1"}, "not in the URL"),
        ({"LLMSTRUCT_LLM_BASE_URL": f"{URL}?key=1"}, "query or fragment"),
        ({"LLMSTRUCT_LLM_BASE_URL": URL}, "LLMSTRUCT_LLM_MODEL is not set"),
        (
            {
                "LLMSTRUCT_LLM_BASE_URL": URL,
                "LLMSTRUCT_LLM_MODEL": "m",
                "LLMSTRUCT_LLM_READ_TIMEOUT": "soon",
            },
            "LLMSTRUCT_LLM_READ_TIMEOUT: not a number",
        ),
        (
            {
                "LLMSTRUCT_LLM_BASE_URL": URL,
                "LLMSTRUCT_LLM_MODEL": "m",
                "LLMSTRUCT_LLM_CONNECT_TIMEOUT": "0",
            },
            "LLMSTRUCT_LLM_CONNECT_TIMEOUT: must be a number of seconds greater than 0",
        ),
        (
            {
                "LLMSTRUCT_LLM_BASE_URL": URL,
                "LLMSTRUCT_LLM_MODEL": "m",
                "LLMSTRUCT_LLM_RETRIES": "-1",
            },
            "LLMSTRUCT_LLM_RETRIES: must be a whole number",
        ),
    ],
)
def test_bad_config_is_one_clear_error(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(LLMConfigError) as caught:
        LLMConfig.from_env(environ)
    assert problem in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert isinstance(caught.value, ConfigError)  # reported like every other config error


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"base_url": ""}, "base_url"),
        ({"model": " "}, "model"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"connect_timeout": float("inf")}, "connect_timeout"),
        ({"retries": 1.5}, "retries"),
        ({"retry_backoff": -1}, "retry_backoff"),
    ],
)
def test_bad_config_values_are_rejected(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(LLMConfigError, match=problem):
        LLMConfig(**{"base_url": URL, "model": "m", **kwargs})
