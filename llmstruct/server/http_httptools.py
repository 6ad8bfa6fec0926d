"""The httptools (llhttp) backend (``--http httptools``, the default when installed).

The driver itself runs once per request and per callback, so it is one of the
hot paths with two twins: ``llmstruct._ext._llhttp_py`` (the specification, with
how llhttp's behaviour is matched to h11's) and its compiled twin
``_llhttp_c``. This module exports whichever ``llmstruct._ext.llhttp`` loaded;
importing it raises ImportError when httptools is missing or older than 0.6.3.
"""

from llmstruct._ext.llhttp import HttpToolsDriver

__all__ = ["HttpToolsDriver"]
