"""The fuzz target still runs, and every seed of its corpus passes its checks.

The fuzzing itself (``python tests/fuzz/fuzz_request.py -runs=100000 ...``) is
run by hand before a release, not in the test suite; see ``fuzz_request.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris (the fuzzer) is not installed")

CORPUS = Path(__file__).with_name("corpus")


@pytest.mark.parametrize("seed", sorted(p.name for p in CORPUS.iterdir()))
def test_seed_passes_the_fuzz_checks(seed):
    from tests.fuzz.fuzz_request import check

    check((CORPUS / seed).read_bytes())
