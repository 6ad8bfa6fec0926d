"""Cross-module call resolution: which project symbol a call expression names.

A call is kept as written by the parser (``helper``, ``self.save``,
``os.path.join``, ``fmt.Println``, ``Config::new``). Resolution follows what the
language lets a name mean, using only what is certain from the source:

* ``self.m`` / ``this.m`` / ``cls.m`` / ``Self::m`` -> method ``m`` of the enclosing class;
* ``f`` -> a top-level function or class of the same module, then (Go) of the same
  package, then (Java) a method of the enclosing class, then an imported name;
* ``X.m`` where ``X`` is a class of the module -> its method; where ``X`` is an
  import -> walk into the imported module (Python submodules included).

Anything else (calls on variables whose type is unknown, the standard library of
another language, dynamic dispatch) stays unresolved: a wrong edge misleads a
model more than a missing one.
"""

from __future__ import annotations

import posixpath
from typing import Any

from llmstruct.engine.modules import ImportIndex, Record, Target

_RECEIVERS = frozenset({"self", "this", "cls", "Self"})
_JS_LANGS = frozenset({"javascript", "typescript", "tsx"})


class SymbolTable:
    """uids of every module's top-level names and class methods."""

    def __init__(self, records: dict[str, Record], ids: dict[str, str]) -> None:
        self.top: dict[str, dict[str, str]] = {}
        self.methods: dict[str, dict[str, dict[str, str]]] = {}
        for path, record in records.items():
            module_id = ids[path]
            top: dict[str, str] = {}
            for function in record["functions"]:
                top.setdefault(function["name"], uid(module_id, function["name"]))
            classes: dict[str, dict[str, str]] = {}
            for cls in record["classes"]:
                top.setdefault(cls["name"], uid(module_id, cls["name"]))
                methods = classes.setdefault(cls["name"], {})
                for method in cls["methods"]:
                    methods.setdefault(
                        method["name"], uid(module_id, f"{cls['name']}.{method['name']}")
                    )
            self.top[path] = top
            self.methods[path] = classes


def uid(module_id: str, qualname: str) -> str:
    return f"{module_id}#{qualname}"


class CallResolver:
    def __init__(self, records: dict[str, Record], ids: dict[str, str]) -> None:
        self.records = records
        self.ids = ids
        self.index = ImportIndex(records, ids)
        self.symbols = SymbolTable(records, ids)
        self.bindings = {path: self._bindings(record) for path, record in records.items()}

    def _bindings(self, record: Record) -> dict[str, Target]:
        bound: dict[str, Target] = {}
        for imp in record["imports"]:
            if imp["name"] == "*":
                continue
            name = _binding_name(record["language"], imp)
            target = self.index.target(record, imp) if name else None
            if target is not None:
                bound[name] = target
        return bound

    def resolve(self, path: str, call: str, enclosing_class: str | None) -> str | None:
        """uid of the project symbol ``call`` names in ``path``, or None."""
        if not call or call.endswith("!"):
            return None  # Rust macros are not functions of the project
        parts = call.replace("::", ".").split(".")
        head, rest = parts[0], parts[1:]
        if head in _RECEIVERS:
            if enclosing_class and len(rest) == 1:
                return self.symbols.methods[path].get(enclosing_class, {}).get(rest[0])
            return None
        if not rest:
            return self._bare(path, head, enclosing_class)
        local_class = self.symbols.methods[path].get(head)
        if local_class is not None:
            return local_class.get(rest[0]) if len(rest) == 1 else None
        target = self.bindings[path].get(head)
        if target is not None:
            return self._walk(target, rest)
        if self.records[path]["language"] in ("go", "java"):
            return self._in_package(path, parts)
        return None

    def _bare(self, path: str, name: str, enclosing_class: str | None) -> str | None:
        found = self.symbols.top[path].get(name)
        if found is not None:
            return found
        language = self.records[path]["language"]
        if language == "java" and enclosing_class:
            found = self.symbols.methods[path].get(enclosing_class, {}).get(name)
            if found is not None:
                return found
        if language == "go":
            found = self._in_package(path, [name])
            if found is not None:
                return found
        target = self.bindings[path].get(name)
        if target is None:
            return None
        if target.symbol not in (None, "default"):
            return self._walk(Target(target.paths), [target.symbol])
        if language in _JS_LANGS:
            # ``const Layer = require('./layer')`` / ``import Layer from './layer'``: a
            # default export is, by overwhelming convention, the definition of that name.
            return self._lookup(list(target.paths), [name])
        return None

    def _in_package(self, path: str, parts: list[str]) -> str | None:
        """Go and Java see the other files of their directory without imports."""
        directory = posixpath.dirname(path)
        siblings = [p for p in self.index.dirs.get(directory, []) if p != path]
        return self._lookup(siblings, parts)

    def _walk(self, target: Target, rest: list[str]) -> str | None:
        if target.symbol is not None:
            rest = [target.symbol, *rest]
        found = self._lookup(list(target.paths), rest)
        if found is not None or len(target.paths) != 1 or len(rest) < 2:
            return found
        # Python: ``pkg.sub.f`` where ``pkg`` is bound and ``pkg.sub`` is a module.
        (path,) = target.paths
        if self.records[path]["language"] != "python":
            return None
        submodule = self.index.python_module(f"{self.ids[path]}.{rest[0]}")
        return self._walk(Target((submodule,)), rest[1:]) if submodule else None

    def _lookup(self, paths: list[str], parts: list[str]) -> str | None:
        for path in paths:
            if len(parts) == 1:
                found = self.symbols.top[path].get(parts[0])
            elif len(parts) == 2:
                found = self.symbols.methods[path].get(parts[0], {}).get(parts[1])
            else:
                found = None
            if found is not None:
                return found
        return None


def _binding_name(language: str, imp: dict[str, Any]) -> str | None:
    """The local name an import introduces, by the language's rule."""
    if imp["alias"]:
        return imp["alias"]
    if imp["name"]:
        return imp["name"]
    module = imp["module"].replace("::", "/").replace(".", "/").strip("/")
    if language == "python":
        return module.split("/")[0] or None  # ``import a.b`` binds ``a``
    if language in ("go", "rust"):
        return module.split("/")[-1] or None  # Go: the package's last path element
    return None  # JS side-effect imports bind nothing
