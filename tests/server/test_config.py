"""Server configuration precedence and checks, API key storage, systemd notification."""

from __future__ import annotations

import os
import socket
import stat
import sys

import pytest

from llmstruct.netaddr import is_loopback
from llmstruct.server.auth import APIKeyFileError, load_or_create_key
from llmstruct.server.config import ConfigError, load_server_config
from llmstruct.server.limits import DEFAULT_LIMITS, Limits
from llmstruct.server.serve import notify


def write_config(root, text: str) -> None:
    (root / "llmstruct.toml").write_text(text)


def test_defaults_are_loopback_port_8000_one_worker(tmp_path):
    config = load_server_config({}, {}, tmp_path)
    assert (config.host, config.port, config.workers, config.auth) == ("127.0.0.1", 8000, 1, True)
    assert config.limits == DEFAULT_LIMITS


def test_file_then_environment_then_flags(tmp_path):
    write_config(tmp_path, '[server]\nport = 9000\nworkers = 3\nhost = "127.0.0.2"\n')
    env = {"LLMSTRUCT_PORT": "9100", "LLMSTRUCT_WORKERS": "4"}
    config = load_server_config({"port": 9200}, env, tmp_path)
    assert config.port == 9200  # flag beats environment beats file
    assert config.workers == 4  # environment beats file
    assert config.host == "127.0.0.2"  # file beats default


def test_limits_from_file_and_environment(tmp_path):
    write_config(tmp_path, "[server.limits]\nmax_body_bytes = 2048\nheader_timeout = 3\n")
    env = {"LLMSTRUCT_HEADER_TIMEOUT": "2.5"}
    limits = load_server_config({}, env, tmp_path).limits
    assert limits.max_body_bytes == 2048 and isinstance(limits.max_body_bytes, int)
    assert limits.header_timeout == 2.5


def test_environment_lists_and_booleans(tmp_path):
    env = {"LLMSTRUCT_CORS_ORIGINS": "https://a, https://b", "LLMSTRUCT_ACCESS_LOG": "off"}
    config = load_server_config({}, env, tmp_path)
    assert config.cors_origins == ("https://a", "https://b") and config.access_log is False


@pytest.mark.parametrize(
    "source, fragment",
    [
        ({"env": {"LLMSTRUCT_PORT": "x"}}, "LLMSTRUCT_PORT: must be an integer"),
        ({"env": {"LLMSTRUCT_PORT": "70000"}}, "port: must be 0..65535"),
        ({"env": {"LLMSTRUCT_HTTP": "h2"}}, "http: must be one of"),
        ({"env": {"LLMSTRUCT_MAX_BODY_BYTES": "-5"}}, "max_body_bytes must be positive"),
        ({"env": {"LLMSTRUCT_MAX_BODY_BYTES": "1.5"}}, "whole number"),
        ({"env": {"LLMSTRUCT_KEEPALIVE_TIMEOUT": "nan"}}, "finite number"),
        ({"env": {"LLMSTRUCT_KEEPALIVE_TIMEOUT": "inf"}}, "finite number"),
        ({"env": {"LLMSTRUCT_AUTH": "maybe"}}, "LLMSTRUCT_AUTH: must be true or false"),
        ({"env": {"LLMSTRUCT_API_KEY": "short"}}, "too short"),
        ({"file": "[server]\nport = '80'\n"}, "server.port: must be an integer"),
        ({"file": "[server]\nlimits = 3\n"}, "[server.limits] must be a table"),
        ({"file": "[server.limits]\nmax_bytes = 3\n"}, "unknown limit"),
        ({"file": "[server\n"}, "invalid TOML"),
        ({"flags": {"auth": False, "host": "0.0.0.0"}}, "only on a loopback host"),
        ({"flags": {"workers": 0}}, "workers: must be 1..256"),
    ],
)
def test_bad_values_are_one_clear_error(tmp_path, source, fragment):
    if "file" in source:
        write_config(tmp_path, source["file"])
    with pytest.raises(ConfigError) as caught:
        load_server_config(source.get("flags", {}), source.get("env", {}), tmp_path)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_limit_beyond_any_real_one_is_held_as_no_limit(tmp_path):
    # "Unlimited" as a huge number: the compiled protocol holds it in a C integer, and
    # a value it could not hold used to drop every connection (a review found it).
    config = load_server_config({}, {"LLMSTRUCT_MAX_KEEPALIVE_REQUESTS": "1e19"}, tmp_path)
    assert config.limits.max_keepalive_requests == sys.maxsize


def test_limits_replace_checks_names_and_values():
    with pytest.raises(ValueError, match="unknown limit"):
        Limits().replace(nope=1)
    with pytest.raises(ValueError, match="positive"):
        Limits().replace(send_timeout=0)


# -- API key storage -------------------------------------------------------------------------------
def test_key_is_generated_owner_only_and_reused(tmp_path):
    path = tmp_path / "conf" / "llmstruct" / "api_key"
    key, created = load_or_create_key(path)
    assert created and len(key) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(path) == (key, False)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o666])
def test_key_file_open_to_others_is_refused(tmp_path, mode):
    path = tmp_path / "api_key"
    path.write_text("k" * 40)
    path.chmod(mode)
    with pytest.raises(APIKeyFileError, match="chmod 600"):
        load_or_create_key(path)


def test_empty_key_file_is_refused(tmp_path):
    path = tmp_path / "api_key"
    path.write_text("\n")
    path.chmod(0o600)
    with pytest.raises(APIKeyFileError, match="no usable key"):
        load_or_create_key(path)


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.1", False)],
)  # fmt: skip
def test_loopback_detection(host, loopback):
    assert is_loopback(host) is loopback


# -- sd_notify -------------------------------------------------------------------------------------
def test_notify_sends_to_a_path_and_to_an_abstract_socket(tmp_path, monkeypatch):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(tmp_path / "n.sock"))
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n.sock"))
        assert notify("READY=1")
        assert receiver.recv(100) == b"READY=1"
    name = f"llmstruct-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("STOPPING=1")
        assert receiver.recv(100) == b"STOPPING=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not notify("READY=1")
