"""HTTP route dispatch: the pure-Python twin.

This module is the readable specification; ``_router_c.pyx`` implements the same
``Router`` and ``Match`` (names, behaviour, errors) compiled, and ``router.py``
picks one. ``parse_template`` is shared by both twins, so the template syntax is
defined here only; ``decode_param`` is ``urllib.parse.unquote``, which the
compiled twin reimplements in C (property-tested to agree).

Templates
    A template is a path starting with ``/``. A segment is either literal text or
    a whole-segment parameter ``{name}`` (``name`` a Python identifier, unique in
    the template): ``/api/v1/tasks/{id}``, ``/a/{x}/b/{y}``. Partial segments such
    as ``/files/{name}.json`` are not supported. Empty segments (``//``), ``?``,
    ``#`` and braces inside literal text are refused with ``ValueError``.

Trailing slash is significant
    ``/api/v1/tasks`` and ``/api/v1/tasks/`` are different paths: the trailing
    slash is an empty last segment, which only a template with the same trailing
    slash matches, and a parameter never matches an empty segment. Nothing is
    redirected; the HTTP layer answers 404 for the other spelling.

Paths are raw
    ``resolve`` takes the request path as sent (the target before ``?``, still
    percent-encoded). The path is split on ``/`` first; literal segments compare
    with the raw text (no decoding: ``/api/v1/system/%68ealth`` is a 404); only
    parameter values are then percent-decoded as UTF-8, invalid sequences
    becoming U+FFFD (``urllib.parse.unquote``). So ``%2F`` in a parameter is a
    ``/`` inside the value and never a segment boundary.

Matching
    Exact (parameter-free) templates live in a dict keyed by path, looked up
    first. Otherwise the path is walked through a segment trie, depth first,
    trying at each level the literal child before the parameter child, and
    backing up when a branch dead-ends: the first template to match the whole
    path, in that order, is *the* route of the path (an exact template, being
    literal at every level, always comes first; ``/tasks/search`` beats
    ``/tasks/{id}``). The method is checked only then: the path decides the
    route, the method decides 200 or 405. Each trie node is visited at most once
    per lookup, so a lookup costs O(segments) on typical tables and O(nodes) in
    the worst case.

Methods
    Methods are case-sensitive tokens (RFC 9110 §9.1): ``get`` is not ``GET``.
    ``HEAD`` is served by the ``GET`` handler of a route that has no handler of
    its own for ``HEAD`` (RFC 9110 §9.3.2), and is then listed in ``allowed``.
    Registering the same method and the same path shape twice raises
    ``ValueError``, even with different parameter names; different methods may
    name the parameters of one shape differently.

Results
    ``resolve`` never raises for a lookup: it returns a fresh ``Match`` whose
    ``status`` is 200 (``handler``, ``params``, ``template`` set), 404 (nothing
    set) or 405 (no handler; ``allowed`` gives the methods for the ``Allow``
    header). Building the small object costs less than raising and catching.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

__all__ = ["Match", "Router", "decode_param", "parse_template"]

# RFC 9110 §5.6.2 token: what a method may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_template(template: str) -> tuple[tuple[str | None, ...], tuple[str, ...]]:
    """Split ``template`` into its segment shape and its parameter names.

    The shape holds one entry per segment after the leading ``/``: the literal
    text, or ``None`` for a parameter. ``"/tasks/{id}"`` gives
    ``(("tasks", None), ("id",))``; ``"/"`` gives ``(("",), ())``. Raises
    ``ValueError`` for a template this router does not accept (see the module
    docstring).
    """
    if not isinstance(template, str):
        raise TypeError(f"template must be a str, got {type(template).__name__}")
    if not template.startswith("/"):
        raise ValueError(f"template must start with '/': {template!r}")
    if "?" in template or "#" in template:
        raise ValueError(f"template must be a path, without '?' or '#': {template!r}")
    parts = template.split("/")[1:]
    shape: list[str | None] = []
    names: list[str] = []
    for index, part in enumerate(parts):
        param = _PARAM.fullmatch(part)
        if param is not None:
            name = param.group(1)
            if name in names:
                raise ValueError(f"parameter {name!r} appears twice in {template!r}")
            names.append(name)
            shape.append(None)
        elif "{" in part or "}" in part:
            raise ValueError(
                f"segment {part!r} of {template!r}: a parameter must be a whole "
                "segment named like an identifier, e.g. '{id}'"
            )
        elif not part and index != len(parts) - 1:
            raise ValueError(f"empty segment in {template!r}")
        else:
            shape.append(part)
    return tuple(shape), tuple(names)


def decode_param(raw: str) -> str:
    """Percent-decode one parameter value (UTF-8; invalid sequences become U+FFFD)."""
    return unquote(raw) if "%" in raw else raw


def _check_method(method: str) -> None:
    if not isinstance(method, str) or _TOKEN.fullmatch(method) is None:
        raise ValueError(f"method must be an HTTP token such as 'GET', got {method!r}")


class Match:
    """The outcome of one ``Router.resolve``; a new object each time, owned by the caller.

    ``status``: 200 found, 404 no route has this path, 405 the path has routes
    but none for this method. ``handler`` and ``template`` (the matched route's
    template, e.g. for metrics labels) are None unless 200; ``params`` maps
    parameter names to decoded values (empty unless 200 on a parametrised
    route); ``allowed`` is the sorted methods of the path (for ``Allow``),
    ``HEAD`` included where ``GET`` is, and empty on 404.
    """

    __slots__ = ("status", "handler", "params", "allowed", "template")

    def __init__(
        self,
        status: int,
        handler: Any,
        params: dict[str, str],
        allowed: tuple[str, ...],
        template: str | None,
    ) -> None:
        self.status = status
        self.handler = handler
        self.params = params
        self.allowed = allowed
        self.template = template

    def __repr__(self) -> str:
        return (
            f"Match(status={self.status}, handler={self.handler!r}, params={self.params!r}, "
            f"allowed={self.allowed!r}, template={self.template!r})"
        )


class _Route:
    """One registered (method, template): its handler and parameter names in path order."""

    __slots__ = ("handler", "names", "template")

    def __init__(self, handler: Any, names: tuple[str, ...], template: str) -> None:
        self.handler = handler
        self.names = names
        self.template = template


class _Node:
    """One path shape: the routes ending here by method, and the trie edges below it.

    ``literal`` maps a segment's raw text to the child node; ``param`` is the
    child reached by any non-empty segment. ``allowed`` is recomputed whenever a
    route is added here, so a lookup never sorts.
    """

    __slots__ = ("routes", "allowed", "literal", "param")

    def __init__(self) -> None:
        self.routes: dict[str, _Route] = {}
        self.allowed: tuple[str, ...] = ()
        self.literal: dict[str, _Node] = {}
        self.param: _Node | None = None

    def add(self, method: str, route: _Route) -> None:
        if method in self.routes:
            raise ValueError(
                f"{method} {route.template} conflicts with "
                f"{method} {self.routes[method].template}, registered before"
            )
        self.routes[method] = route
        methods = set(self.routes)
        if "GET" in methods:
            methods.add("HEAD")
        self.allowed = tuple(sorted(methods))

    def match(self, method: str, values: list[str]) -> Match:
        """The 200 or 405 answer of a path that ended at this node."""
        route = self.routes.get(method)
        if route is None and method == "HEAD":
            route = self.routes.get("GET")
        if route is None:
            return Match(405, None, {}, self.allowed, None)
        params = {
            name: decode_param(value) for name, value in zip(route.names, values, strict=True)
        }
        return Match(200, route.handler, params, self.allowed, route.template)


class Router:
    """Maps (method, raw path) to a handler; see the module docstring for the rules.

    Build it once at start-up with ``add`` and share it: ``resolve`` does not
    change the router. ``add`` is not safe to call while other threads resolve.
    """

    __slots__ = ("_exact", "_root", "_count")

    def __init__(self) -> None:
        self._exact: dict[str, _Node] = {}  # exact template -> its node (not in the trie)
        self._root = _Node()  # trie root: the empty text before the leading '/'
        self._count = 0

    def add(self, method: str, template: str, handler: Any) -> None:
        """Register ``handler`` for ``method`` on ``template``.

        Raises ``ValueError`` for an invalid method or template, or when this
        method already has a route of the same shape.
        """
        _check_method(method)
        shape, names = parse_template(template)
        if not names:
            node = self._exact.get(template)
            if node is None:
                node = self._exact[template] = _Node()
        else:
            node = self._root
            for segment in shape:
                if segment is None:
                    if node.param is None:
                        node.param = _Node()
                    node = node.param
                else:
                    child = node.literal.get(segment)
                    if child is None:
                        child = node.literal[segment] = _Node()
                    node = child
        node.add(method, _Route(handler, names, template))
        self._count += 1

    def resolve(self, method: str, path: str) -> Match:
        """Find the route of ``path`` (raw, without the query) and answer for ``method``."""
        node = self._exact.get(path)
        if node is not None:
            return node.match(method, [])
        node, values = self._find(path)
        if node is None:
            return Match(404, None, {}, (), None)
        return node.match(method, values)

    def allowed_methods(self, path: str) -> tuple[str, ...]:
        """The sorted methods ``path`` answers (``HEAD`` with ``GET``); empty if none."""
        node = self._exact.get(path)
        if node is None:
            node = self._find(path)[0]
        return () if node is None else node.allowed

    def _find(self, path: str) -> tuple[_Node | None, list[str]]:
        """The trie node of ``path`` and its raw parameter values, or (None, [])."""
        if not path.startswith("/"):
            return None, []
        segments = path.split("/")
        values: list[str] = []
        node = _walk(self._root, segments, 1, values)
        return node, values

    def routes(self) -> Iterator[tuple[str, str, Any]]:
        """Every registered ``(method, template, handler)``, exact templates first."""
        for node in self._exact.values():
            for method, route in node.routes.items():
                yield method, route.template, route.handler
        stack = [self._root]
        while stack:
            node = stack.pop()
            for method, route in node.routes.items():
                yield method, route.template, route.handler
            stack.extend(node.literal.values())
            if node.param is not None:
                stack.append(node.param)

    def __len__(self) -> int:
        """Number of registered (method, template) routes, implicit HEADs not counted."""
        return self._count


def _walk(node: _Node, segments: list[str], index: int, values: list[str]) -> _Node | None:
    """Depth-first match of ``segments[index:]`` below ``node``, literal child first.

    Parameter values are pushed on ``values`` on the way down and popped when a
    branch fails, so on success ``values`` holds them in path order. A node
    only matches when it has routes: an inner node (say ``/api/v1``) is not a path.
    """
    if index == len(segments):
        return node if node.routes else None
    segment = segments[index]
    child = node.literal.get(segment)
    if child is not None:
        found = _walk(child, segments, index + 1, values)
        if found is not None:
            return found
    if node.param is not None and segment:
        values.append(segment)
        found = _walk(node.param, segments, index + 1, values)
        if found is not None:
            return found
        values.pop()
    return None
