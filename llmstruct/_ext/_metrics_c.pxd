# The compiled twin of _metrics_py.py: the build compiles that file as
# _metrics_c with these declarations (Cython's pure Python mode).

cdef class Metrics:
    cdef public object state
    cdef public double started
    cdef public dict _series
    cdef public dict refused
