"""Timing done one way for every benchmark: a warm-up call, then the median of repeats."""
import statistics
import time


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
