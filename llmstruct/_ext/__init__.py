"""Hot paths with a compiled Cython twin and a pure-Python twin of the same API.

Each ``<name>.py`` selector imports ``_<name>_c`` (compiled) unless
``LLMSTRUCT_NO_EXTENSIONS`` is set or the compiled module is missing, and falls
back to ``_<name>_py``. ``IMPLEMENTATIONS`` records which twin each selector
loaded, so tests and ``llmstruct --version`` can tell.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

NO_EXTENSIONS = bool(os.environ.get("LLMSTRUCT_NO_EXTENSIONS"))

#: selector name -> "c" or "py", filled as selectors are imported.
IMPLEMENTATIONS: dict[str, str] = {}


def load_twin(name: str) -> ModuleType:
    """Return the compiled twin of ``name`` if allowed and built, else the Python one."""
    if not NO_EXTENSIONS:
        try:
            module = importlib.import_module(f"llmstruct._ext._{name}_c")
        except ImportError:
            pass
        else:
            IMPLEMENTATIONS[name] = "c"
            return module
    module = importlib.import_module(f"llmstruct._ext._{name}_py")
    IMPLEMENTATIONS[name] = "py"
    return module
