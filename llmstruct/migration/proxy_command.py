"""``llmstruct migrate proxy``: the traffic splitter / shadow proxy from the command line.

``add_parser(migrate_subcommands)`` adds ``proxy`` to the ``migrate`` group (made by
``llmstruct.migration.cli``). Nothing heavy is imported until the command runs.

Flags map one to one onto ``proxy.ProxySettings``; a bad value is one line on stderr
and exit 2. The proxy runs in one process: its weight, windows and shadow counters
are in-process state that workers would split.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["add_parser", "run", "main"]

EXIT_USAGE = 2
ADMIN_KEY_ENV = "LLMSTRUCT_PROXY_ADMIN_KEY"


def add_parser(migrate_subcommands: Any) -> argparse.ArgumentParser:
    """Add the ``proxy`` subcommand to the ``migrate`` group's subparsers object."""
    parser = migrate_subcommands.add_parser(
        "proxy",
        help="reverse proxy splitting traffic between the legacy and the custom server",
        description=(
            "Send share W of requests to the custom server and the rest to the legacy one "
            "(--mode split), or answer from legacy and mirror to custom, comparing the "
            "answers (--mode shadow). Admin API under /_proxy/ (never forwarded)."
        ),
    )
    parser.add_argument("--legacy", required=True, metavar="URL", help="the legacy server")
    parser.add_argument("--custom", required=True, metavar="URL", help="the custom server")
    parser.add_argument(
        "--weight", default="0", metavar="W",
        help="share of requests sent to custom: 0..1, or a percentage such as 10%% (default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--sticky-header", metavar="NAME",
        help="keep a client on one side by a hash of this header (e.g. X-API-Key)",
    )  # fmt: skip
    parser.add_argument("--mode", choices=("split", "shadow"), default="split")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0: free)")
    parser.add_argument(
        "--admin-key", help=f"key for /_proxy/* (default ${ADMIN_KEY_ENV}; none: loopback only)"
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=5.0, metavar="S",
        help="upstream connect timeout (default 5)",
    )  # fmt: skip
    parser.add_argument(
        "--read-timeout", type=float, default=60.0, metavar="S",
        help="upstream read timeout: longest wait for a response head or a body byte "
        "(default 60; answered 504)",
    )  # fmt: skip
    parser.add_argument(
        "--max-connections", type=int, default=100, metavar="N",
        help="pooled upstream connections per backend (default 100)",
    )  # fmt: skip
    parser.add_argument(
        "--ignore-field", action="append", default=None, metavar="NAME",
        help="shadow: a JSON field ignored in comparisons, anywhere in the body (repeatable; "
        "adds to the volatile defaults)",
    )  # fmt: skip
    writes = parser.add_mutually_exclusive_group()
    writes.add_argument(
        "--shadow-writes", dest="shadow_writes", action="store_true", default=True,
        help="shadow: mirror POST/PUT/PATCH/DELETE to custom too (default)",
    )  # fmt: skip
    writes.add_argument(
        "--no-shadow-writes", dest="shadow_writes", action="store_false",
        help="shadow: mirror only safe methods (GET, HEAD, OPTIONS)",
    )  # fmt: skip
    parser.add_argument(
        "--shadow-queue", type=int, default=256, metavar="N",
        help="shadow: pending mirror requests before new ones are dropped (default 256)",
    )  # fmt: skip
    parser.add_argument(
        "--sla-ms", action="append", default=None, metavar="'METHOD /path=MS'",
        help="shadow: latency SLA of the custom side for one endpoint (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--sla-default-ms", type=float, default=1000.0, metavar="MS",
        help="shadow: SLA of endpoints without their own (default 1000)",
    )  # fmt: skip
    parser.add_argument(
        "--no-schema", action="store_true",
        help="shadow: skip validation against the custom server's /openapi.json",
    )  # fmt: skip
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        default="info")  # fmt: skip
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The ``migrate proxy`` handler: settings from the flags, then serve until SIGTERM."""
    from llmstruct.migration.proxy import ProxySettings, SettingsError, serve_proxy

    try:
        settings = ProxySettings.from_args(args, admin_key=args.admin_key
                                           or os.environ.get(ADMIN_KEY_ENV))  # fmt: skip
    except SettingsError as exc:
        print(f"llmstruct: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return serve_proxy(settings)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmstruct.migration.proxy_command [flags]``: ``llmstruct migrate proxy``."""
    parser = argparse.ArgumentParser(prog="llmstruct migrate")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["proxy", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
