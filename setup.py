"""Build llmstruct, compiling the Cython twins in llmstruct/_ext when possible.

Every compiled twin ``llmstruct/_ext/_<name>_c`` has a pure-Python twin
``_<name>_py.py``: either written in Cython (``_<name>_c.pyx``), or the pure twin's
own source compiled with the types of ``_<name>_c.pxd`` (pure Python mode). The
selector module ``llmstruct/_ext/<name>.py`` picks one at import. So a build
without a C compiler (or with ``LLMSTRUCT_NO_EXTENSIONS=1``) still gives a working
package: it just runs the twins. The build says which one it made.
"""

from __future__ import annotations

import functools
import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EXT_DIR = os.path.join("llmstruct", "_ext")


@functools.cache
def _twin_sources():
    """llmstruct/_ext/twin_sources.py, loaded by path (once): the package is not
    importable yet while it is being built."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_llmstruct_twin_sources", os.path.join(EXT_DIR, "twin_sources.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _extensions() -> list[Extension]:
    if os.environ.get("LLMSTRUCT_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("llmstruct: Cython not available, building the pure-Python twins only")
        return []
    modules = []
    for path in sorted(glob.glob(os.path.join("llmstruct", "_ext", "_*_c.p*"))):
        stem, kind = os.path.splitext(path)
        if kind == ".pyx":  # a twin written in Cython
            source = path
        elif kind == ".pxd" and not os.path.exists(stem + ".pyx"):
            # Cython's pure Python mode: the pure twin's own source, compiled with
            # the types this .pxd declares (it is found by the module's name).
            source = stem[: -len("_c")] + "_py.py"
            _forget_if_stale(source[:-3] + ".c")
        else:
            continue
        modules.append(Extension(stem.replace(os.sep, "."), [source], extra_compile_args=["-O2"]))
    # Annotations are for type checkers: the pure-mode twins' ``phase: str`` must
    # not become a C-level type check.
    directives = {"language_level": "3", "annotation_typing": False}
    return cythonize(modules, compiler_directives=directives, quiet=True)


def _forget_if_stale(c_file: str) -> None:
    """Delete a pure-mode twin's generated C if any .pxd is newer than it.

    cythonize rebuilds ``_<name>_py.py`` when it or ``_<name>_py.pxd`` changes; the
    declarations are in ``_<name>_c.pxd`` (and what it cimports), which it does not
    track, so an edit there would leave the old build in place.
    """
    if not os.path.exists(c_file):
        return
    built = os.path.getmtime(c_file)
    declarations = glob.glob(os.path.join("llmstruct", "_ext", "*.pxd"))
    if any(os.path.getmtime(pxd) > built for pxd in declarations):
        os.remove(c_file)


class ReportingBuildExt(build_ext):
    """Compile what can be compiled and say which build this is."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: the twins still work
            self._report(f"pure-Python twins (compiling failed: {exc})")
            return
        names = ", ".join(ext.name.rsplit(".", 1)[-1] for ext in self.extensions)
        self._report(f"compiled extensions: {names}" if names else "pure-Python twins")

    def build_extension(self, ext: Extension) -> None:
        target = self.get_ext_fullpath(ext.name)
        module = ext.name.rsplit(".", 1)[-1]
        sources = _twin_sources()
        try:
            super().build_extension(ext)
        except Exception as exc:
            # An older build left in place would load instead of the pure twin, built
            # from other sources: remove it, so the failure shows as the pure twin.
            for stale in (target, sources.record_path(target, module)):
                if os.path.exists(stale):
                    os.remove(stale)
            self._report(f"{ext.name} not compiled ({exc}); its pure-Python twin is used")
        else:
            sources.write_record(target, EXT_DIR, module)

    def copy_extensions_to_source(self) -> None:
        """``--inplace`` (and editable installs): each built module and its build
        record into the source tree; where a module failed, the old in-place copy
        is removed rather than left to load."""
        sources = _twin_sources()
        build_py = self.get_finalized_command("build_py")
        for ext in self.extensions:
            inplace_file, regular_file = self._get_inplace_equivalent(build_py, ext)
            module = ext.name.rsplit(".", 1)[-1]
            record = sources.record_path
            # (setuptools' own copy also writes stubs; only Library extensions need
            # them, and the twins are plain Extensions.)
            for built, in_place in (
                (regular_file, inplace_file),
                (record(regular_file, module), record(inplace_file, module)),
            ):
                if os.path.exists(built):
                    self.copy_file(built, in_place, level=self.verbose)
                elif os.path.exists(in_place):
                    os.remove(in_place)

    @staticmethod
    def _report(message: str) -> None:
        # pip hides build output unless -v; stderr of the build is kept in its log.
        print(f"llmstruct build: {message}", file=sys.stderr)
        print(f"llmstruct build: {message}")


setup(ext_modules=_extensions(), cmdclass={"build_ext": ReportingBuildExt})
