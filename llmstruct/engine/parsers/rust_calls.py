"""Rust call names: how the Rust parser writes a captured callee as a call.

Three kinds of capture name a call (see ``queries/rust-tags.scm``), each with its
renderer here, all three handed to ``base.attach_calls``:

* ``callee``: the function expression of a call, as written with argument lists
  inside it reduced to ``()``, turbofish/generic arguments dropped, ``?`` and
  ``.await`` kept: ``foo``, ``Foo::new``, ``self.bar``, ``x.iter().map``,
  ``Vec::new`` for ``Vec::<u8>::new``. Other shapes (closures, index
  expressions) give None.
* ``macro_name``: a macro invocation by its path and bang: ``println!``.
* ``token_call``: a call inside a macro's unparsed token tree, a path directly
  followed by ``(...)`` or by ``!`` (``assert_eq!(foo(1), 2)`` records ``foo``).
"""

from __future__ import annotations

import re

import tree_sitter as ts

from llmstruct.engine.parsers.base import collapse, compact, named_child_at, text

#: A callee made of names, `::` and dots only: its text is its rendering (the common case).
_SIMPLE = re.compile(rb"[\w.:]+")
#: Path segments that are plain words (also what a ``use`` tree binds).
WORDS = frozenset({"identifier", "self", "super", "crate"})
_LEAVES = WORDS | {"field_identifier", "type_identifier", "metavariable"}
_ENDS = frozenset(
    {"scoped_identifier", "bracketed_type", "scoped_type_identifier", "macro_invocation"}
)
#: Callee chain links: node type -> (text it adds, field leading down the chain;
#: None for the only named child).
_CHAIN = {
    "call_expression": ("()", "function"),
    "try_expression": ("?", None),
    "await_expression": (".await", None),
    "generic_function": ("", "function"),
    "generic_type": ("", "type"),
    "parenthesized_expression": ("", None),
}


def callee(node: ts.Node, source: bytes) -> str | None:
    """Callee text: paths and fields as written, inner calls as ``()``, generics dropped.

    Walks down the callee's receiver chain only, so the cost is the chain's length.
    """
    raw = source[node.start_byte : node.end_byte]
    if _SIMPLE.fullmatch(raw):
        return raw.decode("utf-8", "replace")
    parts: list[str] = []
    current: ts.Node | None = node
    while current is not None:
        kind = current.type
        if kind in _LEAVES:
            parts.append(text(current, source))
            return "".join(reversed(parts))
        if kind == "scoped_identifier" and current.child_by_field_name("path") is not None:
            parts.append("::" + text(current.child_by_field_name("name"), source))
            current = current.child_by_field_name("path")
        elif kind == "field_expression":
            parts.append("." + text(current.child_by_field_name("field"), source))
            current = current.child_by_field_name("value")
        elif kind in _CHAIN:
            mark, field = _CHAIN[kind]
            parts.append(mark)
            current = current.child_by_field_name(field) if field else named_child_at(current, 0)
        elif kind in _ENDS:  # `::root::path`, `<T as Trait>`, `write!(..).map_err(..)`
            end = macro_name(current.child_by_field_name("macro"), source) + "()"
            parts.append(end if kind == "macro_invocation" else collapse(text(current, source)))
            return "".join(reversed(parts))
        else:
            return None
    return None


def macro_name(node: ts.Node | None, source: bytes) -> str:
    """A macro's path, whitespace removed, with its bang."""
    return compact(text(node, source)) + "!"


def token_call(ident: ts.Node, source: bytes) -> str | None:
    """A call written inside a macro's token tree: ``name(`` or ``name!(``, with its path.

    The path is read backwards over ``::``/``.`` separators, a parenthesised tree
    before a ``.`` standing for a call (``a.b(x).c(y)`` -> ``a.b().c``).
    """
    after = ident.next_sibling
    if after is None:
        return None
    bang = after.type == "!"
    if not bang and not (after.type == "token_tree" and _opens_paren(after, source)):
        return None
    pieces = [text(ident, source) + ("!" if bang else "")]
    node = ident
    while True:
        sep = node.prev_sibling
        before = sep.prev_sibling if sep is not None and sep.type in ("::", ".") else None
        if before is None:
            break
        if before.type == "token_tree" and sep.type == "." and _opens_paren(before, source):
            owner = before.prev_sibling
            if owner is None or owner.type not in WORDS:
                break
            pieces += [".", "()", text(owner, source)]
            node = owner
        elif before.type in WORDS:
            pieces += [sep.type, text(before, source)]
            node = before
        else:
            break
    return "".join(reversed(pieces))


def _opens_paren(tree: ts.Node, source: bytes) -> bool:
    return source[tree.start_byte : tree.start_byte + 1] == b"("
