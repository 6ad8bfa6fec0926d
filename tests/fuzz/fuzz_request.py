"""atheris fuzz target for the request path: bytes in, through both HTTP drivers, bytes out.

Each input is fed to an ``HttpProtocol`` over a fake transport (no socket), in
chunks whose size the first input byte chooses (1 byte at a time up to whole),
once per backend, with the test app (sync, async, streaming and body-reading
handlers) behind the production middleware chain. A "crash" is any of:

* an exception escaping ``data_received``/``eof_received``/``connection_lost``,
  or reported to the event loop's exception handler;
* an internal error of the server itself (the protocol logs "internal error"
  and answers 500: every bad input must get a proper 4xx/5xx, never a
  traceback) -- a test-app handler raising on a garbage query string is not one;
* output that is not a sequence of complete, well-formed HTTP/1.1 responses.

Every input runs over every backend of ``tests.server.helpers.BACKENDS`` (h11 and
both twins of the httptools driver; ``httptools-py`` with the pure protocol and
Request as well, the instrumented code), and the compiled and pure httptools
paths must answer it with the same statuses.

Run it (from the repository root; ``-runs`` counts inputs)::

    mkdir -p /tmp/fuzz-found
    python tests/fuzz/fuzz_request.py -runs=100000 -max_len=2048 /tmp/fuzz-found tests/fuzz/corpus

``tests/fuzz/corpus`` holds the seeds (valid, pipelined, chunked, smuggling
attempts); libFuzzer writes what it finds to the first directory given, so name a
scratch one first (or the seeds themselves, to keep the finds: review them before
committing). ``tests/fuzz/test_fuzz_seeds.py`` runs every seed through ``check``
in the normal test suite.
"""

from __future__ import annotations

import asyncio
import atexit
import io
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import atheris  # noqa: E402

with atheris.instrument_imports():
    import h11  # noqa: F401  (instrumented: coverage guidance inside the reference parser)

    # The pure twins: Python that atheris can instrument. The compiled ones (which the
    # selectors load) give libFuzzer no coverage, so the guidance comes from these,
    # run by the httptools-py backend, and every input is compared with the compiled.
    from llmstruct._ext import (  # noqa: F401
        _app_py,
        _llhttp_py,
        _metrics_py,
        _middleware_py,
        _protocol_py,
        _request_py,
    )
    from llmstruct.server import http_common, http_h11, http_httptools  # noqa: F401

from llmstruct.server.limits import Limits  # noqa: E402
from llmstruct.server.middleware import LogSink, default_chain  # noqa: E402
from llmstruct.server.protocol import HttpProtocol, ServerState  # noqa: E402
from tests.server.helpers import (  # noqa: E402
    BACKENDS,
    FakeTransport,
    Reader,
    _BytesSocket,
    driver_for,
    make_app,
    pure_twins_for,
)

KEY = "fuzz-key-0123456789abcdef"
CHUNKS = (1, 2, 3, 7, 16, 64, 512, 1 << 30)
# Small limits, so that inputs of a few KiB reach them.
LIMITS = Limits().replace(max_head_bytes=1024, max_header_count=20, max_body_bytes=2048,
                          body_buffer_bytes=256)  # fmt: skip


class _Failure(Exception):
    pass


def _loop_errors(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    raise _Failure(f"event loop error: {context.get('message')} {context.get('exception')!r}")


LOOP = asyncio.new_event_loop()
LOOP.set_exception_handler(_loop_errors)
atexit.register(LOOP.close)


class MethodTag:
    """Outermost middleware: tags each response with its request's method, so the
    checker knows which responses (to HEAD) carry no body."""

    def on_response(self, request, response):
        response.headers.append((b"x-method", request.method.encode()))
        return response


STATES = {}
PROTOCOLS = {}
for _backend in BACKENDS:
    _sink = LogSink(io.BytesIO())
    _chain = default_chain(KEY, cors_origins=("https://a.example",), rate=1e9, burst=10**9,
                           log_sink=_sink)  # fmt: skip
    _app_obj = make_app([MethodTag(), *_chain])
    _app_obj.state["sink"] = _sink
    STATES[_backend] = ServerState(_app_obj, LIMITS, driver_for(_backend))
    STATES[_backend].loop = LOOP
    # httptools-py: the pure protocol and Request too (the compiled ones elsewhere).
    PROTOCOLS[_backend] = pure_twins_for(_backend, _app_obj) or HttpProtocol


class _ProtocolErrors(logging.Handler):
    """Collects the protocol's own "internal error" reports (a handler raising on a
    garbage query string is the handler's business: the app answers 500 for it)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("internal error"):
            self.found.append(self.format(record))


PROTOCOL_ERRORS = _ProtocolErrors()
_logger = logging.getLogger("llmstruct.server")
_logger.addHandler(PROTOCOL_ERRORS)
_logger.propagate = False  # handler errors of the test app are expected: keep stderr quiet


def _settle() -> None:
    for _ in range(50):
        LOOP.run_until_complete(asyncio.sleep(0))
        if not asyncio.all_tasks(LOOP):
            return


def run_one(backend: str, data: bytes, chunk: int) -> bytes:
    """Feed ``data`` to a fresh connection in ``chunk``-byte pieces; return what it wrote."""
    transport = FakeTransport()
    proto = PROTOCOLS[backend](STATES[backend])
    proto.connection_made(transport)
    for start in range(0, len(data), chunk):
        if transport.closed or transport.eof_written:
            break
        proto.data_received(data[start : start + chunk])
        _settle()
    if not transport.closed:
        proto.eof_received()
        _settle()
    proto.connection_lost(None)
    _settle()
    STATES[backend].app.state["sink"].flush()
    STATES[backend].app.state["sink"].stream.seek(0)
    STATES[backend].app.state["sink"].stream.truncate()
    return bytes(transport.written)


def check_output(output: bytes) -> list[int]:
    """The statuses of the responses in ``output``; raises if it is not well-formed."""
    if output and not output.startswith(b"HTTP/1.1 "):
        raise _Failure(f"output does not start with a status line: {output[:60]!r}")
    reader = Reader(_BytesSocket(output))
    statuses = []
    while reader.buffer or reader._fill():
        response = reader.response(head_only=lambda r: r.header("x-method") == "HEAD")
        if response.status != 100:
            statuses.append(response.status)
    return statuses


def check(data: bytes) -> None:
    """The fuzz target: one input, every backend; raises on a finding."""
    if not data:
        return
    chunk = CHUNKS[data[0] % len(CHUNKS)]
    body = data[1:]
    answers = {}
    for backend in BACKENDS:
        output = run_one(backend, body, chunk)
        try:
            statuses = check_output(output)
        except EOFError as exc:
            raise _Failure(f"{backend}: truncated response ({exc}): {output[-200:]!r}") from None
        if PROTOCOL_ERRORS.found:
            found, PROTOCOL_ERRORS.found = PROTOCOL_ERRORS.found, []
            raise _Failure(f"{backend}: internal error for {body[:200]!r}:\n{found[0]}")
        if statuses.count(500) > body.count(b" /"):  # more 500s than requests: not a handler's
            raise _Failure(f"{backend}: unexplained 500 for {body[:200]!r}")
        answers[backend] = statuses
    if answers["httptools"] != answers["httptools-py"]:  # the driver's twins must agree
        raise _Failure(f"httptools twins differ on {body[:200]!r}: {answers}")


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
