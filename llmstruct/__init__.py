"""llmstruct: a structured map of a codebase, and token-budgeted context from it."""

__version__ = "0.1.0"
