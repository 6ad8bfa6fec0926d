"""``llmstruct serve`` as a real process: workers on one port, SIGTERM, systemd readiness.

The process is ``tests/server/serve_app.py`` (the serve command plus a slow test
route), on 127.0.0.1 port 0, with ``NOTIFY_SOCKET`` pointing at a datagram
socket of the test and its API key file in the test's temporary directory.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import struct
from pathlib import Path

import pytest

from tests.server.helpers import HANG, Reader, Served, connect, wait_for


def http_get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    with connect(port) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n".encode()
        )
        response = Reader(sock).response()
        return response.status, response.body


def refused(port: int) -> bool:
    """No listener takes a connection: refused, or reset by a listening socket that
    closed between our SYN and its accept (a race, not a served connection)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    return False


# -- start, readiness, stop ------------------------------------------------------------------------
def test_single_worker_notifies_ready_serves_and_exits_0_on_sigterm(served, tmp_path):
    server = served().wait_serving()
    assert server.message() == "READY=1"
    assert http_get(server.port, "/api/v1/system/health")[0] == 200
    key_file = tmp_path / "xdg" / "llmstruct" / "api_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert any(str(key_file) in line for line in server.stderr)
    assert http_get(server.port, "/api/v1/system/metrics")[0] == 401
    assert http_get(server.port, "/api/v1/system/metrics", f"X-API-Key: {server.key}\r\n")[0] == 200
    assert server.terminate() == 0
    assert server.message() == "STOPPING=1"
    assert server.key not in "".join(server.stderr)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_accepting_at_once_and_finishes_in_flight_requests(served, tmp_path, workers):
    server = served("--workers", workers).wait_serving()
    assert server.message() == "READY=1"
    marker = tmp_path / "slow-started"
    with connect(server.port) as sock:
        sock.sendall(f"GET /test/slow?s=1.5&mark={marker} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        wait_for(marker.exists, "the slow request to start")
        server.process.send_signal(signal.SIGTERM)
        assert server.message() == "STOPPING=1"
        wait_for(lambda: refused(server.port), "the listening socket to close")
        response = Reader(sock).response()
        assert response.status == 200 and response.body.startswith(b"slow done")
        assert response.header("connection") == "close"
    assert server.process.wait(HANG) == 0


def test_workers_share_one_port(served):
    server = served("--workers", "2").wait_serving()
    pids = {http_get(server.port, "/test/pid")[1] for _ in range(40)}
    assert len(pids) == 2
    assert all(int(pid) != server.process.pid for pid in pids)
    assert server.terminate() == 0


def test_a_dead_worker_is_replaced(served):
    server = served("--workers", "2").wait_serving()
    pids = {http_get(server.port, "/test/pid")[1] for _ in range(40)}
    killed = pids.pop()
    os.kill(int(killed), signal.SIGKILL)
    seen: set[bytes] = set()

    def replaced() -> bool:
        try:
            seen.add(http_get(server.port, "/test/pid")[1])
        except (EOFError, ConnectionError):
            # Connections the kernel had queued on the killed worker's SO_REUSEPORT
            # socket are reset with it: a property of SO_REUSEPORT, not a bug here.
            return False
        return bool(seen - pids - {killed})

    wait_for(replaced, "a new worker to serve")
    assert server.terminate() == 0


def test_workers_stop_when_the_supervisor_is_killed(served):
    server = served("--workers", "2").wait_serving()
    workers = {int(http_get(server.port, "/test/pid")[1]) for _ in range(40)}
    assert len(workers) == 2
    server.process.kill()  # SIGKILL: no chance to stop its workers itself
    server.process.wait(HANG)

    def all_gone() -> bool:  # exited (a zombie not yet reaped by init counts as exited)
        for pid in workers:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if "\nState:\tZ" not in status:
                return False
        return True

    wait_for(all_gone, "the orphaned workers to stop")


def test_websocket_is_closed_with_1001_on_sigterm(served):
    server = served().wait_serving()
    with connect(server.port) as sock:
        sock.sendall(
            b"GET /api/v1/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + f"X-API-Key: {server.key}\r\n\r\n".encode()
        )
        reader = Reader(sock)
        assert reader.response(head_only=True).status == 101
        server.process.send_signal(signal.SIGTERM)
        header = reader._take(2)
        assert header[0] & 0x0F == 0x8  # a Close frame
        payload = reader._take(header[1] & 0x7F)
        assert struct.unpack("!H", payload[:2])[0] == 1001
    assert server.process.wait(HANG) == 0


def test_websocket_upgrade_needs_the_key(served):
    server = served().wait_serving()
    with connect(server.port) as sock:
        sock.sendall(
            b"GET /api/v1/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert Reader(sock).response().status == 401
    assert server.terminate() == 0


def test_no_auth_is_allowed_on_loopback(served):
    server = served("--no-auth").wait_serving()
    assert http_get(server.port, "/api/v1/system/metrics")[0] == 200
    assert any("WITHOUT authentication" in line for line in server.stderr)
    assert server.terminate() == 0


# -- start-up errors: one line, exit 2 -------------------------------------------------------------
def assert_usage_error(server: Served, fragment: str) -> None:
    assert server.process.wait(HANG) == 2
    server._reader.join(HANG)
    lines = [line for line in server.stderr if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("llmstruct: error: "), lines
    assert fragment in lines[0]


def test_no_auth_on_a_public_address_is_refused(served):
    assert_usage_error(served("--no-auth", "--host", "0.0.0.0"), "loopback")


def test_bad_environment_value_is_one_line_and_exit_2(served):
    assert_usage_error(served(env={"LLMSTRUCT_PORT": "eighty"}), "LLMSTRUCT_PORT")


def test_bad_limit_in_the_config_file_is_one_line_and_exit_2(served, tmp_path):
    (tmp_path / "llmstruct.toml").write_text("[server.limits]\nheader_timeout = -1\n")
    assert_usage_error(served(), "header_timeout")


def test_unknown_config_key_is_one_line_and_exit_2(served, tmp_path):
    (tmp_path / "llmstruct.toml").write_text("[server]\nprot = 80\n")
    assert_usage_error(served(), "server.prot")


def test_key_file_readable_by_others_is_refused(served, tmp_path):
    key_file = tmp_path / "xdg" / "llmstruct" / "api_key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("x" * 40)
    key_file.chmod(0o644)
    assert_usage_error(served(), "chmod 600")


def test_configured_key_file_is_used_and_no_other_file_is_made(served, tmp_path):
    key = "configured-key-0123456789"
    (tmp_path / "given_key").write_text(key)
    (tmp_path / "given_key").chmod(0o600)
    server = served(env={"LLMSTRUCT_API_KEY_FILE": str(tmp_path / "given_key")}).wait_serving()
    assert (
        http_get(server.port, "/api/v1/system/metrics", f"Authorization: Bearer {key}\r\n")[0]
        == 200
    )
    assert not (tmp_path / "xdg").exists()
    assert server.terminate() == 0
