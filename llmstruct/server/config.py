"""Server settings: defaults < ``[server]`` in ``ROOT/llmstruct.toml`` < ``LLMSTRUCT_*`` < flags.

Every setting has one name used everywhere: ``port`` is ``port = 8000`` in the
``[server]`` table, ``LLMSTRUCT_PORT=8000`` in the environment and ``--port 8000``
on the command line (where a flag exists). Limits (``limits.py``) live in a
``[server.limits]`` table and in ``LLMSTRUCT_<LIMIT>`` variables
(``LLMSTRUCT_MAX_BODY_BYTES``, ``LLMSTRUCT_HEADER_TIMEOUT``, ...).

A bad value anywhere -- an unknown key, a wrong type, a port out of range, no
auth on a public address -- is a ``ConfigError`` whose message names the source
and the setting: ``serve`` prints it as one line and exits 2.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llmstruct.server.limits import DEFAULT_LIMITS, Limits, check_limit, limit_names

# The same file as llmstruct.config's [scan] table. Not imported from there: that
# module pulls in the engine (and pathspec), which a server worker does not need.
CONFIG_NAME = "llmstruct.toml"


class ConfigError(ValueError):
    """A bad setting: the message names its source and the setting, in one line."""


__all__ = ["ServerConfig", "ConfigError", "load_server_config", "HTTP_CHOICES", "LOOP_CHOICES"]

HTTP_CHOICES = ("auto", "h11", "httptools")
LOOP_CHOICES = ("auto", "asyncio", "uvloop")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"  # loopback unless asked: the service is local by default
    port: int = 8000  # the FastAPI service's port (design sheet 02)
    workers: int = 1
    root: Path = Path(".")
    http: str = "auto"  # httptools when installed, else h11
    loop: str = "auto"  # uvloop when installed, else asyncio
    api_key: str | None = None
    api_key_file: str | None = None
    auth: bool = True  # False: no API key at all (loopback hosts only)
    cors_origins: tuple[str, ...] = ()
    rate_limit: float = 100.0  # requests per second per client; 0 disables
    rate_burst: int = 200
    # Peers whose X-Forwarded-For names the client (for the rate limit), as uvicorn's
    # --forwarded-allow-ips defaults to loopback: a proxy on the same host.
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    log_level: str = "info"
    access_log: bool = True
    limits: Limits = field(default=DEFAULT_LIMITS)


# setting -> (kind, check) ; kinds: str, int, float, bool, list
_SETTINGS: dict[str, str] = {
    "host": "str",
    "port": "int",
    "workers": "int",
    "http": "str",
    "loop": "str",
    "api_key": "str",
    "api_key_file": "str",
    "auth": "bool",
    "cors_origins": "list",
    "rate_limit": "float",
    "rate_burst": "int",
    "forwarded_allow_ips": "list",
    "log_level": "str",
    "access_log": "bool",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def load_server_config(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> ServerConfig:
    """Merge the four sources; ``flags`` holds only the flags given (None values are ignored)."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    root = Path(flags.get("root") or environ.get("LLMSTRUCT_ROOT") or root or ".")
    if not root.is_dir():
        raise ConfigError(
            f"--root {root}: {'not a directory' if root.exists() else 'no such directory'}"
        )
    values: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    _from_file(root / CONFIG_NAME, values, limits)
    _from_env(environ, values, limits)
    for name, value in flags.items():
        if name != "root":
            values[name] = _checked(f"--{name.replace('_', '-')}", name, value)
    config = ServerConfig(root=root)
    try:
        config = replace(config, limits=DEFAULT_LIMITS.replace(**limits), **values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    _validate(config)
    return config


def _from_file(path: Path, values: dict[str, Any], limits: dict[str, Any]) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    import tomllib  # only with a file to read: 0.6 MiB a worker without one need not carry

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    table = document.get("server", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [server] must be a table")
    for key, value in table.items():
        if key == "limits":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [server.limits] must be a table")
            for name, limit in value.items():
                limits[name] = _checked_limit(f"{path}: server.limits.{name}", name, limit)
        elif key in _SETTINGS:
            values[key] = _checked(f"{path}: server.{key}", key, value)
        else:
            known = ", ".join(sorted([*_SETTINGS, "limits"]))
            raise ConfigError(f"{path}: unknown key server.{key} (known: {known})")


def _from_env(environ: Mapping[str, str], values: dict[str, Any], limits: dict[str, Any]) -> None:
    for key in _SETTINGS:
        raw = environ.get(f"LLMSTRUCT_{key.upper()}")
        if raw is not None:
            values[key] = _checked(f"LLMSTRUCT_{key.upper()}", key, _parse(key, raw))
    for name in limit_names():
        raw = environ.get(f"LLMSTRUCT_{name.upper()}")
        if raw is not None:
            try:
                number = float(raw)
            except ValueError:
                raise ConfigError(f"LLMSTRUCT_{name.upper()}: not a number: {raw!r}") from None
            limits[name] = _checked_limit(f"LLMSTRUCT_{name.upper()}", name, number)


def _parse(key: str, raw: str) -> Any:
    kind = _SETTINGS[key]
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        return raw  # _checked reports it with the setting's name
    if kind == "bool":
        low = raw.strip().lower()
        return True if low in _TRUE else False if low in _FALSE else raw
    if kind == "list":
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _checked(source: str, key: str, value: Any) -> Any:
    kind = _SETTINGS[key]
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "list": isinstance(value, list | tuple) and all(isinstance(v, str) for v in value),
    }[kind]
    if not ok:
        article = {"int": "an integer", "float": "a number", "bool": "true or false",
                   "list": "a list of strings", "str": "a string"}[kind]  # fmt: skip
        raise ConfigError(f"{source}: must be {article}, got {value!r}")
    return tuple(value) if kind == "list" else float(value) if kind == "float" else value


def _checked_limit(source: str, name: str, value: Any) -> Any:
    try:
        return check_limit(name, value)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _validate(config: ServerConfig) -> None:
    from llmstruct.netaddr import is_loopback

    if not config.host:
        raise ConfigError("host: must not be empty")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port: must be 0..65535, got {config.port}")
    if not 1 <= config.workers <= 256:
        raise ConfigError(f"workers: must be 1..256, got {config.workers}")
    if config.http not in HTTP_CHOICES:
        raise ConfigError(f"http: must be one of {', '.join(HTTP_CHOICES)}, got {config.http!r}")
    if config.loop not in LOOP_CHOICES:
        raise ConfigError(f"loop: must be one of {', '.join(LOOP_CHOICES)}, got {config.loop!r}")
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level: must be one of {', '.join(LOG_LEVELS)}")
    if config.rate_limit < 0 or config.rate_burst < 1:
        raise ConfigError("rate_limit must be >= 0 (0: off) and rate_burst >= 1")
    if config.api_key is not None and len(config.api_key) < 16:
        raise ConfigError("api_key: too short to be a secret (16 characters at least)")
    if not config.auth and not is_loopback(config.host):
        raise ConfigError(
            f"auth = false is allowed only on a loopback host, not {config.host!r} "
            "(set an API key, or bind 127.0.0.1)"
        )
    for name, module in (("http", "httptools"), ("loop", "uvloop")):
        if getattr(config, name) == module:
            try:
                __import__(module)
            except ImportError:
                raise ConfigError(f"{name} = {module}, but {module} is not installed") from None
