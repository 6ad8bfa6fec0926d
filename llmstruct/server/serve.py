"""``llmstruct serve``: N worker processes on one port, graceful stop, systemd readiness.

Process model. With ``--workers 1`` the server runs in the calling process.
With N > 1 a supervisor forks N workers; each binds its own socket to the
same port with SO_REUSEPORT, so the kernel spreads new connections across them
(no shared accept queue, no thundering herd). For ``--port 0`` the supervisor
first binds a placeholder socket (never listening, so it receives nothing) to
learn the port, and keeps it until exit so the port stays ours. A worker that
dies is restarted, unless workers keep dying (5 within a minute: the
supervisor stops them all and exits 1).

Stopping (SIGTERM or SIGINT). A worker closes its listening socket at once,
finishes the requests in flight within ``graceful_timeout`` (their responses
carry ``Connection: close``), closes WebSockets with 1001, aborts what is left,
flushes its log and exits 0. The supervisor forwards SIGTERM and waits for the
workers (killing any still alive ``graceful_timeout`` + 5 s later), then exits 0.

systemd (``Type=notify``). The main process sends ``READY=1`` on
``$NOTIFY_SOCKET`` once every worker listens, and ``STOPPING=1`` when a stop
begins; see ``deploy/llmstruct.service``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from llmstruct.server.config import (
    HTTP_CHOICES,
    LOOP_CHOICES,
    ConfigError,
    ServerConfig,
    load_server_config,
)

if TYPE_CHECKING:
    from llmstruct.server.app import App

__all__ = ["add_parser", "main", "run", "notify"]

EXIT_USAGE = 2
log = logging.getLogger("llmstruct.server")


# -- command line ----------------------------------------------------------------------------------
def add_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to an ``argparse`` subparsers object."""
    parser = subcommands.add_parser(
        "serve",
        help="run the HTTP + WebSocket API server",
        description="Serve the llmstruct API. Settings: flags > LLMSTRUCT_* environment > "
        "[server] in ROOT/llmstruct.toml > defaults.",
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8000; 0 picks a free one)")
    parser.add_argument("--workers", type=int, help="worker processes (default 1)")
    parser.add_argument("--root", help="project root, where llmstruct.toml is read (default .)")
    parser.add_argument("--http", choices=HTTP_CHOICES, help="HTTP parser (default auto)")
    parser.add_argument("--loop", choices=LOOP_CHOICES, help="event loop (default auto)")
    parser.add_argument(
        "--no-auth", action="store_true", help="serve without an API key (loopback hosts only)"
    )
    parser.set_defaults(handler=_cmd_serve)
    return parser


