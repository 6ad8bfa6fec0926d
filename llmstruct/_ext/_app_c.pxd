# The compiled twin of _app_py.py: the build compiles that file as _app_c
# (Cython's pure Python mode). The responses, the App and its handler entries are
# extension types: every request builds a response and goes through App.handle,
# and compiled code typed with these declarations reads their fields straight from
# the struct. Handlers and tests still subclass and extend them: App keeps a
# __dict__ for attributes of a subclass's or a test's own.

cimport cython


cdef class Response:
    cdef public object status
    cdef public object headers
    cdef public object body
    cdef public bint close
    cdef public bint streaming


cdef class JSONResponse(Response):
    pass


cdef class PlainTextResponse(Response):
    pass


cdef class StreamingResponse(Response):
    cdef public object content
    cdef public object _agen


@cython.locals(response=JSONResponse)
cpdef JSONResponse encoded_json(body, status_code=*)


cdef class _Handler:
    cdef public object fn
    cdef public bint is_async
    cdef public bint public


cdef class App:
    cdef dict __dict__
    cdef public object router
    cdef public object ws_router
    cdef public list middleware
    cdef public dict state
    cdef public list routes
    cdef public list _before
    cdef public tuple _after_all
    cdef public list _before_public
    cdef public list _refusal_hooks

    @cython.locals(entry=_Handler, chain=list, unwind=tuple)
    cpdef handle(self, request)
    @cython.locals(hook=object)
    cpdef _finish(self, request, response, tuple unwind)
