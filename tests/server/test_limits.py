"""Every limit of ``Limits`` against a started server, over loopback sockets, on both backends.

Timeouts are configured small (0.2 s) and the assertions are on behaviour: a
status, a closed connection, a connection count. Waits are bounded by HANG only
so that a broken server fails instead of hanging.
"""

from __future__ import annotations

import json
import select
import socket

import pytest

from tests.server.helpers import HANG, Reader, connect, exchange, get, wait_for

SHORT = 0.2


# -- request head ----------------------------------------------------------------------------------
def test_head_over_16_kib_is_431_and_closed(serve):
    server = serve()
    request = get("/health", "X-Big: " + "a" * (17 * 1024) + "\r\n")
    (response,), closed = exchange(server.port, request)
    assert response.status == 431 and closed


def test_head_over_16_kib_in_many_headers_is_431(serve):
    server = serve()
    headers = "".join(f"X-H{i}: {'v' * 200}\r\n" for i in range(90))
    (response,), closed = exchange(server.port, get("/health", headers))
    assert response.status == 431 and closed


def test_incomplete_head_growing_past_the_limit_is_431(serve):
    server = serve()
    with connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\nX-Big: ")
        sent, response = 0, None
        reader = Reader(sock)
        try:
            while sent < 64 * 1024:  # never terminated: only the limit ends it
                sock.sendall(b"a" * 1024)
                sent += 1024
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = reader.response()
    assert response.status == 431


def test_head_just_under_the_limit_is_served(serve):
    server = serve()
    request = get("/health", "X-Big: " + "a" * (15 * 1024) + "\r\n")
    (response,), closed = exchange(server.port, request)
    assert response.status == 200 and not closed


def test_too_many_header_lines_is_431(serve):
    server = serve(max_header_count=20)
    headers = "".join(f"X-H{i}: v\r\n" for i in range(25))
    (response,), closed = exchange(server.port, get("/health", headers))
    assert response.status == 431 and closed


# -- request body ----------------------------------------------------------------------------------
def test_declared_body_over_the_cap_is_413_before_any_body_byte(serve):
    server = serve(max_body_bytes=1000)
    with connect(server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n")
        reader = Reader(sock)
        response = reader.response()  # no body byte was sent: the answer cannot wait for one
        assert response.status == 413
        assert json.loads(response.body) == {"detail": "Request body too large"}
        assert reader.closed()


def test_chunked_body_growing_over_the_cap_is_413_and_closed(serve):
    server = serve(max_body_bytes=1000)
    with connect(server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"258\r\n" + b"x" * 600 + b"\r\n" + b"258\r\n" + b"x" * 600 + b"\r\n")
        reader = Reader(sock)
        assert reader.response().status == 413
        assert reader.closed()


def test_body_at_the_cap_is_served(serve):
    server = serve(max_body_bytes=1000)
    body = b"y" * 1000
    request = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + body
    (response,), closed = exchange(server.port, request)
    assert response.status == 200 and response.body == body and not closed


def test_large_body_is_streamed_to_the_handler_with_flow_control(serve):
    server = serve(max_body_bytes=8 * 1024 * 1024, body_buffer_bytes=16 * 1024)
    body = bytes(range(256)) * (4 * 4096)  # 4 MiB
    request = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)
    (response,), _ = exchange(server.port, request + body)
    assert response.status == 200 and response.body == body


# -- read timeouts ---------------------------------------------------------------------------------
def test_partial_head_past_the_header_timeout_is_408_and_closed(serve):
    server = serve(header_timeout=SHORT)
    with connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\n")  # never finished
        reader = Reader(sock)
        response = reader.response()
        assert response.status == 408
        assert reader.closed()


def test_slowloris_trickle_cannot_outlast_the_header_timeout(serve):
    server = serve(header_timeout=SHORT)
    with connect(server.port) as sock:
        reader = Reader(sock)
        for byte in b"GET /health HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"a" * 1000:
            if select.select([sock], [], [], 0.02)[0]:
                break  # the server answered: stop trickling
            sock.sendall(bytes([byte]))
        assert reader.response().status == 408


def test_silent_new_connection_is_closed_after_the_header_timeout(serve):
    server = serve(header_timeout=SHORT)
    with connect(server.port) as sock:
        assert Reader(sock).closed()  # closed with nothing written


def test_slow_body_is_408_and_closed(serve):
    server = serve(body_timeout=SHORT)
    with connect(server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
        reader = Reader(sock)
        response = reader.response()
        assert response.status == 408
        assert json.loads(response.body) == {"detail": "Request body timeout"}
        assert reader.closed()


def test_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(serve):
    server = serve(keepalive_timeout=SHORT)
    with connect(server.port) as sock:
        sock.sendall(get("/health"))
        reader = Reader(sock)
        response = reader.response()
        assert response.status == 200 and response.header("connection") is None
        assert reader.closed()


def test_keep_alive_connection_serves_many_requests_then_closes_at_the_cap(serve):
    server = serve(max_keepalive_requests=5)
    with connect(server.port) as sock:
        reader = Reader(sock)
        for index in range(5):
            sock.sendall(get("/health"))
            response = reader.response()
            assert response.status == 200
            assert (response.header("connection") == "close") == (index == 4)
        assert reader.closed()


# -- connections -----------------------------------------------------------------------------------
def test_connections_over_the_cap_wait_and_are_served_when_a_slot_frees(serve):
    server = serve(max_connections=2)
    first, second = connect(server.port), connect(server.port)
    try:
        for sock in (first, second):  # both slots busy with live keep-alive connections
            sock.sendall(get("/health"))
            assert Reader(sock).response().status == 200
        with connect(server.port) as third:  # the kernel's listen queue holds it
            third.sendall(get("/health"))
            third.settimeout(0.5)
            with pytest.raises(TimeoutError):
                third.recv(1)  # not accepted while two connections are open
            first.close()
            third.settimeout(HANG)
            response = Reader(third).response()
            assert response.status == 200
    finally:
        first.close()
        second.close()


def test_in_flight_request_is_not_dropped_at_the_connection_cap(serve):
    server = serve(max_connections=1)
    with connect(server.port) as busy:
        busy.sendall(get("/slow?s=0.3"))
        with connect(server.port) as waiting:
            waiting.sendall(get("/health", "Connection: close\r\n"))
            assert Reader(busy).response().body == b"slow done"
            busy.close()
            assert Reader(waiting).response().status == 200


def test_client_that_never_reads_is_aborted_after_the_send_timeout(serve):
    server = serve(send_timeout=SHORT)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(HANG)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(get("/stream?n=100000&size=65536"))  # ~6 GB if it were all sent
        wait_for(
            lambda: server.server.open_connections == 0, "the stalled connection to be aborted"
        )
    with connect(server.port) as other:  # and the server is fine
        other.sendall(get("/health"))
        assert Reader(other).response().status == 200