def _cmd_serve(args: argparse.Namespace) -> int:
    flags = {
        name: getattr(args, name) for name in ("host", "port", "workers", "root", "http", "loop")
    }
    if args.no_auth:
        flags["auth"] = False
    try:
        config = load_server_config(flags)
    except ConfigError as exc:
        print(f"llmstruct: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run(config, _with_api(config.root, getattr(args, "configure", None)))


def _with_api(root: Any, extra: Callable[[App], None] | None) -> Callable[[App], None]:
    """The worker's ``configure``: the v1 API routes on ``root``'s engine, then ``extra``."""

    def configure(app: App) -> None:
        from llmstruct.server.api import configure_for

        configure_for(root)(app)
        if extra is not None:
            extra(app)

    return configure


def main(argv: list[str] | None = None, configure: Callable[[App], None] | None = None) -> int:
    """``python -m llmstruct.server.serve [flags]``: the same as ``llmstruct serve``."""
    parser = argparse.ArgumentParser(prog="llmstruct")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    args.configure = configure
    return args.handler(args)


# -- start-up --------------------------------------------------------------------------------------
def run(config: ServerConfig, configure: Callable[[App], None] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a graceful stop, 2 for a start-up error.

    ``configure(app)`` runs in each worker after the system routes are added:
    where the API's own routes are registered.
    """
    _setup_logging(config.log_level)
    try:
        api_key = _api_key(config)
    except ConfigError as exc:
        print(f"llmstruct: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _raise_fd_limit(config.limits.max_connections + 64)
    try:
        placeholder = None
        if config.workers == 1:
            sock = _bind(config, config.port, reuse_port=False)
        else:
            placeholder = socket.socket(_family(config.host), socket.SOCK_STREAM)
            placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            placeholder.bind((config.host, config.port))
    except (OSError, ValueError) as exc:
        print(f"llmstruct: error: cannot listen on {config.host}:{config.port}: {exc}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    if placeholder is None:
        port = sock.getsockname()[1]
        _announce(config, port)
        return _run_worker(config, api_key, sock, configure, main_process=True)
    with placeholder:
        port = placeholder.getsockname()[1]
        return _Supervisor(config, api_key, port, configure).run()


def _api_key(config: ServerConfig) -> str | None:
    from pathlib import Path

    from llmstruct.server.auth import APIKeyFileError, default_key_path, load_or_create_key

    if not config.auth:
        print("llmstruct: warning: serving WITHOUT authentication (loopback only)", file=sys.stderr)
        return None
    if config.api_key:
        return config.api_key
    path = Path(config.api_key_file) if config.api_key_file else default_key_path()
    try:
        key, created = load_or_create_key(path)
    except APIKeyFileError as exc:
        raise ConfigError(str(exc)) from None
    verb = "generated and stored in" if created else "read from"
    print(
        f"llmstruct: API key {verb} {path} (owner-only); send it as "
        "'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        file=sys.stderr,
    )
    return key


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bind(config: ServerConfig, port: int, reuse_port: bool) -> socket.socket:
    from llmstruct.server.listener import bind_socket

    return bind_socket(config.host, port, config.limits.backlog, reuse_port=reuse_port)


def _announce(config: ServerConfig, port: int) -> None:
    from llmstruct.server.listener import driver_class

    http = driver_class(config.http).__name__.replace("Driver", "").lower()
    loop = "uvloop" if _loop_factory(config.loop) is not asyncio.new_event_loop else "asyncio"
    host = f"[{config.host}]" if ":" in config.host else config.host
    workers = f"{config.workers} worker{'s' if config.workers > 1 else ''}"
    print(f"llmstruct: serving on http://{host}:{port} ({workers}, http={http}, loop={loop})",
          file=sys.stderr, flush=True)  # fmt: skip


def _loop_factory(choice: str) -> Any:
    if choice in ("uvloop", "auto"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def _raise_fd_limit(needed: int) -> None:
    """Lift the soft RLIMIT_NOFILE towards the hard one if the connection cap needs it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            log.warning("file descriptor limit %d is below max_connections + 64", target)


# -- one worker ------------------------------------------------------------------------------------
def _run_worker(
    config: ServerConfig, api_key: str | None, sock: socket.socket, configure: Any,
    main_process: bool, ready: Any = None, lifeline: int | None = None,
) -> int:  # fmt: skip
    loop = _loop_factory(config.loop)()
    try:
        return loop.run_until_complete(
            _serve(config, api_key, sock, configure, main_process, ready, lifeline)
        )
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _serve(
    config: ServerConfig, api_key: str | None, sock: socket.socket, configure: Any,
    main_process: bool, ready: Any, lifeline: int | None,
) -> int:  # fmt: skip
    from llmstruct.server.listener import Server
    from llmstruct.server.system import build_app

    loop = asyncio.get_running_loop()
    app = build_app(
        api_key,
        cors_origins=config.cors_origins,
        rate_limit=config.rate_limit,
        rate_burst=config.rate_burst,
        forwarded_allow_ips=config.forwarded_allow_ips,
        access_log=config.access_log,
    )
    if configure is not None:
        configure(app)
    server = Server(app, config.limits, config.http)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if lifeline is not None:
        # The supervisor holds the pipe's write end: EOF means it died (even by
        # SIGKILL), and a worker must not outlive it serving on its own.
        def orphaned() -> None:
            loop.remove_reader(lifeline)
            log.error("the supervisor is gone; stopping")
            stop.set()

        loop.add_reader(lifeline, orphaned)
    server.start(sock)
    if main_process:
        notify("READY=1")
    if ready is not None:
        ready.send(os.getpid())
        ready.close()
    await stop.wait()
    if main_process:
        notify("STOPPING=1")
    await server.shutdown()
    sink = app.state.get("log_sink")
    if sink is not None:
        sink.flush()
    return 0


def _worker_main(
    config: ServerConfig, api_key: str | None, port: int, configure: Any, ready: Any,
    lifeline: int, inherited: tuple[int, ...],
) -> None:  # fmt: skip
    """A forked worker's entry point: bind with SO_REUSEPORT, serve, exit with its status.

    ``inherited`` are the supervisor's own pipe ends, closed here: a worker holding
    the lifeline's write end would never see it close.
    """
    for fd in inherited:
        os.close(fd)
    # Until the worker's loop installs its handlers: a Ctrl-C reaches the whole process
    # group, and the supervisor turns it into a SIGTERM for each worker anyway.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.pop("NOTIFY_SOCKET", None)  # only the main process talks to systemd
    sock = _bind(config, port, reuse_port=True)
    sys.exit(_run_worker(config, api_key, sock, configure, False, ready=ready, lifeline=lifeline))


# -- supervisor ------------------------------------------------------------------------------------
class _Supervisor:
    """Forks the workers, restarts those that die, forwards SIGTERM, reports readiness."""

    MAX_RESTARTS = 5  # within RESTART_WINDOW seconds; more means something is broken
    RESTART_WINDOW = 60.0

    def __init__(
        self, config: ServerConfig, api_key: str | None, port: int, configure: Any
    ) -> None:
        self.config = config
        self.api_key = api_key
        self.port = port
        self.configure = configure
        import multiprocessing  # only a supervisor needs it (1.5 MiB a worker need not carry)

        self.context = multiprocessing.get_context("fork")
        self.workers: dict[int, Any] = {}  # slot -> Process
        self.restarts: list[float] = []
        self.stopping = False
        self.wakeup_r, self.wakeup_w = os.pipe()
        self.lifeline_r, self.lifeline_w = os.pipe()  # see _worker_main
        os.set_blocking(self.wakeup_w, False)

    def _spawn(self, slot: int) -> Any:
        receive, send = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=_worker_main,
            args=(
                self.config,
                self.api_key,
                self.port,
                self.configure,
                send,
                self.lifeline_r,
                (self.wakeup_r, self.wakeup_w, self.lifeline_w),
            ),  # fmt: skip
            name=f"llmstruct-worker-{slot}",
        )
        process.start()
        send.close()
        self.workers[slot] = process
        return receive

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            os.write(self.wakeup_w, b"x")

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        try:
            pipes = [self._spawn(slot) for slot in range(self.config.workers)]
            if not self._wait_ready(pipes):
                self._stop_all()
                return 1
            _announce(self.config, self.port)
            notify("READY=1")
            status = self._watch()
            notify("STOPPING=1")
            self._stop_all()
            return status
        finally:
            for fd in (self.wakeup_r, self.wakeup_w, self.lifeline_r, self.lifeline_w):
                os.close(fd)

    def _wait_ready(self, pipes: list[Any]) -> bool:
        """Wait until every worker listens; False if one died first or a stop came."""
        waiting = list(pipes)
        while waiting and not self.stopping:
            sentinels = [p.sentinel for p in self.workers.values()]
            for ready in _wait_for_any([*waiting, *sentinels, self.wakeup_r]):
                if ready in waiting:
                    with contextlib.suppress(EOFError):
                        ready.recv()
                    waiting.remove(ready)
                    ready.close()
                elif isinstance(ready, int) and ready in sentinels:
                    print("llmstruct: error: a worker failed to start", file=sys.stderr)
                    for pipe in waiting:
                        pipe.close()
                    return False
        for pipe in waiting:
            pipe.close()
        return not self.stopping

    def _watch(self) -> int:
        """Restart dead workers until a stop signal; 0, or 1 after a crash loop."""
        while not self.stopping:
            by_sentinel = {p.sentinel: slot for slot, p in self.workers.items()}
            for ready in _wait_for_any([*by_sentinel, self.wakeup_r]):
                slot = by_sentinel.get(ready)
                if slot is None or self.stopping:
                    continue
                process = self.workers[slot]
                process.join()
                log.error("worker %d (pid %d) exited with %s; restarting",
                          slot, process.pid, process.exitcode)  # fmt: skip
                now = time.monotonic()
                self.restarts = [t for t in self.restarts if now - t < self.RESTART_WINDOW]
                self.restarts.append(now)
                if len(self.restarts) > self.MAX_RESTARTS:
                    log.error("workers keep dying; stopping")
                    return 1
                self._spawn(slot).close()
        return 0

    def _stop_all(self) -> None:
        for process in self.workers.values():
            if process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.limits.graceful_timeout + 5.0
        for process in self.workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def _wait_for_any(objects: list[Any]) -> list[Any]:
    from multiprocessing.connection import wait

    return wait(objects)


# -- systemd ---------------------------------------------------------------------------------------
def notify(message: str) -> bool:
    """Send ``message`` to systemd's ``$NOTIFY_SOCKET`` (sd_notify(3)); False if none."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", address, exc)
        return False
    return True


# -- logging ---------------------------------------------------------------------------------------
class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "logger": record.name,
            "pid": record.process,
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONFormatter())
    root = logging.getLogger("llmstruct")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


if __name__ == "__main__":
    sys.exit(main())
