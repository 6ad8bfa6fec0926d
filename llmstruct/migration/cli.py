"""``llmstruct migrate``: the staged migrator, its controls, the report, and the proxy.

Subcommands: ``start`` (drive the proxy stage by stage, ``migrator.py``),
``status``, ``pause``, ``resume``, ``rollback``, ``finish`` (read or change the
state file, ``state.py``, also while a ``start`` runs elsewhere), ``report``
(``report.py``) and ``proxy`` (``proxy_command.py``, the proxy's own engineer's).

Exit status: 0 success; 1 a runtime problem (the proxy unreachable or refusing,
no state file, a command the migration's status does not allow, another
``start`` driving the same state); 2 bad usage (flags, URLs, gate expressions, a
plan that contradicts the recorded one); 3 the migration halted or was rolled
back (``start``). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
ADMIN_KEY_ENV = "LLMSTRUCT_PROXY_ADMIN_KEY"
API_KEY_ENV = "LLMSTRUCT_API_KEY"


class _Fail(Exception):
    def __init__(self, message: str, status: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.status = status


def add_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add ``migrate`` and its subcommands to an ``argparse`` subparsers object."""
    from llmstruct.migration import proxy_command

    parser = subcommands.add_parser(
        "migrate",
        help="move traffic from the FastAPI reference to the custom server, in stages",
        description="Split traffic with a proxy, move it stage by stage behind health "
        "gates, and compare the two servers.",
    )
    commands = parser.add_subparsers(dest="migrate_command", metavar="SUBCOMMAND")
    commands.required = True
    _add_start(commands)
    _add_status(commands)
    for name, text in (("pause", "hold the weight and judge no window until 'resume'"),
                       ("resume", "continue a paused or halted migration")):  # fmt: skip
        control = commands.add_parser(name, help=text, description=text)
        _state_flag(control)
        control.set_defaults(handler=_handler(_cmd_pause if name == "pause" else _cmd_resume))
    rollback = commands.add_parser(
        "rollback", help="weight 0 (everything to legacy) and stop the migration",
        description="Put weight 0 on the proxy and mark the migration rolled_back.",
    )  # fmt: skip
    _state_flag(rollback)
    _admin_flag(rollback)
    rollback.set_defaults(handler=_handler(_cmd_rollback))
    finish = commands.add_parser(
        "finish", help="weight 1 (everything to custom) and mark the migration done",
        description="Put weight 1 on the proxy and mark the migration done; refused "
        "unless the last stage's window passed or the last stage runs at its full weight "
        "(or with --force), and always after a rollback.",
    )  # fmt: skip
    _state_flag(finish)
    _admin_flag(finish)
    finish.add_argument("--force", action="store_true", help="finish before the last stage")
    finish.set_defaults(handler=_handler(_cmd_finish))
    _add_report(commands)
    proxy_command.add_parser(commands)
    return parser


# -- flags ----------------------------------------------------------------------------------------
def _state_flag(parser: argparse.ArgumentParser) -> None:
    from llmstruct.migration.state import DEFAULT_PATH

    parser.add_argument(
        "--state", type=Path, default=None, metavar="FILE",
        help=f"the migration's state file (default ./{DEFAULT_PATH})",
    )  # fmt: skip


def _admin_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--admin-key", help=f"the proxy's admin key (default ${ADMIN_KEY_ENV})")


def _add_start(commands: Any) -> None:
    from llmstruct.migration import migrator

    start = commands.add_parser(
        "start",
        help="drive the proxy's weight through the stages behind health gates",
        description="Move the proxy's weight stage by stage, each after a window in which "
        "every gate held; halve it when a gate fails. Restarted, it goes on from the "
        "recorded stage. Gates: error_rate (custom errors / custom requests; legacy's "
        "errors do not count), p95_ratio (custom p95 / legacy p95), rss_ratio (custom "
        "RSS / legacy RSS), each compared with <=, <, >= or >.",
    )
    start.add_argument("--proxy", type=_url, metavar="URL", help="the proxy (its admin API)")
    start.add_argument(
        "--stages", type=_stages, metavar="P,P,...",
        help="percentages of requests to custom, increasing, e.g. 10,50,100",
    )  # fmt: skip
    start.add_argument(
        "--gate", type=_gate, action="append", default=None, metavar="EXPR", dest="gates",
        help="a health gate such as error_rate<=0.01 (repeatable; all must hold)",
    )  # fmt: skip
    start.add_argument(
        "--window", type=_positive(float), metavar="SECONDS",
        help="length of the window each decision is made on (default 60)",
    )  # fmt: skip
    start.add_argument(
        "--min-samples", type=_positive(int), metavar="N",
        help="custom requests (and legacy ones for p95_ratio) a window needs for a gate "
        f"to be judged; fewer: the window is inconclusive (default {migrator.DEFAULT_MIN_SAMPLES})",
    )  # fmt: skip
    start.add_argument(
        "--max-retries", type=_non_negative_int, metavar="N",
        help="failed windows at one stage that are retried before halting at weight 0 "
        f"(default {migrator.DEFAULT_MAX_RETRIES})",
    )  # fmt: skip
    start.add_argument(
        "--max-inconclusive", type=_positive(int), metavar="N",
        help="inconclusive windows in a row before halting at weight 0 "
        f"(default {migrator.DEFAULT_MAX_INCONCLUSIVE})",
    )  # fmt: skip
    _state_flag(start)
    _admin_flag(start)
    start.add_argument("--api-key", help=f"the backends' API key, for RSS (default ${API_KEY_ENV})")
    start.set_defaults(handler=_handler(_cmd_start))


