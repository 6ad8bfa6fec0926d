# The compiled twin of _middleware_py.py: the build compiles that file as
# _middleware_c with these declarations (Cython's pure Python mode). Only the
# middleware whose hooks run on every request are extension types here; the
# others are compiled as ordinary classes. (CORS stays one: it sets its
# on_response to None to drop out of the chain, which a C method cannot.)

cdef class RequestId:
    cdef public object _format
    cdef public object _counter


cdef class Gzip:
    cdef public object minimum
    cdef public object level
    cdef public object stream_above
