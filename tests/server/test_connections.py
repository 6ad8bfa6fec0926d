"""Connection behaviour over real loopback sockets, on both backends.

Pipelining (in order, and a refusal in the middle), half-closed clients, clients
that reset mid-stream, streamed request and response bodies.
"""

from __future__ import annotations

import socket
import struct
import threading

from tests.server.helpers import HANG, Reader, connect, get, wait_for


def test_100_pipelined_requests_with_an_invalid_one_in_the_middle(serve):
    server = serve()
    good = [get(f"/items/{1 + i % 2}") for i in range(100)]
    bad = b"GET /health HTTP/1.1\r\nHost: a\r\nX-Bad : folded\r\n\r\n"
    requests = good[:50] + [bad] + good[50:99]
    with connect(server.port) as sock:
        sock.sendall(b"".join(requests))
        reader = Reader(sock)
        for index in range(50):
            response = reader.response()
            assert response.status == 200, index
            assert response.body == b'{"id":"%d","name":"%s"}' % (
                1 + index % 2,
                b"one" if index % 2 == 0 else b"two",
            )
        refusal = reader.response()
        assert refusal.status == 400 and refusal.header("connection") == "close"
        assert reader.closed()  # the 49 after the invalid one are never answered


def test_100_pipelined_requests_are_all_answered_in_order(serve):
    server = serve()
    paths = ["/slow?s=0.01" if i % 10 == 0 else f"/items/{1 + i % 2}" for i in range(100)]
    with connect(server.port) as sock:
        sock.sendall(b"".join(get(path) for path in paths))
        reader = Reader(sock)
        for path in paths:
            response = reader.response()
            assert response.status == 200
            assert (response.body == b"slow done") == path.startswith("/slow")


def test_half_closed_client_still_gets_its_response(serve):
    server = serve()
    with connect(server.port) as sock:
        sock.sendall(get("/slow?s=0.1") + get("/health"))
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        assert reader.response().body == b"slow done"
        assert reader.response().status == 200
        assert reader.closed()


def test_half_closed_client_mid_body_gets_400(serve):
    server = serve()
    with connect(server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234")
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        assert reader.response().status == 400
        assert reader.closed()


def _reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_client_reset_mid_stream_frees_the_connection(serve):
    server = serve()
    sock = connect(server.port)
    sock.sendall(get("/stream?n=100000&size=65536"))
    assert sock.recv(65536)  # the stream has started
    _reset(sock)
    wait_for(lambda: server.server.open_connections == 0, "the reset connection to be dropped")
    with connect(server.port) as other:
        other.sendall(get("/health"))
        assert Reader(other).response().status == 200


def test_client_reset_mid_request_body_frees_the_connection(serve):
    server = serve()
    sock = connect(server.port)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
    wait_for(lambda: server.server.open_connections == 1, "the connection to be accepted")
    _reset(sock)
    wait_for(lambda: server.server.open_connections == 0, "the reset connection to be dropped")


def test_client_reset_while_handler_runs_does_not_disturb_others(serve):
    server = serve()
    sock = connect(server.port)
    sock.sendall(get("/slow?s=0.2"))
    wait_for(lambda: server.server.open_connections == 1, "the connection to be accepted")
    _reset(sock)
    with connect(server.port) as other:
        other.sendall(get("/slow?s=0.3"))
        assert Reader(other).response().body == b"slow done"
    wait_for(lambda: server.server.open_connections == 0, "all connections to close")


def test_streamed_response_arrives_whole(serve):
    server = serve()
    with connect(server.port) as sock:
        sock.sendall(get("/stream?n=200&size=1000"))
        response = Reader(sock).response()
        assert response.header("transfer-encoding") == "chunked"
        assert response.body == b"".join((b"%d" % (i % 10)) * 1000 for i in range(200))


def test_head_request_gets_headers_without_body(serve):
    server = serve()
    with connect(server.port) as sock:
        sock.sendall(b"HEAD /big?size=5000 HTTP/1.1\r\nHost: a\r\n\r\n" + get("/health"))
        reader = Reader(sock)
        head = reader.response(head_only=True)
        assert head.status == 200 and head.header("content-length") == "5000"
        assert reader.response().body == b'{"status":"ok"}'


def test_large_response_is_delivered_whole(serve):
    server = serve()
    with connect(server.port) as sock:
        sock.sendall(get("/big?size=3000000"))
        assert Reader(sock).response().body == b"b" * 3_000_000


def test_large_stream_to_a_slow_reader_is_flow_controlled_and_complete(serve):
    """A small receive window makes the server's transport pause and resume many times."""
    server = serve()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.settimeout(HANG)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(get("/stream?n=300&size=65536"))  # ~19 MiB
        response = Reader(sock).response()
    assert len(response.body) == 300 * 65536
    assert response.body[-65536:] == b"9" * 65536


def test_shutdown_closes_idle_connections_and_finishes_busy_ones(serve):
    server = serve()
    state = server.server.state
    with connect(server.port) as idle, connect(server.port) as busy:
        idle.sendall(get("/health"))
        assert Reader(idle).response().status == 200  # now an idle keep-alive connection
        busy.sendall(get("/slow?s=0.5"))
        # The busy connection itself must hold a request: the idle one may still be
        # finishing its response, and a request the server has not parsed yet is
        # rightly dropped by a graceful stop.
        client = busy.getsockname()

        def busy_in_flight() -> bool:
            return any(
                getattr(c, "_cycles", None)
                and c.transport.get_extra_info("peername")[:2] == client[:2]
                for c in list(state.connections)
            )

        wait_for(busy_in_flight, "the slow request to be in flight")
        stopper = threading.Thread(target=server.stop, kwargs={"grace": 5.0})
        stopper.start()
        assert Reader(idle).closed()  # closed at once, with nothing sent
        response = Reader(busy).response()
        assert response.body == b"slow done" and response.header("connection") == "close"
        busy.close()  # as a client does after Connection: close
        stopper.join(HANG)
        assert not stopper.is_alive()