def _add_status(commands: Any) -> None:
    status = commands.add_parser(
        "status", help="where the migration is, and its last decisions",
        description="Print the migration's status, plan and recent history.",
    )  # fmt: skip
    _state_flag(status)
    status.add_argument("--json", action="store_true", help="print the whole state file")
    status.set_defaults(handler=_handler(_cmd_status))


def _add_report(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="latency, throughput, memory and errors per backend, and the factors",
        description="Per backend p50/p95/p99 latency (from the proxy's HDR histograms), "
        "req/s, RSS and error rate since the proxy started, and design sheet 03's "
        "improvement factors.",
    )  # fmt: skip
    report.add_argument("--proxy", type=_url, required=True, metavar="URL", help="the proxy")
    report.add_argument("--json", action="store_true", help="JSON instead of a table")
    _admin_flag(report)
    report.add_argument("--api-key", help=f"the backends' API key (default ${API_KEY_ENV})")
    report.set_defaults(handler=_handler(_cmd_report))


def _url(text: str) -> str:
    from llmstruct.migration.admin import check_url

    try:
        return check_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _stages(text: str) -> tuple[float, ...]:
    weights: list[float] = []
    for part in text.split(","):
        raw = part.strip().removesuffix("%").strip()
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a percentage") from None
        if not 0 < value <= 100:
            raise argparse.ArgumentTypeError(f"stage {part.strip()} is not in (0, 100]")
        if weights and value / 100 <= weights[-1]:
            raise argparse.ArgumentTypeError(f"stages must increase: {text!r}")
        weights.append(value / 100)
    if weights[-1] <= 0.01 and "%" not in text:
        # 0.1,0.5,1 reads as fractions (the proxy's --weight is one) but means
        # 0.1 %, 0.5 %, 1 %: ask for the % sign to be sure.
        raise argparse.ArgumentTypeError(
            f"stages are percentages (e.g. 10,50,100): write {text!r} with % signs if "
            "you mean that little"
        )
    return tuple(weights)


def _gate(text: str) -> Any:
    from llmstruct.migration.gates import GateError, parse_gate

    try:
        return parse_gate(text)
    except GateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
        return value

    return parse


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


# -- handlers -------------------------------------------------------------------------------------
def _handler(command: Any) -> Any:
    """``command`` with every expected failure turned into one line on stderr."""

    def run(args: argparse.Namespace) -> int:
        from llmstruct.migration.admin import ProxyError
        from llmstruct.migration.migrator import ControlError
        from llmstruct.migration.state import StateError

        try:
            status = command(args)
            sys.stdout.flush()  # a reader gone away shows here, not at the interpreter's exit
            return status
        except BrokenPipeError:
            # stdout was closed (``migrate status | head -4``): end quietly as a Unix tool
            # killed by SIGPIPE does, with the status a shell reports for one (128 + 13), as
            # ``llmstruct``'s main does. Not 0: a ``start`` cut off so has not finished its
            # migration. stdout goes to devnull so the interpreter's last flush stays quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
        except _Fail as exc:
            print(f"llmstruct: error: {exc}", file=sys.stderr)
            return exc.status
        except (ProxyError, StateError, ControlError) as exc:
            print(f"llmstruct: error: {exc}", file=sys.stderr)
            return EXIT_RUNTIME
        except OSError as exc:  # the state file's directory is unwritable, and the like
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"llmstruct: error: {where}{exc.strerror or exc}", file=sys.stderr)
            return EXIT_RUNTIME

    return run


def _state_path(args: argparse.Namespace) -> Path:
    from llmstruct.migration.state import DEFAULT_PATH

    return args.state if args.state is not None else DEFAULT_PATH


