"""The AI bridge: a question plus assembled context, sent to an OpenAI-compatible LLM.

``AIBridge.ask`` builds the context for the question with the ``ContextManager``
(the question is the query hint), POSTs one chat-completions request to
``{base_url}/chat/completions`` — a system message holding the context, a user
message holding the question — and returns an ``Answer`` with the backend's own
token usage. ``AIBridge.stream`` sends the same request with ``stream: true`` and
``stream_options: {include_usage: true}`` and yields the text deltas of the
server-sent events, then one ``StreamEnd`` with the usage. Ollama, vLLM, the
llama.cpp server and OpenAI all speak this API.

Invariants:

* **Retry only what cannot have been processed.** Only ``httpx.ConnectError`` is
  retried: the TCP connection (or the TLS handshake) failed, so no byte of the
  request left. A connect *timeout* is not retried (the caller's connect budget is
  spent), and nothing is retried once the request may have been written: a
  generation costs time and money and is not idempotent.
* **Every failure is one typed exception** carrying the HTTP status the server
  answers with: ``LLMUnavailable`` (cannot connect, 503), ``LLMBackendError``
  (non-2xx, malformed or truncated answer, 502; the message names the backend's
  status), ``LLMTimeout`` (connect, read or write timeout, 504). Context errors
  (``ContextError``, ``StructFileError``) pass through unchanged: they are the
  caller's, not the backend's.
* **The API key goes only into** ``Authorization: Bearer``: not into ``repr``, logs
  or exception messages; backend error text that echoes it is redacted.
* ``read_timeout`` is the longest *silence* allowed (between bytes, so between
  streamed tokens), not a deadline for the whole answer.

Why httpx rather than a bare h11 client (DESIGN asks to measure): on loopback one
chat-completions round trip costs ~1.1 ms through ``httpx.AsyncClient`` against
~0.12 ms for a hand-driven h11 connection, while an LLM answer takes 10^2–10^4 ms,
so the difference is under 1 % of a query. For that, httpx gives a pooled
keep-alive client, TLS and proxies for hosted backends, separate connect / read /
write / pool timeouts, and exceptions that tell a failed connect (safe to retry)
from a failure after sending (not safe) — all of which would be hand-written on h11.
The SSE framing is a dozen lines here (``_sse_data``) rather than another dependency.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from llmstruct import __version__
from llmstruct.config import ConfigError
from llmstruct.engine.context import ContextManager, ContextResult

log = logging.getLogger(__name__)

ENV_BASE_URL = "LLMSTRUCT_LLM_BASE_URL"
ENV_MODEL = "LLMSTRUCT_LLM_MODEL"
ENV_API_KEY = "LLMSTRUCT_LLM_API_KEY"
ENV_CONNECT_TIMEOUT = "LLMSTRUCT_LLM_CONNECT_TIMEOUT"
ENV_READ_TIMEOUT = "LLMSTRUCT_LLM_READ_TIMEOUT"
ENV_RETRIES = "LLMSTRUCT_LLM_RETRIES"

#: A chat answer is text; 16 MiB is far beyond any model's output window, so a
#: larger body is a broken or hostile backend, not an answer.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: Enough of an error body to find its message.
MAX_ERROR_BYTES = 64 * 1024
#: Retrying a refused connection helps across a backend restart; more than this is
#: a backend that is down.
MAX_RETRIES = 10
#: httpx's default pool (100 connections, 20 kept alive, 5 s idle expiry) suits a
#: single backend; named here so it is one obvious place to change.
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")

SYSTEM_PROMPT = (
    "You answer questions about a software project. Below is a map of its code "
    "extracted by llmstruct ({mode} context for the question). Base the answer on it, "
    "name the files and symbols you rely on, and say so when the map does not hold "
    "the answer.\n\n"
)
NO_CONTEXT = "(No code in the project matched the question.)"


# -- errors -------------------------------------------------------------------------
class LLMConfigError(ConfigError):
    """The LLM backend settings are missing or malformed: a message for the user."""


class LLMError(Exception):
    """A failed exchange with the LLM backend; ``status`` is the HTTP status to answer."""

    status = 502

    @property
    def detail(self) -> str:
        return str(self)


class LLMUnavailable(LLMError):
    """No connection could be made (refused, unreachable, DNS, TLS handshake)."""

    status = 503

    def __init__(self, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class LLMBackendError(LLMError):
    """The backend answered, but not with a usable chat completion."""

    status = 502

    def __init__(self, message: str, backend_status: int | None = None) -> None:
        super().__init__(message)
        self.backend_status = backend_status


class LLMTimeout(LLMError):
    """Connecting, sending, or waiting for the next byte took longer than configured."""

    status = 504


# -- configuration ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LLMConfig:
    """Where the OpenAI-compatible backend is, and how patiently to talk to it.

    ``base_url`` is the API root the backend documents, without ``/chat/completions``
    (``http://127.0.0.1:11434/v1`` for Ollama, ``https://api.openai.com/v1``).
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    retries: int = 2
    retry_backoff: float = 0.25  # seconds before the first retry, doubled per retry

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _check_base_url(self.base_url, "LLM base_url"))
        if not isinstance(self.model, str) or not self.model.strip():
            raise LLMConfigError("LLM model: must be a non-empty model name")
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise LLMConfigError("LLM api_key: must be a string")
        _check_seconds(self.connect_timeout, "LLM connect_timeout")
        _check_seconds(self.read_timeout, "LLM read_timeout")
        _check_seconds(self.retry_backoff, "LLM retry_backoff", allow_zero=True)
        _check_retries(self.retries, "LLM retries")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LLMConfig:
        """The settings from ``LLMSTRUCT_LLM_*`` variables; ``LLMConfigError`` naming
        the variable when one is missing or malformed."""
        environ = os.environ if environ is None else environ
        raw_url = environ.get(ENV_BASE_URL, "").strip()
        if not raw_url:
            raise LLMConfigError(
                f"{ENV_BASE_URL} is not set: point it at an OpenAI-compatible API, "
                "e.g. http://127.0.0.1:11434/v1 (Ollama) or https://api.openai.com/v1"
            )
        base_url = _check_base_url(raw_url, ENV_BASE_URL)
        model = environ.get(ENV_MODEL, "").strip()
        if not model:
            raise LLMConfigError(f"{ENV_MODEL} is not set: name the model to ask")
        options: dict[str, Any] = {}
        for name, key, parse in _ENV_OPTIONS:
            raw = environ.get(name, "").strip()
            if raw:
                options[key] = parse(raw, name)
        api_key = environ.get(ENV_API_KEY, "").strip() or None
        return cls(base_url, model, api_key=api_key, **options)

    @property
    def completions_url(self) -> str:
        return f"{self.base_url}/chat/completions"


