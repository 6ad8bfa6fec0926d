"""Every limit and timeout of the server, in one place, each with its precedent.

This is where to look for "how long is the keep-alive timeout" or "how big may a
request head be". The HTTP protocol (``protocol.py``), the two parser drivers,
the accept loop (``listener.py``), the graceful shutdown (``serve.py``) and the
WebSocket layer (``websocket.py``) read their numbers from one ``Limits``
instance and hard-code none. Defaults are at least as strict as uvicorn's and
nginx's; a default that differs from a well-known server says why.

``Limits`` is frozen: one instance is built at start-up (from the defaults, the
config file, the environment and the flags, see ``config.py``) and shared by
every connection of a worker. Sizes are in bytes, times in seconds.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, fields, replace
from typing import Any

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True, slots=True)
class Limits:
    # -- request head --------------------------------------------------------------
    # Request line + header lines + blank line. Over it: 431 and close. h11's
    # DEFAULT_MAX_INCOMPLETE_EVENT_SIZE and Node.js's --max-http-header-size are
    # both 16 KiB; nginx allows 4 x 8 KiB buffers (large_client_header_buffers).
    max_head_bytes: int = 16 * KiB
    # Header lines per request. Over it: 431 and close. Apache LimitRequestFields.
    max_header_count: int = 100

    # -- request body --------------------------------------------------------------
    # Body cap, whatever the framing. A Content-Length above it is answered 413 as
    # soon as the head is read, before any body byte is; a chunked body that grows
    # past it gets 413 then. nginx client_max_body_size is 1 MiB too; the largest
    # request of the API (a ScanRequest / ContextRequest) is a few KiB.
    max_body_bytes: int = 1 * MiB
    # Body bytes buffered for a handler that has not read them yet; above it the
    # server stops reading the socket until the handler catches up. uvicorn's
    # HIGH_WATER_LIMIT, also asyncio's default transport write high-water mark.
    body_buffer_bytes: int = 64 * KiB

    # -- timeouts on the read side ---------------------------------------------------
    # From accepting a connection (or from the first byte after a keep-alive idle
    # period) to the end of the request head. On expiry: 408 and close if part of
    # a head had arrived, else a silent close. uvicorn has no such timeout (a
    # slowloris holds a connection forever); nginx client_header_timeout is 60 s
    # and Apache mod_reqtimeout header=20-40. Heads are small: 10 s is ample.
    header_timeout: float = 10.0
    # Body read deadline: ``body_timeout`` seconds after the head, extended by one
    # second per ``body_min_rate`` bytes received (a total deadline, so a client
    # trickling one byte every few seconds is cut off). On expiry: 408 and close.
    # Apache mod_reqtimeout body=20,MinRate=500; nginx client_body_timeout (60 s
    # between reads) does not stop a trickle.
    body_timeout: float = 20.0
    body_min_rate: int = 500
    # Idle time allowed between a response and the next request on a keep-alive
    # connection. uvicorn timeout_keep_alive is 5 s (nginx keepalive_timeout 75 s).
    keepalive_timeout: float = 5.0
    # Requests served on one connection before it is closed (Connection: close on
    # the last). nginx keepalive_requests 1000.
    max_keepalive_requests: int = 1000

    # -- write side -------------------------------------------------------------------
    # A client that stops reading: once the transport's write buffer is above its
    # high-water mark (asyncio's 64 KiB) and makes no progress for this long, the
    # connection is aborted. nginx send_timeout 60 s (between two writes).
    send_timeout: float = 60.0
    # After an error response that ends the connection, the server half-closes and
    # discards what the client still sends for at most this long before closing,
    # so the client reads the response instead of a reset. nginx lingering_timeout 5 s.
    linger_timeout: float = 5.0

    # -- connections ------------------------------------------------------------------
    # Open connections per worker (WebSockets included). At the cap the worker stops
    # accepting: new connections wait in the kernel's listen queue until one
    # closes; nothing in flight is dropped. nginx ships worker_connections 1024.
    max_connections: int = 1024
    # The listen queue length, passed to listen(2). uvicorn --backlog 2048.
    backlog: int = 2048
    # SIGTERM: stop accepting at once, then wait this long for in-flight requests
    # before closing what is left. gunicorn graceful_timeout 30 s (systemd's
    # TimeoutStopSec, 90 s by default, must stay above it; see deploy/).
    graceful_timeout: float = 30.0

    # -- WebSocket (read by llmstruct.server.websocket) --------------------------------
    # Largest message, reassembled from its frames; over it: close 1009. uvicorn
    # ws_max_size 16 MiB.
    ws_max_message: int = 16 * MiB
    # The server pings an idle peer this often, and closes a peer that has not
    # answered a ping within ws_ping_timeout (1011). uvicorn and the websockets
    # library: ping_interval 20 s, ping_timeout 20 s.
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    # Outgoing messages queued for a slow reader before the sender waits (and a
    # peer that never drains it hits send_timeout). websockets max_queue 16.
    ws_send_queue: int = 16
    # Time allowed for the closing handshake after sending a Close frame.
    # websockets close_timeout 10 s.
    ws_close_timeout: float = 10.0

    def replace(self, **changes: Any) -> Limits:
        """A copy with some limits changed, each checked (``ValueError`` names it)."""
        checked: dict[str, Any] = {name: check_limit(name, v) for name, v in changes.items()}
        return replace(self, **checked)


def limit_names() -> tuple[str, ...]:
    """The configurable limits, in declaration order."""
    return tuple(f.name for f in fields(Limits))


def check_limit(name: str, value: Any) -> int | float:
    """``value`` as limit ``name`` takes it; ``ValueError`` if it is not a sane value."""
    kinds = {f.name: f.type for f in fields(Limits)}
    if name not in kinds:
        raise ValueError(f"unknown limit {name!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    whole = kinds[name] in ("int", int)
    if whole and value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    # A size or count beyond any real one means "no limit"; the compiled protocol keeps
    # them in C integers (Py_ssize_t), which a larger value would overflow.
    return min(int(value), sys.maxsize) if whole else float(value)


DEFAULT_LIMITS = Limits()
