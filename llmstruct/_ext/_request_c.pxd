# The compiled twin of _request_py.py: the build compiles that file as
# _request_c with these declarations (Cython's pure Python mode). Keep the
# fields in step with Request.__slots__ there.

cdef class Headers:
    cdef public object raw


cdef class Request:
    cdef public object method
    cdef public object path
    cdef public object query_string
    cdef public object raw_headers
    cdef public object client
    cdef public object http_version
    cdef public object path_params
    cdef public object route
    cdef public bint public
    cdef public bint websocket
    cdef public object request_id
    cdef public double started
    cdef public object _state
    cdef public object _source
    cdef public object _query
    cdef public object _headers
