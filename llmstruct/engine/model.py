"""What a parser extracts from one source file.

These records are the contract between the per-language parsers and the rest of
the engine (struct.json builder, call resolution, token accounting). They are
plain dataclasses so they pickle cheaply across the scanner's worker processes
and serialise to the on-disk scan cache with ``dataclasses.asdict``.

Conventions every parser follows:

* Lines are 1-based and inclusive: ``line_range = (first, last)``.
* ``byte_range`` is the half-open byte span of the whole definition in the file
  (decorators/attributes/doc comments *not* included), so ``source[a:b]`` is its text.
* ``parameters`` are names only, with the variadic marker kept (``*args``,
  ``**kwargs``, ``...rest``); ``self``/``this`` receivers are kept as written.
* ``calls`` are callee expressions as written in the body (``foo``,
  ``self.bar``, ``os.path.join``, ``fmt.Println``), de-duplicated in order of first
  appearance; calls made inside a nested function belong to the enclosing
  top-level function or method (nested definitions get no entry of their own).
* ``docstring`` is the cleaned text (comment markers and common indentation
  removed), "" when there is none.
* ``signature`` is the definition's head as written, up to (not including) its
  body, whitespace runs collapsed to one space.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Function:
    name: str
    line_range: tuple[int, int]
    byte_range: tuple[int, int]
    signature: str
    parameters: list[str] = field(default_factory=list)
    decorators: list[str] = field(default_factory=list)
    docstring: str = ""
    calls: list[str] = field(default_factory=list)
    is_async: bool = False
    #: Visible outside its module by the language's rules (Go capitalised names,
    #: JS/TS ``export``, Rust ``pub``, Java ``public``; Python: not underscored).
    exported: bool = True


@dataclass(slots=True)
class ClassDef:
    name: str
    line_range: tuple[int, int]
    byte_range: tuple[int, int]
    signature: str
    #: "class", "interface", "struct", "enum", "trait", "record", "type" or "impl"
    #: (a Rust ``impl``/Go method set whose type is declared in another file).
    kind: str = "class"
    bases: list[str] = field(default_factory=list)
    decorators: list[str] = field(default_factory=list)
    docstring: str = ""
    methods: list[Function] = field(default_factory=list)
    exported: bool = True


@dataclass(slots=True)
class Import:
    """One imported binding.

    ``module`` is the import source as written (``os.path``, ``./util``, ``fmt``,
    ``crate::a::b``, ``java.util``); Python relative imports keep their leading dots
    (``..pkg``). ``name`` is the imported member (``join`` in
    ``from os.path import join``), None when the module itself is bound; ``*`` for
    wildcard imports. ``alias`` is the local name when renamed.
    """

    module: str
    name: str | None = None
    alias: str | None = None
    line: int = 0

    @property
    def binding(self) -> str:
        """The local name this import introduces."""
        if self.alias:
            return self.alias
        if self.name:
            return self.name
        return self.module.rstrip("/").replace("::", ".").replace("/", ".").rsplit(".", 1)[-1]


@dataclass(slots=True)
class FileAnalysis:
    path: str  # relative to the scan root, POSIX separators
    language: str
    line_count: int
    module_doc: str = ""
    imports: list[Import] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)
    classes: list[ClassDef] = field(default_factory=list)
    #: Names the module exposes on purpose: Python ``__all__``, JS/TS exports, Go
    #: package name for the file (``package:<name>``), Java/Go package clause.
    exports: list[str] = field(default_factory=list)
    #: Package/namespace the file declares (Go ``package``, Java ``package``), "" if none.
    package: str = ""
    #: tree-sitter found syntax errors; the extraction is best-effort for those files.
    syntax_errors: int = 0


# -- plain-dict form -----------------------------------------------------------------
# Written out by hand: ``dataclasses.asdict`` deep-copies every value and cost a
# quarter of the whole analysis time on the standard library. Ranges become lists
# here, as JSON would give them back, so fresh and cached records are equal.


def function_dict(f: Function) -> dict:
    return {
        "name": f.name,
        "line_range": [f.line_range[0], f.line_range[1]],
        "byte_range": [f.byte_range[0], f.byte_range[1]],
        "signature": f.signature,
        "parameters": list(f.parameters),
        "decorators": list(f.decorators),
        "docstring": f.docstring,
        "calls": list(f.calls),
        "is_async": f.is_async,
        "exported": f.exported,
    }


def class_dict(c: ClassDef) -> dict:
    return {
        "name": c.name,
        "line_range": [c.line_range[0], c.line_range[1]],
        "byte_range": [c.byte_range[0], c.byte_range[1]],
        "signature": c.signature,
        "kind": c.kind,
        "bases": list(c.bases),
        "decorators": list(c.decorators),
        "docstring": c.docstring,
        "methods": [function_dict(m) for m in c.methods],
        "exported": c.exported,
    }


def analysis_dict(a: FileAnalysis) -> dict:
    return {
        "path": a.path,
        "language": a.language,
        "line_count": a.line_count,
        "module_doc": a.module_doc,
        "imports": [
            {"module": i.module, "name": i.name, "alias": i.alias, "line": i.line}
            for i in a.imports
        ],
        "functions": [function_dict(f) for f in a.functions],
        "classes": [class_dict(c) for c in a.classes],
        "exports": list(a.exports),
        "package": a.package,
        "syntax_errors": a.syntax_errors,
    }
