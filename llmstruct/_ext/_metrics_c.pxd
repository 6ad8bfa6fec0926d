# The compiled twin of _metrics_py.py: the build compiles that file as
# _metrics_c with these declarations (Cython's pure Python mode).

cimport cython

from llmstruct._ext._app_c cimport Response as CResponse

cdef class Metrics:
    cdef public object state
    cdef public double started
    cdef public dict _series
    cdef public dict refused

    @cython.locals(series=list, elapsed=double, bound=double, index=Py_ssize_t)
    cpdef on_response(self, request, CResponse response)
