# The compiled twin of _app_py.py: the build compiles that file as _app_c
# (Cython's pure Python mode). Nothing is declared: App, the responses and the
# rest stay ordinary Python classes (handlers and tests subclass and extend
# them); what the build buys is the dispatch code compiled.
