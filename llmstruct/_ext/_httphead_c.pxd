# RequestHead's fields, for the modules that read them as C fields
# (_protocol_c.pxd cimports it).

cdef class RequestHead:
    cdef public object method
    cdef public object target
    cdef public object http_version
    cdef public object headers
    cdef public bint keep_alive
    cdef public object content_length
    cdef public bint chunked
    cdef public object upgrade
    cdef public bint expect_continue
    cdef public object raw
