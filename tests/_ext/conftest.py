"""Run each ``_ext`` suite over both twins, ids ``c`` and ``py`` (as multidict's conftest).

``twin_fixture("lru")`` makes a fixture ``lru_module`` giving ``_lru_c`` then
``_lru_py``; later twins (router, assemble) add one line each. A compiled twin
that does not import fails its tests, so a broken build cannot pass as the pure
twin; only with ``LLMSTRUCT_NO_EXTENSIONS`` set are they skipped instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import import_module
from types import ModuleType

import pytest

NO_EXTENSIONS = bool(os.environ.get("LLMSTRUCT_NO_EXTENSIONS"))
IMPLS = ("c", "py")


def import_twin(name: str, impl: str) -> ModuleType:
    """Import ``llmstruct._ext._<name>_<impl>``; fail or skip if the compiled one is missing."""
    try:
        return import_module(f"llmstruct._ext._{name}_{impl}")
    except ImportError as exc:
        if impl == "py":
            raise
        error = exc  # reported outside the handler, without the chained traceback
    if NO_EXTENSIONS:
        pytest.skip(f"_{name}_c not imported and LLMSTRUCT_NO_EXTENSIONS is set ({error})")
    pytest.fail(
        f"compiled twin _{name}_c did not import ({error}); build it with "
        "`python setup.py build_ext --inplace` or set LLMSTRUCT_NO_EXTENSIONS=1",
        pytrace=False,
    )


def twin_fixture(name: str) -> Callable[..., ModuleType]:
    """A session fixture ``<name>_module`` parametrised over the twins of ``name``."""

    @pytest.fixture(scope="session", params=IMPLS, name=f"{name}_module")
    def module(request: pytest.FixtureRequest) -> ModuleType:
        return import_twin(name, request.param)

    return module


lru_module = twin_fixture("lru")
router_module = twin_fixture("router")
assemble_module = twin_fixture("assemble")
httphead_module = twin_fixture("httphead")
csr_module = twin_fixture("csr")


class FakeClock:
    """A clock that only moves when told, so TTL tests never sleep."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
