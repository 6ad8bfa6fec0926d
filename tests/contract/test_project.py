"""Project info, scan (JSON and NDJSON) and struct.json: the same answers on the three servers."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from tests.contract.harness import KEY, NDJSON, Contract, Server, Trio, before_scan, normalise

STRUCT = "/api/v1/project/struct"
SCAN = "/api/v1/project/scan"
IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}
ENCODING = ("etag", "content-encoding", "vary")
ZIP = ("content-encoding", "vary")


def test_before_any_scan_the_struct_endpoints_are_409(contract: Contract) -> None:
    seen = contract.check(before_scan, key="before_scan")  # recorded when the servers started
    assert [o["status"] for o in seen] == [409, 409, 409, 400, 409, 409, 200]
    assert seen[0]["body"] == {"detail": "No struct.json yet: run a scan first"}


def test_project_info(contract: Contract, scanned: Trio) -> None:
    seen = contract.check(lambda s: s.observe("GET", "/api/v1/project/info"))
    assert (seen["status"], seen["body"]["name"], seen["body"]["file_count"]) == (200, "shop", 4)


def test_scan_answers_a_scan_response(contract: Contract, scanned: Trio) -> None:
    body = {"incremental": False, "deep_analysis": True, "exclude_patterns": ["*.js"]}
    seen = contract.check(lambda s: s.observe("POST", SCAN, json=body))
    assert (seen["status"], seen["body"]["status"]) == (200, "completed")
    assert (seen["body"]["files_processed"], seen["body"]["output_path"]) == (3, "struct.json")


def test_scan_streams_the_same_ndjson_lines(contract: Contract, scanned: Trio) -> None:
    def scenario(s: Server) -> Any:
        headers = {"Accept": NDJSON}
        seen = [s.observe("POST", SCAN, json={"incremental": False}, headers=headers, show=ZIP)]
        zipped = {**headers, "Accept-Encoding": "gzip"}  # flushed per line, decoded by httpx
        seen.append(s.observe("POST", SCAN, json={}, headers=zipped, show=ZIP))
        return seen

    seen = contract.check(scenario)
    stream = seen[0]["body"]
    assert seen[0]["content-type"].startswith(NDJSON)
    assert stream["counts_up"] and len(stream["progress"]) == 4
    assert stream["last"]["status"] == "completed"
    assert seen[1]["content-encoding"] == "gzip" and seen[1]["body"]["counts_up"]


JSON_TYPE = {"Content-Type": "application/json"}


@pytest.mark.parametrize("accept", ["application/json", NDJSON])
@pytest.mark.parametrize(
    "options",
    [
        {"json": {"include_patterns": "not a list"}},
        {"json": {"incremental": "maybe", "deep_analysis": []}},
        {"json": []},
        {"content": b""},
        {"content": b"{not json", "headers": JSON_TYPE},
        {"content": b'{"incremental": false}', "headers": {"Content-Type": "text/plain"}},
        {"content": b'{"incremental": false}', "headers": {}},
    ],
    ids=["patterns-type", "types", "list", "empty", "malformed", "text-plain", "no-type"],
)
def test_scan_validation_errors(contract: Contract, accept: str, options: dict[str, Any]) -> None:
    def scenario(s: Server) -> Any:
        headers = {"Accept": accept, **options.get("headers", {})}
        return s.observe("POST", SCAN, **{**options, "headers": headers})

    seen = contract.check(scenario)
    assert seen["status"] == 422


@pytest.mark.parametrize(
    ("body", "accept"),
    [
        ({"output_path": "../outside.json"}, "application/json"),
        ({"output_path": "/etc/struct.json"}, NDJSON),
        ({"include_patterns": ["[unclosed"]}, NDJSON),
    ],
    ids=["outside", "absolute-ndjson", "bad-glob-ndjson"],
)
def test_scan_refusals_of_the_engine(contract: Contract, body: Any, accept: str) -> None:
    seen = contract.check(lambda s: s.observe("POST", SCAN, json=body, headers={"Accept": accept}))
    assert seen["status"] == 400 and isinstance(seen["body"]["detail"], str)


def test_struct_has_an_etag_answers_304_and_gzips(contract: Contract, scanned: Trio) -> None:
    def scenario(s: Server) -> Any:
        plain = s.call("GET", STRUCT, headers=IDENTITY)
        etag = plain.headers["etag"]
        seen = [normalise(plain, ENCODING)]
        seen[0]["body"] = sorted(seen[0]["body"])  # the struct itself: the next test
        with s.client.stream("GET", STRUCT, headers={**GZIP, "X-API-Key": KEY}) as zipped:
            raw = b"".join(zipped.iter_raw())
            seen.append({
                "gzip": {k: zipped.headers.get(k) for k in ("content-encoding", "vary")},
                "etag": etag_of(zipped, etag),  # the decision: weak (see fastapi_app)
                "same body": gzip.decompress(raw) == plain.content,
            })  # fmt: skip
        for header, encoding in (
            (etag, IDENTITY), (f"W/{etag}", GZIP), ("*", IDENTITY),
            (f'"other", W/"x",{etag}', IDENTITY), ('"other"', IDENTITY),
        ):  # fmt: skip
            again = s.call("GET", STRUCT, headers={"If-None-Match": header, **encoding})
            seen.append({
                "if-none-match": header.replace(etag, "<etag>"), "status": again.status_code,
                "empty": again.content == b"", "etag": etag_of(again, etag),
            })  # fmt: skip
        return seen

    seen = contract.check(scenario)
    assert (seen[0]["status"], seen[0]["etag"]) == (200, '"<tag>"')
    assert seen[1] == {"gzip": {"content-encoding": "gzip", "vary": "Accept-Encoding"},
                       "etag": "weak", "same body": True}  # fmt: skip
    assert [o["status"] for o in seen[2:]] == [304, 304, 304, 304, 200]
    assert all(o["empty"] and o["etag"] == "same" for o in seen[2:6])


def etag_of(response: Any, etag: str) -> str:
    """The ETag of ``response`` relative to the identity one: "same", "weak" or the value."""
    found = response.headers.get("etag")
    return {etag: "same", f"W/{etag}": "weak"}.get(found, found)


@pytest.mark.parametrize(
    "accept", ["gzip;q=0", "*", "identity;q=1, *;q=0", "br, gzip;q=0.5", "GZIP", "deflate"]
)
def test_gzip_follows_the_accept_encoding_rules(
    contract: Contract, scanned: Trio, accept: str
) -> None:
    def scenario(s: Server) -> Any:
        seen = s.observe("GET", STRUCT, headers={"Accept-Encoding": accept}, show=ENCODING)
        return {**seen, "body": sorted(seen["body"])}

    seen = contract.check(scenario)
    assert seen["status"] == 200 and seen["vary"] == "Accept-Encoding"


def test_struct_body_is_the_same_struct(contract: Contract, scanned: Trio) -> None:
    def scenario(s: Server) -> Any:
        body = s.observe("GET", STRUCT)["body"]
        for volatile in ("version", "artifact_id"):  # a timestamp and a uuid of each scan
            body["metadata"].pop(volatile)
        return body

    seen = contract.check(scenario)
    assert seen["modules"]


def test_an_unusable_struct_json_is_409(contract: Contract, scanned: Trio) -> None:
    def scenario(s: Server) -> Any:
        (s.root / "struct.json").write_bytes(b"{ not a struct")
        try:
            return [
                s.observe("GET", "/api/v1/project/info"),
                s.observe("GET", STRUCT),
                s.observe("GET", "/api/v1/project/context/FULL"),
                s.observe("POST", "/api/v1/query", json={"query": "why?"}),
            ]
        finally:
            assert s.call("POST", SCAN, json={"incremental": False}).status_code == 200

    seen = contract.check(scenario)
    unusable = {"detail": "struct.json is not usable: run a scan again"}
    assert [(o["status"], o["body"]) for o in seen] == [(409, unusable)] * 4
