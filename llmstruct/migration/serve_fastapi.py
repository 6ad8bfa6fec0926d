"""``llmstruct serve-fastapi``: the FastAPI reference app (``fastapi_app``) under uvicorn.

Settings: flags > ``LLMSTRUCT_HOST``, ``LLMSTRUCT_PORT``, ``LLMSTRUCT_API_KEY`` >
defaults (127.0.0.1, 8000, no key). Without a key the app serves without
authentication, which is allowed only on a loopback host (as ``llmstruct serve``).
The socket is bound here, before uvicorn starts, so ``--port 0`` works and the
line ``llmstruct: serving FastAPI on http://HOST:PORT (bridge=...)`` on stderr
names the real port once connections are accepted. SIGTERM or SIGINT: uvicorn's
graceful shutdown, exit 0. A start-up problem is one line on stderr and exit 2.

Needs the ``[fastapi]`` extra (fastapi, uvicorn); FastAPI is imported only when
the command runs, so ``llmstruct --help`` works without it.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "main", "run"]

EXIT_USAGE = 2
BRIDGE_CHOICES = ("inprocess", "cli")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class _StartError(Exception):
    """A start-up problem: one line on stderr, exit status 2."""


def add_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add the ``serve-fastapi`` subcommand to an ``argparse`` subparsers object."""
    parser = subcommands.add_parser(
        "serve-fastapi",
        help="run the FastAPI reference service (design sheet 02) under uvicorn",
        description=(
            "Serve the v1 API with the FastAPI reference app, the 'before' of the "
            "migration. --bridge cli runs every engine call as a subprocess "
            "('llmstruct engine-call'), as design sheet 02 designed; inprocess calls "
            "the engine directly. Needs the [fastapi] extra."
        ),
    )
    parser.add_argument("--host", help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument(
        "--bridge", choices=BRIDGE_CHOICES, default="inprocess",
        help="how the app reaches the engine (default: inprocess)",
    )  # fmt: skip
    parser.add_argument(
        "--api-key", help="the API key clients must send (default: $LLMSTRUCT_API_KEY)"
    )
    parser.add_argument(
        "--cli-timeout", type=float, default=300.0, metavar="SECONDS",
        help="cli bridge: longest engine call (default 300)",
    )  # fmt: skip
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="uvicorn's")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The ``serve-fastapi`` handler."""
    try:
        return _serve(args)
    except _StartError as exc:
        print(f"llmstruct: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _serve(args: argparse.Namespace) -> int:
    from llmstruct.netaddr import is_loopback

    host = args.host or os.environ.get("LLMSTRUCT_HOST") or DEFAULT_HOST
    port = args.port if args.port is not None else _env_port()
    api_key = args.api_key or os.environ.get("LLMSTRUCT_API_KEY") or None
    if api_key is None and not is_loopback(host):
        raise _StartError(
            f"serving without an API key is allowed only on a loopback host, not {host!r}: "
            "set --api-key or LLMSTRUCT_API_KEY"
        )
    root = Path(args.root)
    if not root.is_dir():
        raise _StartError(f"{root}: {'not a directory' if root.exists() else 'no such directory'}")
    if args.cli_timeout <= 0:
        raise _StartError(f"--cli-timeout must be positive, not {args.cli_timeout:g}")
    try:
        import uvicorn

        from llmstruct.migration.fastapi_app import create_app
    except ImportError as exc:
        raise _StartError(
            f"serve-fastapi needs the [fastapi] extra ({exc.name} is missing): "
            "pip install 'llmstruct[fastapi]'"
        ) from None
    try:
        app = create_app(root, args.bridge, api_key, cli_timeout=args.cli_timeout)
    except Exception as exc:  # the task database or the root cannot be opened
        raise _StartError(str(exc)) from None
    sock = _listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    if api_key is None:
        print("llmstruct: warning: serving WITHOUT authentication (loopback only)",
              file=sys.stderr)  # fmt: skip
    print(f"llmstruct: serving FastAPI on http://{shown}:{sock.getsockname()[1]} "
          f"(bridge={args.bridge})", file=sys.stderr, flush=True)  # fmt: skip
    config = uvicorn.Config(app, log_level=args.log_level, lifespan="on")
    with sock:
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def _env_port() -> int:
    raw = os.environ.get("LLMSTRUCT_PORT")
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise _StartError(f"LLMSTRUCT_PORT must be a port number, not {raw!r}") from None
    return port


def _listen(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise _StartError(f"port must be 0 to 65535, not {port}")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise _StartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def main(argv: list[str] | None = None) -> int:
    """``python -m llmstruct.migration.serve_fastapi [flags]``: as ``llmstruct serve-fastapi``."""
    parser = argparse.ArgumentParser(prog="llmstruct")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve-fastapi", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
