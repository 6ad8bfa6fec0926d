"""The middleware chain over a started server: auth, request id, access log, CORS, gzip,
rate limit, metrics, and the system endpoints (both backends)."""

from __future__ import annotations

import gzip
import io
import json
import re

import pytest

from llmstruct.server.app import JSONResponse, StreamingResponse
from llmstruct.server.middleware import LogSink, redact_query
from llmstruct.server.system import build_app
from tests.server.helpers import Reader, connect, wait_for

KEY = "k" * 20 + "-secret-key-value"


def request(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET",
            body: bytes = b""):  # fmt: skip
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    with connect(port) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return Reader(sock).response(head_only=method == "HEAD")


@pytest.fixture
def logs() -> io.BytesIO:
    return io.BytesIO()


@pytest.fixture
def app(logs):
    app = build_app(KEY, cors_origins=("https://ui.example",), rate_limit=1000, rate_burst=1000,
                    log_sink=LogSink(logs))  # fmt: skip

    @app.route("/api/v1/demo/items/{item_id}")
    def item(request):
        return {"id": request.path_params["item_id"], "text": "lorem ipsum " * 200}

    @app.route("/api/v1/demo/upload", methods=["POST"])
    async def upload(request):
        return {"size": len(await request.body())}

    @app.route("/api/v1/demo/stream")
    def stream(request):
        return StreamingResponse((f"line {i}\n" * 50 for i in range(20)), media_type="text/plain")

    @app.route("/api/v1/demo/small")
    def small(request):
        return JSONResponse({"ok": True})

    return app


def log_lines(app, logs: io.BytesIO) -> list[dict]:
    app.state["log_sink"].flush()
    return [json.loads(line) for line in logs.getvalue().splitlines()]


# -- system endpoints ------------------------------------------------------------------------------
def test_health_is_open_and_reports_status_version_uptime(serve, app):
    server = serve(app)
    response = request(server.port, "/api/v1/system/health")
    assert response.status == 200
    body = json.loads(response.body)
    assert body["status"] == "ok" and body["version"] and body["uptime_s"] >= 0


def test_metrics_need_the_key_and_are_prometheus_text(serve, app):
    server = serve(app)
    assert request(server.port, "/api/v1/system/metrics").status == 401
    request(server.port, "/api/v1/demo/items/7", {"X-API-Key": KEY})
    response = request(server.port, "/api/v1/system/metrics", {"Authorization": f"Bearer {KEY}"})
    assert response.status == 200
    assert response.header("content-type").startswith("text/plain; version=0.0.4")
    text = response.body.decode()
    assert (
        'api_requests_total{method="GET",endpoint="/api/v1/demo/items/{item_id}",status="200"} 1'
        in text
    )
    assert (
        'api_requests_total{method="GET",endpoint="/api/v1/system/metrics",status="401"} 1' in text
    )
    assert "llmstruct_http_connections_open" in text
    # The histogram merges the item route's responses whatever their status.
    request(server.port, "/api/v1/demo/items/8", {"X-API-Key": KEY, "Origin": "https://x.test"})
    request(server.port, "/api/v1/demo/items/9", {"X-API-Key": KEY[:-1]})  # 401, same route
    text = request(server.port, "/api/v1/system/metrics", {"X-API-Key": KEY}).body.decode()
    route = 'endpoint="/api/v1/demo/items/{item_id}"'
    assert f"api_request_duration_seconds_count{{{route}}} 3" in text
    assert f'api_request_duration_seconds_bucket{{{route},le="+Inf"}} 3' in text
    assert f'api_requests_total{{method="GET",{route},status="401"}} 1' in text


def test_in_flight_gauge_counts_requests_being_answered(serve, app):
    server = serve(app)

    def in_flight() -> int:
        text = request(server.port, "/api/v1/system/metrics", {"X-API-Key": KEY}).body.decode()
        return int(re.search(r"^llmstruct_http_requests_in_flight (\d+)$", text, re.M).group(1))

    assert in_flight() == 1  # the scrape itself
    with connect(server.port) as sock:  # an upload that has sent half its body
        sock.sendall(b"POST /api/v1/demo/upload HTTP/1.1\r\nHost: t\r\nX-API-Key: "
                     + KEY.encode() + b"\r\nContent-Length: 10\r\n\r\n12345")  # fmt: skip
        wait_for(lambda: in_flight() == 2, "the upload to be in flight")
        sock.sendall(b"67890")
        assert Reader(sock).response().status == 200
    assert in_flight() == 1


def test_protocol_refusals_are_counted_and_logged(serve, app, logs):
    server = serve(app)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # no Host
        assert Reader(sock).response().status == 400
    metrics = request(server.port, "/api/v1/system/metrics", {"X-API-Key": KEY}).body.decode()
    assert 'llmstruct_http_refused_total{status="400"} 1' in metrics
    refused = [line for line in log_lines(app, logs) if line["msg"] == "refused"]
    assert refused and refused[0]["status"] == 400


