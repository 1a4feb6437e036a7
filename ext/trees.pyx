"""Kernels for growing regression trees on pixel-difference splits, one level at a time.

Samples are rows: ``pixels (n, P)`` uint8 feature values and ``residuals (n, D)``
float32 regression targets. ``node_of[i]`` is the node sample ``i`` sits in,
numbered within the current level (0 .. 2**level - 1). A split sends a sample
to the left child when ``pixels[u] - pixels[v] > threshold``.

``cascade.trees`` drives these kernels: it draws the candidate splits, picks the
best from the sums, and splits the sample range into chunks that threads may
run at once (every kernel releases the GIL). Sums are kept per fixed-size chunk
and added up afterwards in a fixed order, so the result does not depend on
how many threads ran.
"""
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t

cnp.import_array()


def split_sums(const uint8_t[:, ::1] pixels,
               const float[:, ::1] residuals,
               const int32_t[::1] node_of,
               const cnp.intp_t[:, ::1] split_u,
               const cnp.intp_t[:, ::1] split_v,
               const float[:, ::1] split_threshold,
               float[:, :, :, ::1] sums,
               int64_t[:, :, ::1] counts,
               Py_ssize_t chunk_size,
               Py_ssize_t first_chunk,
               Py_ssize_t stop_chunk):
    """Add each sample's residual into the sums of the candidate splits that send it left.

    split_u, split_v, split_threshold: (n_nodes, C) candidates per node
    sums:   (n_chunks, n_nodes, C + 1, D) float32, zeroed by the caller; slot C
            receives every sample of the node (the node total)
    counts: (n_chunks, n_nodes, C + 1) the matching sample counts
    Only chunks ``first_chunk .. stop_chunk - 1`` (of ``chunk_size`` samples) are done.
    """
    cdef Py_ssize_t n = pixels.shape[0], n_points = pixels.shape[1], dim = residuals.shape[1]
    cdef Py_ssize_t n_nodes = split_u.shape[0], n_candidates = split_u.shape[1]
    if residuals.shape[0] != n or node_of.shape[0] != n:
        raise ValueError("pixels, residuals and node_of disagree on the number of samples")
    if (split_v.shape[0] != n_nodes or split_threshold.shape[0] != n_nodes
            or split_v.shape[1] != n_candidates or split_threshold.shape[1] != n_candidates):
        raise ValueError("split_u, split_v and split_threshold must all be (n_nodes, C)")
    if (sums.shape[1] != n_nodes or sums.shape[2] != n_candidates + 1 or sums.shape[3] != dim
            or counts.shape[0] != sums.shape[0] or counts.shape[1] != n_nodes
            or counts.shape[2] != n_candidates + 1):
        raise ValueError("sums must be (n_chunks, n_nodes, C + 1, D) and counts (n_chunks, n_nodes, C + 1)")
    if chunk_size < 1 or not 0 <= first_chunk <= stop_chunk <= sums.shape[0]:
        raise ValueError("chunk_size must be positive and the chunk range inside the sums array")
    _check_range(split_u, n_points, "split_u")
    _check_range(split_v, n_points, "split_v")
    _check_nodes(node_of, n_nodes)

    cdef Py_ssize_t chunk, i, j, c, d, start, stop
    cdef const float* row
    cdef float* acc
    with nogil:
        for chunk in range(first_chunk, stop_chunk):
            start = chunk * chunk_size
            stop = min(n, start + chunk_size)
            for i in range(start, stop):
                j = node_of[i]
                row = &residuals[i, 0]
                for c in range(n_candidates + 1):
                    if c < n_candidates and not (
                            <int>pixels[i, split_u[j, c]] - <int>pixels[i, split_v[j, c]]
                            > split_threshold[j, c]):
                        continue
                    acc = &sums[chunk, j, c, 0]
                    for d in range(dim):
                        acc[d] += row[d]
                    counts[chunk, j, c] += 1


def route(const uint8_t[:, ::1] pixels,
          int32_t[::1] node_of,
          const cnp.intp_t[::1] split_u,
          const cnp.intp_t[::1] split_v,
          const float[::1] split_threshold):
    """Move every sample one level down: node ``j`` -> ``2j`` (left) or ``2j + 1`` (right)."""
    cdef Py_ssize_t n = pixels.shape[0], n_nodes = split_u.shape[0], i, j
    if node_of.shape[0] != n:
        raise ValueError("pixels and node_of disagree on the number of samples")
    if split_v.shape[0] != n_nodes or split_threshold.shape[0] != n_nodes:
        raise ValueError("split_u, split_v and split_threshold must all be (n_nodes,)")
    _check_range(split_u[None, :], pixels.shape[1], "split_u")
    _check_range(split_v[None, :], pixels.shape[1], "split_v")
    _check_nodes(node_of, n_nodes)
    with nogil:
        for i in range(n):
            j = node_of[i]
            node_of[i] = 2 * j + (0 if (<int>pixels[i, split_u[j]] - <int>pixels[i, split_v[j]]
                                        > split_threshold[j]) else 1)


def subtract_leaves(float[:, ::1] residuals,
                    const int32_t[::1] leaf_of,
                    const float[:, ::1] leaf_values):
    """``residuals[i] -= leaf_values[leaf_of[i]]`` for every sample."""
    cdef Py_ssize_t n = residuals.shape[0], dim = residuals.shape[1], i, d
    cdef const float* value
    if leaf_of.shape[0] != n or leaf_values.shape[1] != dim:
        raise ValueError("residuals (n, D), leaf_of (n,) and leaf_values (n_leaves, D) disagree")
    _check_nodes(leaf_of, leaf_values.shape[0])
    with nogil:
        for i in range(n):
            value = &leaf_values[leaf_of[i], 0]
            for d in range(dim):
                residuals[i, d] -= value[d]


def leaf_sums(const float[:, ::1] rows,
              const int32_t[::1] leaf_of,
              double[:, ::1] out):
    """``out[j] += sum of rows[i] over the samples i with leaf_of[i] == j``, in sample order."""
    cdef Py_ssize_t n = rows.shape[0], dim = rows.shape[1], i, d
    cdef double* acc
    if leaf_of.shape[0] != n or out.shape[1] != dim:
        raise ValueError("rows (n, D), leaf_of (n,) and out (n_leaves, D) disagree")
    _check_nodes(leaf_of, out.shape[0])
    with nogil:
        for i in range(n):
            acc = &out[leaf_of[i], 0]
            for d in range(dim):
                acc[d] += rows[i, d]


cdef int _check_range(const cnp.intp_t[:, :] indices, Py_ssize_t size, str name) except -1:
    cdef Py_ssize_t a, b
    for a in range(indices.shape[0]):
        for b in range(indices.shape[1]):
            if indices[a, b] < 0 or indices[a, b] >= size:
                raise ValueError(f"{name} index {indices[a, b]} out of range [0, {size})")
    return 0


cdef int _check_nodes(const int32_t[::1] node_of, Py_ssize_t n_nodes) except -1:
    cdef Py_ssize_t i, bad = -1
    with nogil:
        for i in range(node_of.shape[0]):
            if node_of[i] < 0 or node_of[i] >= n_nodes:
                bad = i
                break
    if bad != -1:
        raise ValueError(f"node index {node_of[bad]} out of range [0, {n_nodes})")
    return 0
