# cython: language_level=3
"""The request-head policy and the response-head serialiser: the compiled twin.

Same names, behaviour, errors and bytes as ``_httphead_py``, which is the
specification and carries the docstrings; the comments here only say how this
twin is made fast. ``HTTPError`` and the status lines are imported from the
Python twin, so there is one exception class and one table of reason phrases.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from libc.string cimport memchr, memcpy
from libc.time cimport time as c_time, time_t

cdef extern from "Python.h":
    str PyUnicode_DecodeLatin1(const char* data, Py_ssize_t size, const char* errors)

import re
import time as _time_module

from llmstruct._ext._httphead_py import HTTPError, STATUS_LINES, _status_line
from llmstruct._ext._httphead_py import response_head as _py_response_head

__all__ = [
    "HTTPError",
    "RequestHead",
    "inspect_head",
    "split_target",
    "response_head",
    "http_date",
    "STATUS_LINES",
]

_DIGITS = re.compile(rb"[0-9]{1,18}")

# Interesting header names -> a small code; every other name misses one dict probe.
cdef enum:
    _HOST = 1
    _LENGTH = 2
    _CONNECTION = 3
    _CODING = 4
    _UPGRADE = 5
    _EXPECT = 6

cdef dict _SPECIAL = {
    b"host": _HOST,
    b"content-length": _LENGTH,
    b"connection": _CONNECTION,
    b"transfer-encoding": _CODING,
    b"upgrade": _UPGRADE,
    b"expect": _EXPECT,
}


@cython.final
cdef class RequestHead:  # its fields are in _httphead_c.pxd (the protocol cimports it)
    def __init__(self, method, target, http_version, headers):
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.keep_alive = True
        self.content_length = None
        self.chunked = False
        self.upgrade = None
        self.expect_continue = False
        self.raw = None

    @property
    def has_body(self):
        return self.chunked or bool(self.content_length)

    def rebuild_raw(self):
        lines = [b"%s %s HTTP/%s" % (self.method.encode(), self.target, self.http_version.encode())]
        lines.extend(name + b": " + value for name, value in self.headers)
        return b"\r\n".join(lines) + b"\r\n\r\n"


cdef inline bint _has_token(bytes tokens, bytes token):
    for part in tokens.split(b","):
        if part.strip() == token:
            return True
    return False


def inspect_head(str method, bytes target, str http_version, list headers, limits):
    cdef int hosts = 0
    cdef list lengths = None
    cdef list codings = None
    cdef bytes connection = b""
    cdef object upgrade = None
    cdef object expect = None
    cdef PyObject* found
    cdef long kind
    cdef RequestHead head
    cdef bint v11 = http_version == "1.1"
    if not v11 and http_version != "1.0":
        if http_version == "0.9":
            raise HTTPError(400, "Invalid request line")
        raise HTTPError(505, "HTTP version not supported")
    if len(headers) > limits.max_header_count:
        raise HTTPError(431, "Too many header fields")
    for name, value in headers:
        found = PyDict_GetItem(_SPECIAL, name)
        if found is NULL:
            continue
        kind = <long><object>found
        if kind == _HOST:
            hosts += 1
        elif kind == _LENGTH:
            if lengths is None:
                lengths = []
            lengths.append(value)
        elif kind == _CONNECTION:
            connection = connection + b"," + value if connection else value
        elif kind == _CODING:
            if codings is None:
                codings = []
            codings.append(value)
        elif kind == _UPGRADE:
            upgrade = value
        else:
            expect = value
    if hosts != 1 and (hosts or v11):
        raise HTTPError(400, "Missing Host header" if not hosts else "Multiple Host headers")
    head = RequestHead.__new__(RequestHead)
    head.method = method
    head.target = target
    head.http_version = http_version
    head.headers = headers
    head.content_length = None
    head.upgrade = None
    head.raw = None
    if codings is not None:
        if lengths is not None:
            raise HTTPError(400, "Content-Length with Transfer-Encoding")
        if not v11:
            raise HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if len(codings) != 1 or codings[0].strip().lower() != b"chunked":
            raise HTTPError(501, "Only Transfer-Encoding: chunked is supported")
        head.chunked = True
    elif lengths is not None:
        if len(lengths) != 1:
            raise HTTPError(400, "Multiple Content-Length headers")
        value = lengths[0].strip()
        if _DIGITS.fullmatch(value) is None:
            raise HTTPError(400, "Invalid Content-Length")
        head.content_length = int(value)
        if head.content_length > limits.max_body_bytes:
            raise HTTPError(413, "Request body too large")
    cdef bytes tokens
    if not connection:
        head.keep_alive = v11
        tokens = b""
    else:
        tokens = connection.lower()
        if v11:
            head.keep_alive = b"close" not in tokens or not _has_token(tokens, b"close")
        else:
            head.keep_alive = b"keep-alive" in tokens and _has_token(tokens, b"keep-alive")
    if upgrade is not None and _has_token(tokens, b"upgrade"):
        head.upgrade = upgrade.strip().lower()
    if expect is not None and expect.strip().lower() == b"100-continue":
        head.expect_continue = True
    return head


def split_target(bytes target):
    # Origin form, the norm: one memchr for the "?" and the path decoded from
    # the buffer, with no intermediate bytes objects.
    cdef const char* data = PyBytes_AS_STRING(target)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(target)
    cdef const char* mark
    cdef Py_ssize_t cut
    if size and data[0] == 47:  # "/"
        mark = <const char*>memchr(data, 63, size)  # "?"
        if mark is NULL:
            return PyUnicode_DecodeLatin1(data, size, NULL), b""
        cut = mark - data
        return PyUnicode_DecodeLatin1(data, cut, NULL), target[cut + 1:]
    path, sep, query = target.partition(b"?")
    if path[:1] != b"/" and b"://" in path:
        rest = path.split(b"://", 1)[1]
        slash = rest.find(b"/")
        path = rest[slash:] if slash >= 0 else b"/"
    return path.decode("latin-1"), query


# The Date line, rebuilt when the second changes: libc time(2) is read per
# response instead of Python's time.time().
cdef time_t _date_second = -1
cdef bytes _date_value = b""
cdef bytes _date_line = b""

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


cdef _set_date(time_t now):
    global _date_second, _date_value, _date_line
    t = _time_module.gmtime(now)
    _date_value = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    ).encode("ascii")
    _date_line = b"date: " + _date_value + b"\r\n"
    _date_second = now


def http_date():
    cdef time_t now = c_time(NULL)
    if now != _date_second:
        _set_date(now)
    return _date_value


cdef dict _STATUS_LINES = STATUS_LINES


cdef inline char* _put(char* out, bytes data):
    cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
    memcpy(out, PyBytes_AS_STRING(data), size)
    return out + size


cdef inline char* _put_c(char* out, const char* data, Py_ssize_t size):
    memcpy(out, data, size)
    return out + size


def response_head(int status, headers, content_length, bint keep_alive, bint http10=False,
                  body=b""):
    # Two passes over the headers -- sizes, then one memcpy each into the
    # result -- instead of a list of parts and a join; the Content-Length
    # digits are written by hand. The fast path takes (bytes, bytes) tuples
    # only, which cannot change between the two passes; anything else (a
    # bytearray value, a length that is no plain non-negative int) goes to
    # the pure twin.
    cdef time_t now = c_time(NULL)
    cdef PyObject* found
    cdef Py_ssize_t size
    cdef unsigned long long length = 0
    cdef char digits[20]
    cdef int ndigits = 0
    cdef bint framed_length = False
    cdef bint chunked = False
    cdef char* out
    if now != _date_second:
        _set_date(now)
    found = PyDict_GetItem(_STATUS_LINES, status)
    cdef bytes line = <bytes>found if found is not NULL else _status_line(status)
    if type(headers) is not list:
        headers = list(headers)
    if type(body) is not bytes:
        return _py_response_head(status, headers, content_length, keep_alive, http10, body)
    size = PyBytes_GET_SIZE(line) + PyBytes_GET_SIZE(_date_line) + 2 + PyBytes_GET_SIZE(body)
    for item in <list>headers:
        if type(item) is not tuple or len(<tuple>item) != 2:
            return _py_response_head(status, headers, content_length, keep_alive, http10, body)
        name, value = <tuple>item
        if type(name) is not bytes or type(value) is not bytes:
            return _py_response_head(status, headers, content_length, keep_alive, http10, body)
        size += PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(value) + 4
    if status < 200 or status == 204 or status == 304:
        pass
    elif content_length is not None:
        if type(content_length) is not int or not 0 <= content_length < 10**18:
            return _py_response_head(status, headers, content_length, keep_alive, http10, body)
        length = content_length
        while True:
            digits[ndigits] = <char>(48 + length % 10)  # "0" + the digit
            ndigits += 1
            length //= 10
            if length == 0:
                break
        framed_length = True
        size += 18 + ndigits  # "content-length: " digits CRLF
    elif not http10:
        chunked = True
        size += 28
    if not keep_alive:
        size += 19
    elif http10:
        size += 24
    result = PyBytes_FromStringAndSize(NULL, size)
    out = PyBytes_AS_STRING(result)
    out = _put(out, line)
    out = _put(out, _date_line)
    for item in <list>headers:
        name, value = <tuple>item
        out = _put(out, <bytes>name)
        out = _put_c(out, ": ", 2)
        out = _put(out, <bytes>value)
        out = _put_c(out, "\r\n", 2)
    if framed_length:
        out = _put_c(out, "content-length: ", 16)
        while ndigits:
            ndigits -= 1
            out[0] = digits[ndigits]
            out += 1
        out = _put_c(out, "\r\n", 2)
    elif chunked:
        out = _put_c(out, "transfer-encoding: chunked\r\n", 28)
    if not keep_alive:
        out = _put_c(out, "connection: close\r\n", 19)
    elif http10:
        out = _put_c(out, "connection: keep-alive\r\n", 24)
    out = _put_c(out, "\r\n", 2)
    _put(out, <bytes>body)
    return result

