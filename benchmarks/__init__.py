"""Benchmark scripts; their results, with the commands that made them, go in BENCHMARKS.md.

Each script writes to a scratch folder outside the repository unless ``--out``
names another: the published results in ``benchmarks/results/`` change only when
``--out benchmarks/results`` says so, and never from a ``--quick`` run.
"""
from pathlib import Path

#: The published results, which BENCHMARKS.md quotes.
PUBLISHED = Path(__file__).resolve().parent / "results"
#: Where runs write by default.
SCRATCH = Path.home() / ".cache" / "cascade-bench"


def output_path(out, quick=False):
    """The ``--out`` path, refused inside :data:`PUBLISHED` for a ``--quick`` run."""
    out = Path(out)
    if quick and PUBLISHED in (out.resolve(), *out.resolve().parents):
        raise SystemExit(f"a --quick run is not published: give --out a folder outside {PUBLISHED}")
    return out