# -- auth ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {KEY}"}, {"X-API-Key": KEY}],
    ids=["bearer", "bearer-lowercase", "x-api-key"],
)
def test_key_in_either_header_is_accepted(serve, app, headers):
    server = serve(app)
    assert request(server.port, "/api/v1/demo/items/1", headers).status == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"X-API-Key": KEY[:-1]},
     {"Authorization": f"Basic {KEY}"}],
    ids=["none", "wrong", "no-scheme", "prefix", "basic"],
)  # fmt: skip
def test_missing_or_wrong_key_is_401(serve, app, headers):
    server = serve(app)
    response = request(server.port, "/api/v1/demo/items/1", headers)
    assert response.status == 401
    assert json.loads(response.body) == {"detail": "Invalid or missing API key"}
    assert response.header("www-authenticate") == "Bearer"


def test_key_is_checked_before_any_body_byte_is_read(serve, app):
    server = serve(app)
    with connect(server.port) as sock:
        sock.sendall(
            b"POST /api/v1/demo/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 500000\r\n\r\n"
        )
        reader = Reader(sock)
        response = reader.response()  # answered with no body byte sent
        assert response.status == 401 and response.header("connection") == "close"
        assert reader.closed()


def test_the_key_never_appears_in_the_access_log(serve, app, logs):
    server = serve(app)
    request(server.port, "/api/v1/demo/items/1?api_key=" + KEY, {"Authorization": f"Bearer {KEY}"})
    request(server.port, "/api/v1/demo/items/1", {"X-API-Key": KEY})
    request(server.port, "/api/v1/demo/items/1", {"X-API-Key": KEY + "x"})
    lines = log_lines(app, logs)
    assert len(lines) == 3
    assert KEY not in logs.getvalue().decode()
    assert lines[0]["query"] == "api_key=REDACTED"


def test_one_structured_log_line_per_request(serve, app, logs):
    server = serve(app)
    response = request(server.port, "/api/v1/demo/items/5", {"X-API-Key": KEY})
    (line,) = log_lines(app, logs)
    assert line["request_id"] == response.header("x-request-id")
    assert line["method"] == "GET" and line["path"] == "/api/v1/demo/items/5"
    assert line["status"] == 200 and line["route"] == "/api/v1/demo/items/{item_id}"
    assert line["duration_ms"] >= 0 and line["level"] == "info"


def test_client_request_id_is_kept_when_sane_and_replaced_when_not(serve, app):
    server = serve(app)
    kept = request(server.port, "/api/v1/system/health", {"X-Request-ID": "abc-123"})
    assert kept.header("x-request-id") == "abc-123"
    replaced = request(server.port, "/api/v1/system/health", {"X-Request-ID": "bad id!"})
    assert replaced.header("x-request-id") not in (None, "bad id!")


def test_redact_query_keeps_other_parameters():
    assert (
        redact_query(b"mode=focused&token=abc&budget=10") == "mode=focused&token=REDACTED&budget=10"
    )
    assert redact_query(b"q=a%20b") == "q=a%20b"
    assert redact_query(b"query=decode+json&budget=10") == "query=decode+json&budget=10"


@pytest.mark.parametrize(
    "query",
    [b"API_KEY=s3cret", b"%6Bey=s3cret", b"a=1&Token=s3cret", b"x=1&access%5Ftoken=s3cret",
     b"password=s3cret&q=monkey", b"apikey=s3cret"],
)  # fmt: skip
def test_redact_query_finds_secret_names_in_any_case_or_escape(query: bytes):
    redacted = redact_query(query)
    assert "s3cret" not in redacted and "REDACTED" in redacted


# -- CORS ------------------------------------------------------------------------------------------
def test_preflight_from_an_allowed_origin_is_answered_without_a_key(serve, app):
    server = serve(app)
    response = request(server.port, "/api/v1/demo/items/1", {
        "Origin": "https://ui.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, x-api-key"},
        method="OPTIONS")  # fmt: skip
    assert response.status == 204
    assert response.header("access-control-allow-origin") == "https://ui.example"
    assert "GET" in response.header("access-control-allow-methods")
    assert "x-api-key" in response.header("access-control-allow-headers")


