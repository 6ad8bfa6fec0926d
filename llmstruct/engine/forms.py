"""The levels of detail at which a symbol can be shown to a model.

A context answer shows each chosen symbol at one level:

``full``       its source text as written (for a class: the class head and the body
               before its first method; methods are items of their own);
``doc``        signature plus docstring;
``signature``  the one-line signature;
``name``       the qualified name only.

The scanner counts the tokens of every level once (``count_forms``) and stores
them with the symbol, because counting is far too slow to do per request. The
context engine renders the same strings, so the counts it plans with are the
counts of what it emits.
"""

from __future__ import annotations

from collections.abc import Callable

LEVELS = ("full", "doc", "signature", "name")


def doc_form(signature: str, docstring: str) -> str:
    if not docstring:
        return signature
    indented = "\n".join(("    " + line) if line else "" for line in docstring.splitlines())
    return f'{signature}\n    """\n{indented}\n    """'


def forms(qualname: str, signature: str, docstring: str, source: str) -> dict[str, str]:
    """The text of each level for one symbol."""
    return {
        "full": source,
        "doc": doc_form(signature, docstring),
        "signature": signature,
        "name": qualname,
    }


def count_forms(
    count: Callable[[str], int], qualname: str, signature: str, docstring: str, source: str
) -> list[int]:
    """Token counts in ``LEVELS`` order; levels that render identically share a count."""
    full = count(source)
    doc = count(doc_form(signature, docstring)) if docstring else None
    sig = count(signature)
    name = count(qualname)
    return [full, sig if doc is None else doc, sig, name]
