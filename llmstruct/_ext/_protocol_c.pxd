# The compiled twin of _protocol_py.py: the build compiles that file as
# _protocol_c with these declarations (Cython's pure Python mode). Every
# attribute the source sets in __init__ is declared here; the methods of the
# per-request path are cpdef (C calls inside the module, still callable from
# Python); the loop's callbacks stay plain methods. ``@cython.locals`` types the
# cycles a method takes from the queue, so their fields are C reads too.

cimport cython

# Aliased: the source imports the Python name RequestHead, which a cimport would shadow.
from llmstruct._ext._httphead_c cimport RequestHead as CRequestHead
# The app's responses (the App's response_class, checked in _start before write).
from llmstruct._ext._app_c cimport Response as CResponse


cdef class HttpProtocol


cdef class Cycle:
    cdef public HttpProtocol proto
    cdef public CRequestHead head
    cdef public object request
    cdef public list chunks
    cdef public Py_ssize_t buffered
    cdef public Py_ssize_t received
    cdef public bint complete
    cdef public object error
    cdef public object waiter
    cdef public bint started
    cdef public bint done
    cdef public double deadline
    cdef public object task
    cdef public bint continue_sent

    cpdef wake(self)
    cpdef write(self, CResponse response)


cdef class HttpProtocol:
    cdef public object state
    cdef public object app
    cdef public object _response_class
    cdef public object _request_class
    cdef public object limits
    cdef public object loop
    cdef public object transport
    cdef public object driver
    cdef public object client
    cdef public bint closing
    cdef public object _cycles
    cdef public object _error
    cdef public bint _parsing
    cdef public object _phase
    cdef public bint _head_seen
    cdef public object _timer
    cdef public double _timer_at
    cdef public double _deadline
    cdef public object _linger
    cdef public bint _read_paused
    cdef public bint write_paused
    cdef public list _drain_waiters
    cdef public object _send_timer
    cdef public Py_ssize_t _served
    cdef public bint _eof
    cdef public bint _running
    cdef public bint _detached
    cdef public bint _feeding
    cdef public bint _upgrade_pending
    cdef public object _handle
    cdef public object _time
    cdef public object _write
    cdef public object _feed
    cdef public Py_ssize_t _max_requests
    cdef public double _keepalive_timeout

    @cython.locals(cycle=Cycle)
    cpdef on_request(self, head)
    @cython.locals(cycle=Cycle)
    cpdef on_body(self, data)
    @cython.locals(cycle=Cycle)
    cpdef on_end(self)
    @cython.locals(cycle=Cycle)
    cpdef _run_queue(self)
    cpdef _start(self, Cycle cycle)
    cpdef bint keep_alive(self, Cycle cycle, CResponse response)
    cpdef complete(self, Cycle cycle, keep_alive, error=*)
    cpdef _set_phase(self, phase)
    cpdef _arm(self, double at)
    cpdef _cancel_timer(self)
    cpdef _pause_reading(self)
    cpdef _resume_reading(self)
    cpdef _close(self)
    cpdef _write_error(self, error)
