"""Splitting work over threads; the compiled loops release the GIL, so threads run in parallel."""
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def effective_jobs(n_jobs):
    """Threads for ``n_jobs`` by scikit-learn's convention: None -> 1, -1 -> all cores, -2 -> all but one."""
    if n_jobs is None:
        return 1
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer or None, got {n_jobs!r}")
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return int(n_jobs)


def map_chunks(function, n_items, n_jobs):
    """Call ``function(slice)`` on contiguous chunks covering ``range(n_items)``, one per thread."""
    n_threads = min(effective_jobs(n_jobs), n_items)
    if n_threads <= 1:
        if n_items:
            function(slice(0, n_items))
        return
    bounds = np.linspace(0, n_items, n_threads + 1).astype(int)
    chunks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    with ThreadPoolExecutor(len(chunks)) as pool:
        list(pool.map(function, chunks))


def map_in_order(function, items, n_jobs):
    """``function(item)`` for each item, computed on ``n_jobs`` threads, yielded in the items' order;
    at most two results a thread wait to be taken, so memory stays bounded however many items."""
    n_threads = effective_jobs(n_jobs)
    if n_threads <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(n_threads) as pool:
        pending = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * n_threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