def _admin(url: str, args: argparse.Namespace) -> Any:
    from llmstruct.migration.admin import ProxyAdmin

    admin_key = getattr(args, "admin_key", None) or os.environ.get(ADMIN_KEY_ENV) or None
    try:
        return ProxyAdmin(url, admin_key=admin_key, api_key=_api_key(args))
    except ValueError as exc:  # a key that cannot be sent in a header
        raise _Fail(str(exc), EXIT_USAGE) from None


def _api_key(args: argparse.Namespace) -> str | None:
    return getattr(args, "api_key", None) or os.environ.get(API_KEY_ENV) or None


def _say(line: str) -> None:
    print(f"llmstruct: migrate: {line}", flush=True)


def _cmd_start(args: argparse.Namespace) -> int:
    from llmstruct.migration import state as statelib
    from llmstruct.migration.migrator import Migrator

    path = _state_path(args)
    proxy = _prepare(path, args)
    signal.signal(signal.SIGTERM, _interrupt)
    with _admin(proxy, args) as admin:
        config = admin.config()  # reachable, and the admin key (if any) is right
        mode = config.get("mode")
        if not isinstance(mode, str) or not mode:
            raise _Fail(f"{proxy} does not look like an llmstruct proxy (its /_proxy/config "
                        "has no mode)")  # fmt: skip
        if mode != "split":
            raise _Fail(f"the proxy at {proxy} runs in {mode} mode; a migration needs a "
                        "proxy in split mode (its weight moves the traffic)")  # fmt: skip
        if _gates_read_rss(path, args):
            _check_rss_readable(config, _api_key(args))
        if not path.exists():
            with statelib.transaction(path, create=statelib.new_state(proxy, _new_plan(args))):
                pass
        return Migrator(path, admin, say=_say).run()


def _gates_read_rss(path: Path, args: argparse.Namespace) -> bool:
    from llmstruct.migration import state as statelib
    from llmstruct.migration.gates import parse_gate

    gates = [str(g) for g in args.gates or ()] if not path.exists() else (
        statelib.load(path)["plan"]["gates"])  # fmt: skip
    return any(parse_gate(text).metric == "rss_ratio" for text in gates)


def _check_rss_readable(config: dict[str, Any], api_key: str | None) -> None:
    """Refuse to start when a backend's metrics refuse the migrator (401 or 403).

    The rss_ratio gate reads them at every window's end, and an unreadable gauge
    only makes the window inconclusive: without the backends' API key every window
    would be, until the migration halts, saying no more than "could not read".
    A backend that does not answer now is left to the gate: it may be back in time.
    """
    import httpx

    from llmstruct.migration.admin import TIMEOUT, get_metrics, metrics_url

    with httpx.Client(timeout=TIMEOUT) as client:
        for side in ("custom", "legacy"):
            url = config.get(side)
            if not isinstance(url, str):
                continue
            try:  # the same request as the gate's (admin.read_rss)
                refused = get_metrics(client, url, api_key).status_code
            except httpx.HTTPError:
                continue
            if refused in (401, 403):
                key = "was refused" if api_key else f"is needed (--api-key or ${API_KEY_ENV})"
                raise _Fail(
                    f"the rss_ratio gate cannot read the {side} server's memory: "
                    f"{metrics_url(url)} answered {refused}; the backends' API key {key}"
                )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _new_plan(args: argparse.Namespace) -> dict[str, Any]:
    from llmstruct.migration.migrator import Plan

    if args.stages is None or not args.gates:
        raise _Fail("a new migration needs --proxy, --stages and at least one --gate", EXIT_USAGE)
    plan = Plan(stages=args.stages, gates=tuple(args.gates),
                window_s=args.window if args.window is not None else 60.0)  # fmt: skip
    for name in ("min_samples", "max_retries", "max_inconclusive"):
        if getattr(args, name) is not None:
            plan = _replace(plan, **{name: getattr(args, name)})
    return plan.as_json()


