"""The httptools (llhttp) request driver: compiled twin if built, else the Python one.

``_llhttp_py`` is the specification; type checkers read it, whichever twin runs.
Importing this raises ImportError when httptools is missing or too old (either twin).
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._llhttp_py import HttpToolsDriver
else:
    HttpToolsDriver = load_twin("llhttp").HttpToolsDriver

__all__ = ["HttpToolsDriver"]
