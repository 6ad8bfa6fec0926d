"""The levels of detail at which a symbol can be shown to a model.

A context answer shows each chosen symbol at one level:

``full``       its source text as written (for a class: the class head and the body
               before its first method; methods are items of their own);
``doc``        signature plus docstring;
``signature``  the one-line signature;
``name``       the qualified name only.

The scanner counts the tokens of every level once (``count_forms``) and stores
them with the symbol, because counting is far too slow to do per request. The
context engine renders exactly these strings.

Invariant that makes token counts add up exactly: every form starts with a
non-whitespace character and ends with exactly one ``"\\n"``. cl100k's
pre-tokenizer never joins a newline with a following non-space character into
one piece, so the token count of text built by concatenating such blocks is the
sum of the blocks' counts. The context engine relies on it to report the exact
count of what it renders without counting the whole text again (a property test
checks it against tiktoken).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

LEVELS = ("full", "doc", "signature", "name")


def source_text(data: bytes, start: int, end: int) -> str:
    """A definition's source, from the start of its first line, dedented.

    A method's first line would otherwise lose its indentation while the body
    keeps it; cutting at the line start and dedenting shows it as written.
    """
    line_start = data.rfind(b"\n", 0, start) + 1
    prefix = data[line_start:start]
    if prefix.strip():  # something else precedes it on the line: cut at the definition
        line_start = start
    text = data[line_start:end].decode("utf-8", "replace")
    return textwrap.dedent(text).strip()


def _line(text: str, fallback: str) -> str:
    text = text.strip()
    return (text or fallback) + "\n"


def doc_form(signature: str, docstring: str, language: str, qualname: str = "") -> str:
    head = _line(signature, qualname or "?")
    if not docstring.strip():
        return head
    lines = docstring.strip().splitlines()
    if language == "python":
        body = "\n".join(("    " + line).rstrip() for line in lines)
        return f'{head}    """\n{body}\n    """\n'
    comment = "\n".join(("// " + line).rstrip() for line in lines)
    return f"{comment}\n{head}"


def forms(qualname: str, signature: str, docstring: str, source: str, language: str) -> list[str]:
    """The text of each level for one symbol, in ``LEVELS`` order."""
    signature_line = _line(signature, qualname)
    return [
        _line(source.rstrip(), signature_line.strip()),
        doc_form(signature, docstring, language, qualname),
        signature_line,
        _line(qualname, "?"),
    ]


def count_forms(
    count: Callable[[str], int],
    qualname: str,
    signature: str,
    docstring: str,
    source: str,
    language: str,
) -> list[int]:
    """Token counts in ``LEVELS`` order; levels that render identically share a count."""
    full, doc, sig, name = forms(qualname, signature, docstring, source, language)
    sig_count = count(sig)
    return [count(full), sig_count if doc == sig else count(doc), sig_count, count(name)]
