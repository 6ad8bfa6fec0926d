# cython: language_level=3
"""HTTP route dispatch: the compiled twin.

Same names, behaviour and errors as ``_router_py``, which is the specification and
carries the docstrings; the comments here only say how this twin is made fast.
Template parsing is imported from ``_router_py`` so the syntax is defined once
(it runs only in ``add``); percent-decoding is redone here in C, checked against
``urllib.parse.unquote`` by the property tests.
"""

cimport cython
from cpython.dict cimport PyDict_GetItem
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from libc.string cimport memchr, memcmp

import re

from llmstruct._ext._router_py import parse_template

from urllib.parse import unquote

__all__ = ["Match", "Router", "decode_param", "parse_template"]

# RFC 9110 §5.6.2 token: what a method may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object)
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL
    object PyUnicode_DecodeUTF8(const char*, Py_ssize_t, const char*)
    str PyUnicode_Substring(str, Py_ssize_t, Py_ssize_t)


cdef inline int _hex_value(char c) noexcept:
    if b"0" <= c <= b"9":
        return c - 48
    if b"a" <= c <= b"f":
        return c - 87
    if b"A" <= c <= b"F":
        return c - 55
    return -1


cpdef str decode_param(str raw):
    # For an ASCII str, ``unquote`` is ``unquote_to_bytes(raw).decode("utf-8",
    # "replace")``: each %XX (hex, either case) becomes one byte, any other "%"
    # stays. Done here in C; a non-ASCII value (not possible from a raw
    # request target, but a caller may pass one) goes to ``unquote`` itself.
    cdef Py_ssize_t size, i = 0, out = 0
    cdef const char* text
    cdef char* buffer
    cdef int high, low
    if "%" not in raw:
        return raw
    if not PyUnicode_IS_ASCII(raw):
        return unquote(raw)
    text = PyUnicode_AsUTF8AndSize(raw, &size)  # an ASCII str's own buffer: no copy
    buffer = <char*>PyMem_Malloc(size)
    if buffer == NULL:
        raise MemoryError()
    try:
        while i < size:
            if text[i] == b"%" and i + 2 < size:
                high = _hex_value(text[i + 1])
                low = _hex_value(text[i + 2])
                if high >= 0 and low >= 0:
                    buffer[out] = <char>(high * 16 + low)
                    out += 1
                    i += 3
                    continue
            buffer[out] = text[i]
            out += 1
            i += 1
        return PyUnicode_DecodeUTF8(buffer, out, "replace")
    finally:
        PyMem_Free(buffer)


cdef _check_method(method):
    if not isinstance(method, str) or _TOKEN.fullmatch(method) is None:
        raise ValueError(f"method must be an HTTP token such as 'GET', got {method!r}")


@cython.final
@cython.freelist(32)  # one per request, dropped right after dispatch; reuse the memory
cdef class Match:
    cdef:
        readonly int status
        readonly object handler
        readonly dict params
        readonly tuple allowed
        readonly object template

    def __init__(self, int status, handler, dict params, tuple allowed, template):
        self.status = status
        self.handler = handler
        self.params = params
        self.allowed = allowed
        self.template = template

    def __repr__(self):
        return (
            f"Match(status={self.status}, handler={self.handler!r}, params={self.params!r}, "
            f"allowed={self.allowed!r}, template={self.template!r})"
        )


cdef inline Match _new_match(int status, object handler, dict params, tuple allowed,
                             object template):
    # Skips __init__ and its argument parsing: the fields are typed already.
    cdef Match match = Match.__new__(Match)
    match.status = status
    match.handler = handler
    match.params = params
    match.allowed = allowed
    match.template = template
    return match


@cython.final
cdef class _Route:
    cdef:
        object handler
        tuple names
        str template


@cython.final
cdef class _Node:
    cdef:
        dict routes  # method -> _Route
        tuple allowed
        dict literal  # raw segment text -> _Node
        # The ASCII keys of ``literal`` as bytes, and their nodes in the same
        # order, for the walk over an ASCII path that compares bytes in place.
        tuple ascii_keys
        tuple ascii_nodes
        _Node param  # None when no parametrised template continues here

    def __cinit__(self):
        self.routes = {}
        self.allowed = ()
        self.literal = {}
        self.ascii_keys = ()
        self.ascii_nodes = ()

    cdef _Node child(self, str segment):
        """The literal child for ``segment``, made if missing."""
        cdef _Node node = self.literal.get(segment)
        if node is None:
            node = self.literal[segment] = _Node()
            if segment.isascii():
                self.ascii_keys += (segment.encode("ascii"),)
                self.ascii_nodes += (node,)
        return node

    cdef add(self, str method, _Route route):
        if method in self.routes:
            raise ValueError(
                f"{method} {route.template} conflicts with "
                f"{method} {(<_Route>self.routes[method]).template}, registered before"
            )
        self.routes[method] = route
        methods = set(self.routes)
        if "GET" in methods:
            methods.add("HEAD")
        self.allowed = tuple(sorted(methods))

    cdef Match match(self, str method, list values):
        cdef PyObject* found = PyDict_GetItem(self.routes, method)
        cdef _Route route
        cdef dict params
        cdef Py_ssize_t i
        if found == NULL and method == "HEAD":
            found = PyDict_GetItem(self.routes, "GET")
        if found == NULL:
            return _new_match(405, None, {}, self.allowed, None)
        route = <_Route>found
        params = {}
        for i in range(len(route.names)):
            params[route.names[i]] = decode_param(values[i])
        return _new_match(200, route.handler, params, self.allowed, route.template)


