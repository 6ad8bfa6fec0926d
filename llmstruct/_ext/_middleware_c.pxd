# The compiled twin of _middleware_py.py: the build compiles that file as
# _middleware_c with these declarations (Cython's pure Python mode). Only the
# middleware whose hooks run on every request are extension types here; the
# others are compiled as ordinary classes. (CORS stays one: it sets its
# on_response to None to drop out of the chain, which a C method cannot.)

cimport cython

# The hooks' responses: the App's (an extension type compiled, its fields read directly).
from llmstruct._ext._app_c cimport Response as CResponse

cdef class RequestId:
    cdef public str _prefix
    cdef public unsigned long long _count

    cpdef on_request(self, request)
    @cython.locals(request_id=str)
    cpdef on_response(self, request, CResponse response)


cdef class Gzip:
    cdef public object minimum
    cdef public object level
    cdef public object stream_above

    cpdef on_response(self, request, CResponse response)
