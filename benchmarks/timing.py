"""Measuring done one way for every benchmark (and the memory test): time as the median of
repeats after a warm-up call; memory as the rise of the process's peak resident size."""
import gc
import re
import statistics
import time
from pathlib import Path


def median_seconds(function, repeats, warm_up=True):
    """Median wall time of ``function()`` over ``repeats`` calls (at least one), after a warm-up call."""
    if warm_up:
        function()
    times = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_growth_mib(function):
    """How far this process's peak resident memory rises above its current size while
    ``function`` runs, in MiB (Linux: the peak is reset through /proc/self/clear_refs,
    which raises OSError where that is not allowed)."""
    def status(key):
        return int(re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    function()
    return status("VmHWM") - before