def _replace(plan: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(plan, **changes)


def _prepare(path: Path, args: argparse.Namespace) -> str:
    """The proxy URL to drive: from the flags for a new migration, else from the state.

    Flags given for an existing migration must agree with its recorded plan: a
    restarted ``start`` goes on with the plan it began with.
    """
    from llmstruct.migration import state as statelib

    if not path.exists():
        if args.proxy is None or args.stages is None or not args.gates:
            raise _Fail(
                f"{path}: no migration yet; a new one needs --proxy, --stages and at "
                "least one --gate", EXIT_USAGE,
            )  # fmt: skip
        _new_plan(args)  # validates
        return args.proxy
    state = statelib.load(path)
    plan = state["plan"]
    given = {
        "--proxy": (args.proxy, state["proxy"]),
        "--stages": (list(args.stages) if args.stages else None, plan["stages"]),
        "--gate": ([str(g) for g in args.gates] if args.gates else None, plan["gates"]),
        "--window": (args.window, plan["window_s"]),
        "--min-samples": (args.min_samples, plan["min_samples"]),
        "--max-retries": (args.max_retries, plan["max_retries"]),
        "--max-inconclusive": (args.max_inconclusive, plan["max_inconclusive"]),
    }
    for flag, (value, recorded) in given.items():
        if value is not None and value != recorded:
            raise _Fail(
                f"{path} records a migration with {flag} {_shown(recorded)}, not "
                f"{_shown(value)}: leave the flag out to go on with it, or remove the "
                "file to start a new one", EXIT_USAGE,
            )  # fmt: skip
    if state["status"] in statelib.FINAL:
        raise _Fail(f"{path}: the migration is {state['status']}; remove the file to start a "
                    "new one")  # fmt: skip
    return state["proxy"]


def _shown(value: Any) -> str:
    if isinstance(value, list):
        if value and all(isinstance(v, float) for v in value):
            return ",".join(f"{v * 100:g}" for v in value)
        return " ".join(str(v) for v in value)
    return str(value)


def _cmd_status(args: argparse.Namespace) -> int:
    import orjson

    from llmstruct.migration import state as statelib

    path = _state_path(args)
    state = statelib.load(path)
    driver = statelib.DriverLock.holder(path)
    if args.json:
        state["driver_running"] = driver is not None
        sys.stdout.write(orjson.dumps(state, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(_status_text(state, driver))
    return 0


def _status_text(state: dict[str, Any], driver: int | None) -> str:
    from llmstruct.migration.migrator import percent

    plan = state["plan"]
    stages = plan["stages"]
    stage = state["stage"]
    where = "not started" if stage < 0 else f"stage {stage + 1}/{len(stages)}"
    lines = [
        f"migration: {state['status']}, {where}, weight {percent(state['weight'])} to custom",
        f"proxy: {state['proxy']}",
        f"plan: stages {', '.join(percent(w) for w in stages)}; gates "
        f"{', '.join(plan['gates'])}; window {plan['window_s']:g} s; min samples "
        f"{plan['min_samples']}; max retries {plan['max_retries']}; max inconclusive "
        f"{plan['max_inconclusive']}",
        f"driver: {'pid ' + str(driver) + ' running' if driver else 'none running'}",
        f"failed windows at this stage: {state['failures']}; inconclusive in a row: "
        f"{state['inconclusive']}",
    ]
    windows = [e for e in state["history"] if e["event"] == "window"]
    if windows:
        last = windows[-1]
        reasons = "; ".join(g["reason"] for g in last["gates"])
        lines.append(f"last window: {last['decision']} at {percent(last['weight'])} ({reasons})")
    lines.append("recent events:")
    for entry in state["history"][-8:]:
        reason = f" ({entry['reason']})" if entry.get("reason") else ""
        decision = f" {entry['decision']}" if entry.get("decision") else ""
        lines.append(f"  {_clock(entry['at'])} {entry['event']}{decision} at "
                     f"{percent(entry['weight'])}{reason}")  # fmt: skip
    return "\n".join(lines)


def _clock(at: float) -> str:
    import time

    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    except (OverflowError, OSError, ValueError):  # state.load checks 'at'; a local year 10000
        return f"{at:g}"


def _cmd_pause(args: argparse.Namespace) -> int:
    from llmstruct.migration.migrator import pause

    print(pause(_existing(args)))
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from llmstruct.migration import state as statelib
    from llmstruct.migration.migrator import resume

    path = _existing(args)
    print(resume(path))
    if statelib.DriverLock.holder(path) is None:
        print("no 'llmstruct migrate start' runs for this state: start one to drive it")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from llmstruct.migration.migrator import rollback

    print(rollback(_existing(args), lambda url: _admin(url, args)))
    return 0


def _cmd_finish(args: argparse.Namespace) -> int:
    from llmstruct.migration.migrator import finish

    print(finish(_existing(args), lambda url: _admin(url, args), force=args.force))
    return 0


def _existing(args: argparse.Namespace) -> Path:
    from llmstruct.migration import state as statelib

    path = _state_path(args)
    statelib.load(path)  # a clear error when there is none
    return path


def _cmd_report(args: argparse.Namespace) -> int:
    import orjson

    from llmstruct.migration.report import collect, format_table

    with _admin(args.proxy, args) as admin:
        report = collect(admin)
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(format_table(report))
    return 0
