"""Compiled extensions built from ``ext/*.pyx`` by setup.py (see ext/ for sources).

A source checkout has none until they are built: importing ``cascade`` from the
repository root picks up that tree (the current directory comes first on
``sys.path``), not the installed package, and must say what to do.
"""
import importlib.util
from pathlib import Path

_MODULES = ("sampling", "trees", "forest", "dlib_format")

_missing = [name for name in _MODULES if importlib.util.find_spec(f"{__name__}.{name}") is None]
if _missing:
    raise ImportError(
        f"cascade's compiled extensions ({', '.join(_missing)}) are not built in {Path(__file__).parent}: "
        "this is a source tree, imported here because the current directory comes first on sys.path. "
        "Build them in place from the repository root with `pip install -e .` (an editable install), "
        "or run from another directory to use the installed package.")