def test_preflight_from_another_origin_is_refused(serve, app):
    server = serve(app)
    response = request(server.port, "/api/v1/demo/items/1", {
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        method="OPTIONS")  # fmt: skip
    assert response.status == 400
    assert response.header("access-control-allow-origin") is None


def test_cors_headers_are_on_responses_and_errors_for_allowed_origins(serve, app):
    server = serve(app)
    ok = request(
        server.port, "/api/v1/demo/small", {"Origin": "https://ui.example", "X-API-Key": KEY}
    )
    denied = request(server.port, "/api/v1/demo/small", {"Origin": "https://ui.example"})
    other = request(
        server.port, "/api/v1/demo/small", {"Origin": "https://x.example", "X-API-Key": KEY}
    )
    assert ok.header("access-control-allow-origin") == "https://ui.example"
    assert (
        denied.status == 401
        and denied.header("access-control-allow-origin") == "https://ui.example"
    )
    assert other.status == 200 and other.header("access-control-allow-origin") is None


# -- gzip ------------------------------------------------------------------------------------------
def test_large_response_is_gzipped_when_accepted(serve, app):
    server = serve(app)
    plain = request(server.port, "/api/v1/demo/items/1", {"X-API-Key": KEY})
    zipped = request(server.port, "/api/v1/demo/items/1",
                     {"X-API-Key": KEY, "Accept-Encoding": "br, gzip;q=0.8"})  # fmt: skip
    assert plain.header("content-encoding") is None and len(plain.body) >= 1000
    assert zipped.header("content-encoding") == "gzip"
    assert gzip.decompress(zipped.body) == plain.body
    assert "Accept-Encoding" in zipped.header("vary")


@pytest.mark.parametrize("accept", ["gzip;q=0", "identity", "br"])
def test_gzip_is_not_used_unless_accepted(serve, app, accept):
    server = serve(app)
    response = request(
        server.port, "/api/v1/demo/items/1", {"X-API-Key": KEY, "Accept-Encoding": accept}
    )
    assert response.header("content-encoding") is None


def test_small_response_is_not_gzipped(serve, app):
    server = serve(app)
    response = request(
        server.port, "/api/v1/demo/small", {"X-API-Key": KEY, "Accept-Encoding": "gzip"}
    )
    assert response.header("content-encoding") is None and response.body == b'{"ok":true}'


def test_streaming_response_is_gzipped_as_a_stream(serve, app):
    server = serve(app)
    response = request(
        server.port, "/api/v1/demo/stream", {"X-API-Key": KEY, "Accept-Encoding": "gzip"}
    )
    assert response.header("content-encoding") == "gzip"
    assert response.header("transfer-encoding") == "chunked"
    assert gzip.decompress(response.body) == "".join(f"line {i}\n" * 50 for i in range(20)).encode()


# -- rate limit ------------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(serve):
    app = build_app(KEY, rate_limit=1, rate_burst=3, log_sink=LogSink(io.BytesIO()))
    server = serve(app)
    statuses = [
        request(server.port, "/api/v1/system/metrics", {"X-API-Key": KEY}) for _ in range(5)
    ]
    assert [r.status for r in statuses[:3]] == [200, 200, 200]
    limited = statuses[3]
    assert limited.status == 429 and int(limited.header("retry-after")) >= 1
    assert json.loads(limited.body) == {"detail": "Rate limit exceeded"}
    assert request(server.port, "/api/v1/system/health").status == 200  # health is not limited


@pytest.mark.parametrize("trusted", [True, False])
def test_rate_limit_behind_a_trusted_proxy_counts_each_forwarded_client(serve, trusted):
    # A proxy on loopback forwards two clients: with the proxy trusted each has its own
    # bucket (the rightmost untrusted X-Forwarded-For hop); untrusted, the header is
    # ignored and both share the proxy's bucket.
    app = build_app(KEY, rate_limit=1, rate_burst=2, log_sink=LogSink(io.BytesIO()),
                    forwarded_allow_ips=("127.0.0.1",) if trusted else ())  # fmt: skip

    def status(client: str) -> int:
        headers = {"X-API-Key": KEY, "X-Forwarded-For": f"{client}, 127.0.0.1"}
        return request(server.port, "/api/v1/system/metrics", headers).status

    server = serve(app)
    first = [status("203.0.113.7") for _ in range(2)]
    other = status("198.51.100.9")
    assert first == [200, 200]
    assert other == (200 if trusted else 429)
    assert status("203.0.113.7") == 429


@pytest.mark.parametrize("trusted", [True, False])
def test_access_log_names_the_forwarded_client_behind_a_trusted_proxy(serve, logs, trusted):
    app = build_app(KEY, log_sink=LogSink(logs),
                    forwarded_allow_ips=("127.0.0.1",) if trusted else ())  # fmt: skip
    server = serve(app)
    headers = {"X-API-Key": KEY, "X-Forwarded-For": "203.0.113.7, 127.0.0.1"}
    assert request(server.port, "/api/v1/system/metrics", headers).status == 200
    [line] = [line for line in log_lines(app, logs) if line["msg"] == "request"]
    assert line["client"] == ("203.0.113.7" if trusted else "127.0.0.1")


def test_no_auth_mode_serves_without_a_key(serve):
    app = build_app(None, log_sink=LogSink(io.BytesIO()))
    server = serve(app)
    assert request(server.port, "/api/v1/system/metrics").status == 200
