"""Where the server's API key comes from, and who may run without one.

With no key configured (``LLMSTRUCT_API_KEY``, ``api_key`` in ``[server]``), the
server uses the key stored in a file, generating one on first start: 32 random
bytes (``secrets.token_urlsafe``), written owner-only (mode 0600, in a 0700
directory, created with ``O_EXCL`` so it is never briefly readable by others).
An existing key file that group or others can read is refused, as OpenSSH
refuses a private key with loose permissions. The path is printed; the key
itself never is (nor logged).

The file is ``api_key_file`` if configured, else ``$STATE_DIRECTORY/api_key``
(systemd's ``StateDirectory=``), else ``$XDG_CONFIG_HOME/llmstruct/api_key``
(``~/.config/llmstruct/api_key``).

Running without auth is possible only on a loopback address: every local user
can reach it anyway, and nobody else can.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from llmstruct.netaddr import is_loopback  # the rule is shared with the FastAPI server

__all__ = ["APIKeyFileError", "default_key_path", "is_loopback", "load_or_create_key"]


class APIKeyFileError(Exception):
    """The key file cannot be used; the message says why and what to do."""


def default_key_path() -> Path:
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0]) / "api_key"
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "llmstruct" / "api_key"


def load_or_create_key(path: Path) -> tuple[str, bool]:
    """``(key, created)``: the key stored at ``path``, made if missing."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return _create(path), True
    except OSError as exc:
        raise APIKeyFileError(f"cannot read the API key file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise APIKeyFileError(f"API key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise APIKeyFileError(
            f"API key file {path} is readable by other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
        )
    if info.st_uid != os.geteuid():
        raise APIKeyFileError(f"API key file {path} belongs to another user")
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise APIKeyFileError(f"cannot read the API key file {path}: {exc}") from None
    if len(key) < 16:
        raise APIKeyFileError(f"API key file {path} holds no usable key (16 characters at least)")
    return key, False


def _create(path: Path) -> str:
    import secrets  # with hashlib and random, 0.9 MiB: only the first start of all needs it

    key = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # another worker or process made it first: use theirs
        return load_or_create_key(path)[0]
    except OSError as exc:
        raise APIKeyFileError(f"cannot create the API key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key
