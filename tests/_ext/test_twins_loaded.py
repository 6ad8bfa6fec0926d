"""Each selector loaded the compiled twin, unless LLMSTRUCT_NO_EXTENSIONS says not to.

The suites over both twins import ``_<name>_c`` directly, so they cannot notice
a selector quietly falling back to the pure twin; this test does (as yarl's).
"""

import importlib
import os
from pathlib import Path

import pytest

import llmstruct._ext
from llmstruct._ext import twin_sources

#: every selector with a compiled twin: name -> the selector module.
SELECTORS = {
    **{name: f"llmstruct._ext.{name}" for name in (
        "lru", "router", "assemble", "httphead", "llhttp", "csr", "protocol", "request")},
    "app": "llmstruct.server.app",
    "middleware": "llmstruct.server.middleware",
    "metrics": "llmstruct.server.metrics",
}  # fmt: skip


@pytest.mark.parametrize("name", SELECTORS)
def test_selector_loads_compiled_twin_unless_extensions_are_disabled(name):
    importlib.import_module(SELECTORS[name])
    expected = "py" if os.environ.get("LLMSTRUCT_NO_EXTENSIONS") else "c"
    assert llmstruct._ext.IMPLEMENTATIONS[name] == expected


#: the checkout's sources, which the tests are about (the package may be installed).
EXT_SOURCES = Path(__file__).resolve().parents[2] / "llmstruct" / "_ext"


@pytest.mark.skipif(bool(os.environ.get("LLMSTRUCT_NO_EXTENSIONS")),
                    reason="the pure twins are asked for: nothing compiled to check")  # fmt: skip
@pytest.mark.parametrize("name", SELECTORS)
def test_each_compiled_twin_was_built_from_the_sources_as_they_are(name):
    # A build left over from before an edit still loads; the suites would then test
    # old code under the new one's name (a review found this in a source checkout).
    module = f"_{name}_c"
    compiled = importlib.import_module(f"llmstruct._ext.{module}")
    recorded = twin_sources.read_record(compiled.__file__, module)
    assert recorded is not None, f"{compiled.__file__} has no build record: rebuild it"
    assert recorded == twin_sources.digest(str(EXT_SOURCES), module), (
        f"{module} was compiled from other sources than the checkout's: run "
        "`python setup.py build_ext --inplace` (or reinstall)"
    )
