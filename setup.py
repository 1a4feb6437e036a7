"""Build the compiled core: every ``ext/*.pyx`` becomes ``cascade._ext.<name>``, with the C
runtime's sources it calls (``runtime/``).

Metadata lives in pyproject.toml; this file only declares the Cython extensions,
which need NumPy's headers at build time.
"""
import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# -ffp-contract=off keeps a*b+c as two roundings, so compiled results equal the
# NumPy references bit for bit (no fused multiply-add where the target has one).
COMPILE_ARGS = ["-O3", "-ffp-contract=off"]
# Stripped (the modules a sixth of their size), unless the build asks for debugging symbols itself
# (CFLAGS="-g ...", as .ci/asan does, so that AddressSanitizer's reports name lines).
LINK_ARGS = [] if "-g" in os.environ.get("CFLAGS", "").split() else ["-s"]

#: The C runtime's sources each extension compiles in: the forest loop is the library's own
#: (runtime/src/forest.c), so that Python and C programs run one implementation.
RUNTIME_SOURCES = {"forest": ["runtime/src/forest.c"]}

extensions = [
    Extension(
        f"cascade._ext.{source.stem}",
        [str(source), *RUNTIME_SOURCES.get(source.stem, [])],
        include_dirs=[numpy.get_include(), "runtime/src"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=COMPILE_ARGS,
        extra_link_args=LINK_ARGS,
    )
    for source in sorted(Path("ext").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["ext"],
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