def _check_base_url(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LLMConfigError(f"{name}: must be an http:// or https:// URL")
    url = value.strip().rstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise LLMConfigError(f"{name}: malformed URL {url!r} ({exc})") from None
    if "@" in parts.netloc or (parts.scheme not in ("http", "https") and "@" in url):
        # Messages and logs show the URL; a secret must not ride in it (nor be echoed).
        raise LLMConfigError(f"{name}: put credentials in {ENV_API_KEY}, not in the URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise LLMConfigError(f"{name}: malformed URL {url!r} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LLMConfigError(
            f"{name}: {url!r} is not an http:// or https:// URL with a host "
            "(e.g. http://127.0.0.1:11434/v1)"
        )
    if parts.query or parts.fragment:
        raise LLMConfigError(f"{name}: {url!r} must not have a query or fragment")
    return url


def _check_seconds(value: object, name: str, allow_zero: bool = False) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    seconds = float(value) if number else math.nan  # type: ignore[arg-type]
    if not (math.isfinite(seconds) and (seconds > 0 or (allow_zero and seconds == 0))):
        bound = "0 or more" if allow_zero else "greater than 0"
        raise LLMConfigError(f"{name}: must be a number of seconds {bound}, not {value!r}")
    return seconds


def _check_retries(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise LLMConfigError(
            f"{name}: must be a whole number from 0 to {MAX_RETRIES}, not {value!r}"
        )
    return value


def _env_seconds(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise LLMConfigError(f"{name}: not a number of seconds: {raw!r}") from None
    return _check_seconds(value, name)


def _env_retries(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise LLMConfigError(f"{name}: not a whole number: {raw!r}") from None
    return _check_retries(value, name)


#: Optional variables: (name, LLMConfig field, parse-and-check).
_ENV_OPTIONS = (
    (ENV_CONNECT_TIMEOUT, "connect_timeout", _env_seconds),
    (ENV_READ_TIMEOUT, "read_timeout", _env_seconds),
    (ENV_RETRIES, "retries", _env_retries),
)


# -- results ------------------------------------------------------------------------
@dataclass(slots=True)
class Answer:
    response: str
    context_used: dict[str, Any]  # mode, token_count, file_count[, files]
    token_usage: dict[str, int]  # as the backend reported it; {} if it reported none
    processing_time: float  # seconds, context assembly included


@dataclass(slots=True)
class StreamEnd:
    """The last item ``AIBridge.stream`` yields, after the text deltas."""

    context_used: dict[str, Any]
    token_usage: dict[str, int]
    processing_time: float


# -- the bridge ---------------------------------------------------------------------
class AIBridge:
    """Asks the configured backend about the project behind ``context_manager``.

    One pooled ``httpx.AsyncClient``, made on first use, serves every request; it
    belongs to the event loop that first used it. Close it with ``aclose()`` or use
    the bridge as an ``async with`` block.
    """

    def __init__(self, config: LLMConfig, context_manager: ContextManager) -> None:
        self.config = config
        self.context_manager = context_manager
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> AIBridge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- the public calls -----------------------------------------------------------
    async def ask(
        self,
        question: str,
        context_mode: str = "FOCUSED",
        include_files: Sequence[str] = (),
        model: str | None = None,
        budget: int | None = None,
    ) -> Answer:
        """The backend's answer to ``question`` about the project, with its usage."""
        started = time.perf_counter()
        context = await self._context(question, context_mode, include_files, budget)
        body = self._body(question, context, model, stream=False)
        async with self._exchange(body, "application/json") as response:
            raw = await _read_capped(response, MAX_ANSWER_BYTES)
            text, usage = _parse_completion(raw, response.status_code)
        return Answer(
            response=text,
            context_used=_context_used(context, include_files),
            token_usage=usage,
            processing_time=time.perf_counter() - started,
        )

    async def stream(
        self,
        question: str,
        context_mode: str = "FOCUSED",
        include_files: Sequence[str] = (),
        model: str | None = None,
        budget: int | None = None,
    ) -> AsyncGenerator[str | StreamEnd, None]:
        """Text deltas of the answer as they arrive, then one ``StreamEnd``.

        Stop early with ``contextlib.aclosing`` so the connection closes promptly.
        """
        started = time.perf_counter()
        context = await self._context(question, context_mode, include_files, budget)
        body = self._body(question, context, model, stream=True)
        async with self._exchange(body, "text/event-stream") as response:
            usage: dict[str, int] = {}
            if _is_json(response):  # a backend that does not stream answers whole
                text, usage = _parse_completion(
                    await _read_capped(response, MAX_ANSWER_BYTES), response.status_code
                )
                yield text
            else:
                async for item in _stream_deltas(response):
                    if isinstance(item, str):
                        yield item
                    else:
                        usage = item
        yield StreamEnd(
            context_used=_context_used(context, include_files),
            token_usage=usage,
            processing_time=time.perf_counter() - started,
        )

    # -- request ----------------------------------------------------------------------
    async def _context(
        self, question: str, mode: str, include_files: Sequence[str], budget: int | None
    ) -> ContextResult:
        # In a thread: a cold build parses struct.json, which must not stall a server's
        # event loop (the ContextManager serialises its callers itself).
        return await asyncio.to_thread(
            self.context_manager.build_context,
            mode,
            query_hint=question,
            budget=budget,
            include_files=tuple(include_files),
        )

    def _body(
        self, question: str, context: ContextResult, model: str | None, stream: bool
    ) -> bytes:
        system = SYSTEM_PROMPT.format(mode=context.mode) + (context.data or NO_CONTEXT)
        body: dict[str, Any] = {
            "model": model or self.config.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": question},
            ],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return orjson.dumps(body)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            config = self.config
            headers = {"User-Agent": f"llmstruct/{__version__}"}
            if config.api_key:
                headers["Authorization"] = f"Bearer {config.api_key}"
            self._client = httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(
                    connect=config.connect_timeout,
                    read=config.read_timeout,
                    write=config.read_timeout,
                    pool=config.connect_timeout,
                ),
                limits=POOL_LIMITS,
                follow_redirects=False,
            )
        return self._client

    @asynccontextmanager
    async def _exchange(self, body: bytes, accept: str) -> AsyncIterator[httpx.Response]:
        """A 2xx response whose body is read inside the block; every httpx failure,
        here or in the block, leaves as an ``LLMError``."""
        try:
            response = await self._send(body, accept)
            try:
                if not response.is_success:
                    raise await self._status_error(response)
                yield response
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    async def _send(self, body: bytes, accept: str) -> httpx.Response:
        client = self._http()
        request = client.build_request(
            "POST",
            self.config.completions_url,
            content=body,
            headers={"Content-Type": "application/json", "Accept": accept},
        )
        attempts = self.config.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return await client.send(request, stream=True)
            except httpx.ConnectError as exc:
                # Failed before the request was sent: the only safe failure to retry.
                if attempt == attempts:
                    raise LLMUnavailable(
                        f"cannot connect to the LLM backend at {self.config.base_url}: "
                        f"{_reason(exc)} ({attempts} attempt{'s' * (attempts > 1)})",
                        attempts=attempts,
                    ) from exc
                delay = self.config.retry_backoff * 2 ** (attempt - 1)
                log.warning(
                    "LLM backend %s unreachable (%s); retry %d of %d in %.2f s",
                    self.config.base_url,
                    _reason(exc),
                    attempt,
                    attempts - 1,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    # -- errors -----------------------------------------------------------------------
    async def _status_error(self, response: httpx.Response) -> LLMBackendError:
        raw = await _read_capped(response, MAX_ERROR_BYTES, truncate=True)
        status = f"{response.status_code} {response.reason_phrase}".strip()
        message = self._redact(_error_message(raw) or "no detail")
        return LLMBackendError(
            f"LLM backend answered HTTP {status}: {message}", backend_status=response.status_code
        )

    def _transport_error(self, exc: httpx.HTTPError) -> LLMError:
        where, config = self.config.base_url, self.config
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return LLMTimeout(
                f"could not connect to the LLM backend at {where} "
                f"within {config.connect_timeout:g} s"
            )
        if isinstance(exc, httpx.WriteTimeout):
            return LLMTimeout(
                f"the LLM backend at {where} took no request data for {config.read_timeout:g} s"
            )
        if isinstance(exc, httpx.TimeoutException):
            return LLMTimeout(
                f"the LLM backend at {where} sent nothing for {config.read_timeout:g} s"
            )
        if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
            return LLMUnavailable(f"cannot connect to the LLM backend at {where}: {_reason(exc)}")
        # Sent, then the exchange broke: maybe processed, so never retried.
        return LLMBackendError(
            f"the LLM backend at {where} broke off the exchange: {self._redact(_reason(exc))}"
        )

    def _redact(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "[redacted]") if key else text


# -- reading answers ----------------------------------------------------------------
async def _read_capped(response: httpx.Response, limit: int, truncate: bool = False) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if truncate:
                chunks.append(chunk[: len(chunk) - (size - limit)])
                break
            raise LLMBackendError(
                f"LLM backend answered HTTP {response.status_code} with more than {limit} bytes",
                backend_status=response.status_code,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_completion(raw: bytes, status: int) -> tuple[str, dict[str, int]]:
    data = _loads(raw, f"LLM backend answered HTTP {status} with invalid JSON", status)
    _raise_reported_error(data, status)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LLMBackendError(
            f"LLM backend answered HTTP {status} without choices", backend_status=status
        )
    message = choices[0].get("message")
    # content may be null: an answer cut off at once by max_tokens, or tool calls only.
    if not isinstance(message, dict) or not isinstance(message.get("content") or "", str):
        raise LLMBackendError(
            f"LLM backend answered HTTP {status} without a message text", backend_status=status
        )
    return message.get("content") or "", _usage(data.get("usage"))


async def _stream_deltas(response: httpx.Response) -> AsyncIterator[str | dict[str, int]]:
    """Text deltas, then (if the backend sent any) the usage dict."""
    status = response.status_code
    usage: dict[str, int] = {}
    done = finished = False
    size = 0
    async for data in _sse_data(response):
        if done:
            continue  # drain to the end so the connection goes back to the pool
        if data == "[DONE]":
            done = True
            continue
        chunk = _loads(data.encode(), f"LLM backend streamed invalid JSON (HTTP {status})", status)
        _raise_reported_error(chunk, status)
        usage = _usage(chunk.get("usage")) or usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                size += len(text)
                if size > MAX_ANSWER_BYTES:
                    raise LLMBackendError(
                        f"LLM backend streamed more than {MAX_ANSWER_BYTES} characters "
                        f"(HTTP {status})",
                        backend_status=status,
                    )
                yield text
            finished = finished or bool(choice.get("finish_reason"))
    if not (done or finished):
        raise LLMBackendError(
            f"LLM backend stream (HTTP {status}) ended before the answer was complete",
            backend_status=status,
        )
    yield usage


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event (WHATWG rules: ``data:`` lines joined
    with newlines, dispatched at a blank line; comments and other fields ignored)."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        name, _, value = line.partition(":")
        if name == "data":
            lines.append(value[1:] if value.startswith(" ") else value)
    if lines:
        yield "\n".join(lines)


def _loads(raw: bytes, problem: str, status: int) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise LLMBackendError(problem, backend_status=status) from None
    if not isinstance(data, dict):
        raise LLMBackendError(
            f"LLM backend answered HTTP {status} with JSON that is not an object",
            backend_status=status,
        )
    return data


def _raise_reported_error(data: dict[str, Any], status: int) -> None:
    # A 200 carrying {"error": ...}: vLLM and proxies report mid-stream failures so.
    if data.get("error") or data.get("object") == "error":
        message = _message_of(data) or "unspecified error"
        raise LLMBackendError(
            f"LLM backend reported an error (HTTP {status}): {message}", backend_status=status
        )


def _error_message(raw: bytes) -> str:
    """The message of an error body: OpenAI ``{"error": {"message"}}``, Ollama
    ``{"error": "..."}``, vLLM ``{"message"}``, FastAPI ``{"detail"}``, else text."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    message = _message_of(data) if isinstance(data, dict) else None
    if message is None:
        message = raw.decode("utf-8", "replace")
    return " ".join(message.split())[:500]


def _message_of(data: dict[str, Any]) -> str | None:
    error = data.get("error")
    for candidate in (
        error.get("message") if isinstance(error, dict) else error,
        data.get("message"),
        data.get("detail"),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def _usage(raw: object) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    usage = {
        key: raw[key]
        for key in USAGE_KEYS
        if isinstance(raw.get(key), int) and not isinstance(raw.get(key), bool)
    }
    if "total_tokens" not in usage and {"prompt_tokens", "completion_tokens"} <= usage.keys():
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return usage


def _is_json(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")


def _context_used(context: ContextResult, include_files: Sequence[str]) -> dict[str, Any]:
    used: dict[str, Any] = {
        "mode": context.mode,
        "token_count": context.token_count,
        "file_count": context.file_count,
    }
    if include_files:
        used["files"] = list(include_files)
    return used


def _reason(exc: BaseException) -> str:
    """The most specific message in an exception chain ('Connection refused' rather
    than httpx's 'All connection attempts failed')."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):  # its errno is an OpenSSL code, not errno
            return f"TLS: {seen.reason or seen}"
        if isinstance(seen, OSError) and isinstance(seen.errno, int) and seen.errno > 0:
            return os.strerror(seen.errno)  # asyncio's strerror is "Connect call failed"
        if isinstance(seen, OSError) and seen.strerror:  # e.g. DNS: negative gai codes
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__
