"""Token counting: the default encoding loads offline; a bad one is a clear error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmstruct.engine.tokens import EncodingUnavailable, TokenCounter


def test_default_encoding_loads_into_an_empty_cache_without_network(tmp_path) -> None:
    # A fresh process with an empty tiktoken cache and every proxy pointing at a
    # closed port: any download attempt would fail, so success means offline.
    code = (
        "from llmstruct.engine.tokens import TokenCounter;"
        "print(TokenCounter().count('def hello_world(): pass'))"
    )
    env = {
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "cache"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0
    assert any((tmp_path / "cache").iterdir())  # seeded under tiktoken's own cache name


def test_unknown_encoding_names_itself_and_how_to_provide_it() -> None:
    with pytest.raises(EncodingUnavailable, match="'no_such_encoding'.*\\.tiktoken file"):
        TokenCounter("no_such_encoding")


def test_counts_are_tiktokens() -> None:
    counter = TokenCounter()
    assert counter.count("") == 0
    assert counter.count("hello world") == 2
