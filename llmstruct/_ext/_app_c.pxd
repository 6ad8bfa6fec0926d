# The compiled twin of _app_py.py: the build compiles that file as _app_c
# (Cython's pure Python mode). The responses are extension types: every request
# builds one and the protocol and middleware read its fields, which compiled
# code typed with these declarations reads straight from the struct. App and the
# rest stay ordinary Python classes (handlers and tests subclass and extend
# them); what the build buys there is the dispatch code compiled.

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