# Literal children compared in place up to this many; wider nodes use the dict.
cdef enum:
    _SCAN_MAX = 16


cdef _Node _walk_ascii(_Node node, str path, const char* text, Py_ssize_t size,
                       Py_ssize_t start, list values):
    # The walk of ``_walk`` over an ASCII path without splitting it: the
    # segment at ``start`` runs to the next '/' (or the end), literal children
    # are found by comparing bytes in place, and only a parameter value becomes
    # a str. ``start > size`` means every segment was consumed.
    cdef const char* slash
    cdef Py_ssize_t end, length, i
    cdef bytes key
    cdef PyObject* child
    cdef _Node found
    if start > size:
        return node if node.routes else None
    slash = <const char*>memchr(text + start, b"/", size - start)
    end = size if slash == NULL else slash - text
    length = end - start
    if len(node.ascii_keys) > _SCAN_MAX:  # a wide node: hashing beats scanning
        child = PyDict_GetItem(node.literal, PyUnicode_Substring(path, start, end))
        if child != NULL:
            found = _walk_ascii(<_Node>child, path, text, size, end + 1, values)
            if found is not None:
                return found
    else:
        for i in range(len(node.ascii_keys)):
            key = <bytes>node.ascii_keys[i]
            if PyBytes_GET_SIZE(key) == length and memcmp(
                PyBytes_AS_STRING(key), text + start, length
            ) == 0:
                found = _walk_ascii(<_Node>node.ascii_nodes[i], path, text, size, end + 1, values)
                if found is not None:
                    return found
                break  # keys are unique
    if node.param is not None and length != 0:
        values.append(PyUnicode_Substring(path, start, end))
        found = _walk_ascii(node.param, path, text, size, end + 1, values)
        if found is not None:
            return found
        values.pop()
    return None


cdef _Node _walk(_Node node, list segments, Py_ssize_t index, list values):
    # Depth first, literal child before the parameter child, values pushed on
    # the way down and popped on a dead end: as ``_router_py._walk``.
    cdef PyObject* child
    cdef _Node found
    cdef str segment
    if index == len(segments):
        return node if node.routes else None
    segment = <str>segments[index]
    child = PyDict_GetItem(node.literal, segment)
    if child != NULL:
        found = _walk(<_Node>child, segments, index + 1, values)
        if found is not None:
            return found
    if node.param is not None and len(segment) != 0:
        values.append(segment)
        found = _walk(node.param, segments, index + 1, values)
        if found is not None:
            return found
        values.pop()
    return None


@cython.final
cdef class Router:
    # The hot structures, built by ``add`` and only read by ``resolve``:
    #   _exact  dict  exact template -> _Node      one hash lookup on the raw path
    #   _root   trie of _Node, one level per segment; each node has its literal
    #           children (a dict, and its ASCII keys again as a bytes tuple)
    #           and at most one parameter child.
    # Operations and their cost (s = segments in the path, c = literal
    # children of a node, n = trie nodes):
    #   resolve, exact path       O(1)   one dict lookup + one for the method
    #   resolve, parametrised     O(s*c) ASCII path (any real request target):
    #                                    no split; per level a memchr for '/'
    #                                    and a length+memcmp scan of the c
    #                                    children (a handful; cheaper than
    #                                    hashing a new str; above 16 children
    #                                    a dict lookup instead); one
    #                                    substring per parameter value
    #                             O(s)   other paths: str.split, one dict
    #                                    lookup per level
    #                             O(n)   at worst when literal branches
    #                                    dead-end and the walk backs up (each
    #                                    node is visited at most once)
    #   resolve, 404              as above, ending without a node
    #   allowed_methods           as resolve, without building the Match
    #   add                       O(s + m log m)  m = methods on the node (re-sorts Allow)
    cdef:
        dict _exact
        _Node _root
        Py_ssize_t _count

    def __cinit__(self):
        self._exact = {}
        self._root = _Node()
        self._count = 0

    def add(self, method, template, handler):
        cdef _Node node
        cdef _Route route
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
                    node = node.child(segment)
        route = _Route.__new__(_Route)
        route.handler = handler
        route.names = names
        route.template = template
        node.add(method, route)
        self._count += 1

    cpdef Match resolve(self, str method, str path):
        cdef PyObject* found = PyDict_GetItem(self._exact, path)
        cdef list values
        cdef _Node node
        if found != NULL:
            return (<_Node>found).match(method, None)
        values = []
        node = self._find(path, values)
        if node is None:
            return _new_match(404, None, {}, (), None)
        return node.match(method, values)

    def allowed_methods(self, str path):
        cdef PyObject* found = PyDict_GetItem(self._exact, path)
        cdef _Node node
        if found != NULL:
            return (<_Node>found).allowed
        node = self._find(path, [])
        return () if node is None else node.allowed

    cdef _Node _find(self, str path, list values):
        cdef Py_ssize_t size
        cdef const char* text
        if len(path) == 0 or path[0] != "/":
            return None
        if PyUnicode_IS_ASCII(path):
            text = PyUnicode_AsUTF8AndSize(path, &size)  # the str's own buffer
            return _walk_ascii(self._root, path, text, size, 1, values)
        return _walk(self._root, path.split("/"), 1, values)

    def routes(self):
        cdef _Node node
        cdef _Route route
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

    def __len__(self):
        return self._count
