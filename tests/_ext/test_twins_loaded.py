"""Each selector loaded the compiled twin, unless LLMSTRUCT_NO_EXTENSIONS says not to.

The suites over both twins import ``_<name>_c`` directly, so they cannot notice
a selector quietly falling back to the pure twin; this test does (as yarl's).
"""

import importlib
import os

import pytest

import llmstruct._ext

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
