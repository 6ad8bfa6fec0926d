# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of ``_llhttp_py``: the httptools (llhttp) request driver.

``_llhttp_py`` is the specification (its docstring says how llhttp is made to
behave as h11 does); this is the same driver with typed state. llhttp calls
back once per request element, so what costs is the Python around each
callback: attribute lookups and counters, here C fields. tests/server runs
every protocol test over both twins.
"""

from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.string cimport memchr

import httptools

from llmstruct._ext.httphead import HTTPError, inspect_head

if not hasattr(httptools.HttpRequestParser, "set_dangerous_leniencies"):
    raise ImportError("httptools >= 0.6.3 is required for the httptools backend")

__all__ = ["HttpToolsDriver"]

cdef object _HttpParserUpgrade = httptools.HttpParserUpgrade
cdef object _HttpParserError = httptools.HttpParserError
cdef object _HttpParserCallbackError = httptools.HttpParserCallbackError
cdef object _HttpRequestParser = httptools.HttpRequestParser
cdef object _HTTPError = HTTPError
cdef object _inspect_head = inspect_head
cdef dict _METHODS = {name.encode(): name for name in (
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")}
cdef tuple _LLHTTP_REASONS = (
    ("can't be present with", "Content-Length with Transfer-Encoding"),
    ("Duplicate Content-Length", "Multiple Content-Length headers"),
    ("Content-Length", "Invalid Content-Length"),
)


cdef class HttpToolsDriver:
    cdef object _limits
    cdef object _parser
    cdef object _on_request, _on_body, _on_end  # the sink's methods, bound once
    cdef bytes _url
    cdef list _headers
    cdef Py_ssize_t _max_head
    cdef object _max_body
    cdef Py_ssize_t _head_bytes
    cdef Py_ssize_t _line_tail
    cdef bint _in_head
    cdef bint _in_message
    cdef object _body_seen
    cdef object _error
    cdef bint _last
    cdef public bint finished
    cdef public object tail

    def __init__(self, sink, limits):
        self._limits = limits
        self._on_request = sink.on_request
        self._on_body = sink.on_body
        self._on_end = sink.on_end
        # A head cannot be longer than PY_SSIZE_T_MAX; a larger limit means "none".
        self._max_head = min(limits.max_head_bytes, PY_SSIZE_T_MAX)
        self._max_body = limits.max_body_bytes
        parser = self._parser = _HttpRequestParser(self)
        parser.set_dangerous_leniencies(
            lenient_transfer_encoding=True, lenient_data_after_close=True
        )
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._line_tail = 0
        self._in_head = False
        self._in_message = False
        self._body_seen = 0
        self._error = None
        self._last = False
        self.finished = False
        self.tail = b""

    def feed(self, data):
        if self.finished:
            self.tail += data
            return
        try:
            self._parser.feed_data(data)
        except _HttpParserUpgrade as exc:
            self.finished = True
            self.tail = data[exc.args[0]:]
            return
        except _HttpParserError as exc:
            raise self._refusal(exc) from None
        if self._in_head:
            self._check_partial_head(data)

    cdef object _refusal(self, exc):
        if self._error is not None:
            return self._error
        if isinstance(exc, _HttpParserCallbackError) and exc.__context__ is not None:
            raise exc.__context__  # a bug in a callee, not a bad request: let it surface
        if not self._in_head and self._in_message:
            return _HTTPError(400, "Invalid request body framing")
        reason = str(exc)
        if "Transfer-Encoding" in reason and "Content-Length" not in reason:
            return _HTTPError(501, "Only Transfer-Encoding: chunked is supported")
        for fragment, detail in _LLHTTP_REASONS:
            if fragment in reason:
                return _HTTPError(400, detail)
        return _HTTPError(400, "Invalid request head")

    cdef int _fail(self, error) except -1:
        self._error = error
        raise error

    cdef int _check_partial_head(self, data) except -1:
        cdef Py_ssize_t newline = data.rfind(b"\n")
        if newline < 0:
            self._line_tail += len(data)
        else:
            self._line_tail = len(data) - newline - 1
        if self._head_bytes + self._line_tail > self._max_head:
            raise _HTTPError(431, "Request head too large")
        return 0

    # -- llhttp callbacks -------------------------------------------------------------
    def on_message_begin(self):
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._line_tail = 0
        self._body_seen = 0
        self._in_head = True
        self._in_message = True

    def on_url(self, bytes url):
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self._max_head:
            self._fail(_HTTPError(431, "Request head too large"))

    def on_header(self, bytes name, bytes value):
        if not self._in_head:
            return  # a trailer field of a chunked body
        cdef Py_ssize_t size = len(value)
        self._headers.append((name.lower(), value))
        self._head_bytes += len(name) + size + 4
        if self._head_bytes > self._max_head:
            self._fail(_HTTPError(431, "Request head too large"))
        if memchr(<const char *>value, 0x7f, size) != NULL:
            self._fail(_HTTPError(400, "Invalid request head"))

    def on_headers_complete(self):
        parser = self._parser
        self._in_head = False
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        try:
            head = _inspect_head(
                method, self._url, parser.get_http_version(), self._headers, self._limits
            )
        except _HTTPError as exc:
            self._fail(exc)
        if len(method) + self._head_bytes + 12 > self._max_head:
            self._fail(_HTTPError(431, "Request head too large"))
        if head.upgrade is not None or method == "CONNECT":
            head.raw = head.rebuild_raw()
            self._last = True
        elif not head.keep_alive:
            self._last = True
        self._on_request(head)

    def on_body(self, bytes body):
        self._body_seen += len(body)
        if self._body_seen > self._max_body:
            self._fail(_HTTPError(413, "Request body too large"))
        self._on_body(body)

    def on_message_complete(self):
        self._in_message = False
        if self._last:
            self.finished = True
        self._on_end()
