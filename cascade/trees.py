"""Regression trees on shape-indexed pixel differences, grown level by level by ``ext/trees.pyx``.

A tree of depth ``d`` is stored as flat arrays: ``2**d - 1`` split nodes in
heap order (node ``j`` has children ``2j + 1`` and ``2j + 2``), each a feature
pair ``(u, v)`` and a threshold, and ``2**d`` leaves. A sample goes left when
``pixels[u] - pixels[v] > threshold``. Splits are chosen among random
candidates to maximise the sum over children of ``|sum of residuals|^2 / count``,
the reduction in squared error (Kazemi & Sullivan 2014, eq. 8).
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ._ext import trees as _trees

#: Samples per chunk of the split sums. Fixed, so that sums are added in one order
#: whatever the number of threads: ``n_jobs`` never changes a model.
CHUNK_SIZE = 2048


@dataclass
class GrownTree:
    split_u: np.ndarray          # (n_splits,) feature index
    split_v: np.ndarray          # (n_splits,) feature index
    split_threshold: np.ndarray  # (n_splits,) float32
    leaf_sums: np.ndarray        # (n_leaves, D) float64 sum of the residuals reaching each leaf
    leaf_counts: np.ndarray      # (n_leaves,) samples reaching each leaf; (n_leaves, D) knowing each coordinate
    leaf_of: np.ndarray          # (n,) int32 leaf each sample reached


class PairSampler:
    """Draws feature pairs ``(u, v)``, ``u != v``, with probability ``exp(-|x_u - x_v| / scale)``.

    This is the exponential prior of Kazemi & Sullivan on the distance between
    the two pixels of a split, measured here in the mean-shape unit frame.
    """

    def __init__(self, positions, scale):
        distance = np.linalg.norm(positions[:, None] - positions[None], axis=2)
        weight = np.exp(-distance / scale)
        np.fill_diagonal(weight, 0.0)
        self.n_points = len(positions)
        self.cumulative = np.cumsum(weight.ravel())
        self.cumulative /= self.cumulative[-1]

    def draw(self, rng, shape):
        flat = np.searchsorted(self.cumulative, rng.random(shape), side="right")
        flat = np.minimum(flat, len(self.cumulative) - 1)
        return flat // self.n_points, flat % self.n_points


class TreeGrower:
    """Grows trees on one fixed set of samples, splitting the work over ``n_jobs`` threads."""

    def __init__(self, pixels, residuals, n_jobs=1, present=None):
        self.pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        self.residuals = residuals
        self.present = present
        for name, rows in (("residuals", residuals), ("present", present)):
            if rows is not None and (rows.dtype != np.float32 or not rows.flags.c_contiguous):
                raise TypeError(f"{name} must be a C-contiguous float32 array")
        self.n_chunks = max(1, -(-len(pixels) // CHUNK_SIZE))
        self.n_jobs = max(1, min(n_jobs, self.n_chunks))
        bounds = np.linspace(0, self.n_chunks, self.n_jobs + 1).astype(int)
        self.chunk_ranges = list(zip(bounds[:-1], bounds[1:]))
        self.executor = ThreadPoolExecutor(self.n_jobs) if self.n_jobs > 1 else None

    def close(self):
        if self.executor is not None:
            self.executor.shutdown()

    def grow(self, candidate_u, candidate_v, candidate_threshold):
        """Grow one tree; candidates are ``(n_splits, C)`` arrays, one row per split node.

        ``candidate_threshold`` is such an array, or a function ``(u, v, node_of)``
        giving the ``(n_nodes, C)`` thresholds of one level's candidates from the
        samples' current nodes (see :func:`sample_thresholds`).
        """
        n_splits, n_candidates = candidate_u.shape
        depth = int(np.log2(n_splits + 1))
        dim = self.residuals.shape[1]
        node_of = np.zeros(len(self.pixels), dtype=np.int32)
        split_u = np.empty(n_splits, dtype=np.intp)
        split_v = np.empty(n_splits, dtype=np.intp)
        split_threshold = np.empty(n_splits, dtype=np.float32)
        for level in range(depth):
            first, n_nodes = 2 ** level - 1, 2 ** level
            nodes = slice(first, first + n_nodes)
            u = np.ascontiguousarray(candidate_u[nodes], dtype=np.intp)
            v = np.ascontiguousarray(candidate_v[nodes], dtype=np.intp)
            threshold = (candidate_threshold(u, v, node_of) if callable(candidate_threshold)
                         else candidate_threshold[nodes])
            threshold = np.ascontiguousarray(threshold, dtype=np.float32)
            sums, counts = self._split_sums(self.residuals, node_of, u, v, threshold)
            if self.present is not None:
                # A residual held at 0 where its coordinate is missing must not count as
                # a sample that needs no move: each coordinate's mean is over those knowing it.
                counts = self._split_sums(self.present, node_of, u, v, threshold)[0]
            left, n_left = sums[:, :n_candidates], counts[:, :n_candidates]
            right = sums[:, n_candidates, None] - left
            n_right = counts[:, n_candidates, None] - n_left
            gain = split_gain(left, n_left) + split_gain(right, n_right)
            best = gain.argmax(axis=1)
            rows = np.arange(n_nodes)
            split_u[nodes], split_v[nodes] = u[rows, best], v[rows, best]
            split_threshold[nodes] = threshold[rows, best]
            _trees.route(self.pixels, node_of, split_u[nodes], split_v[nodes], split_threshold[nodes])
        # The last level's sums already hold every leaf's total: left child 2j, right 2j + 1.
        leaf_sums = np.stack([left[rows, best], right[rows, best]], axis=1).reshape(-1, dim)
        leaf_counts = np.stack([n_left[rows, best], n_right[rows, best]], axis=1)
        leaf_counts = leaf_counts.reshape(len(leaf_sums), *counts.shape[2:])
        return GrownTree(split_u, split_v, split_threshold, leaf_sums, leaf_counts, node_of)

    def _split_sums(self, rows, node_of, u, v, threshold):
        """Per node and candidate, the sums of ``rows`` sent left (slot ``C``: the node's total),
        ``(n_nodes, C + 1, D)`` float64, and the samples counted, ``(n_nodes, C + 1)``."""
        n_nodes, n_candidates = u.shape
        sums = np.zeros((self.n_chunks, n_nodes, n_candidates + 1, rows.shape[1]), dtype=np.float32)
        counts = np.zeros((self.n_chunks, n_nodes, n_candidates + 1), dtype=np.int64)
        self._run(lambda first_chunk, stop_chunk: _trees.split_sums(
            self.pixels, rows, node_of, u, v, threshold, sums, counts, CHUNK_SIZE, first_chunk, stop_chunk))
        return sums.sum(axis=0, dtype=np.float64), counts.sum(axis=0)

    def _run(self, task):
        if self.executor is None:
            task(0, self.n_chunks)
        else:
            list(self.executor.map(lambda bounds: task(*bounds), self.chunk_ranges))


def split_gain(sums, counts):
    """``sum_d sums[..., d]^2 / counts``: the squared error a child's mean removes, from its
    ``(..., D)`` residual sums and its samples, ``(...)``, or ``(..., D)`` per coordinate."""
    if counts.ndim == sums.ndim:
        return (sums ** 2 / np.maximum(counts, 1)).sum(axis=-1)
    return (sums ** 2).sum(axis=-1) / np.maximum(counts, 1)


def sample_thresholds(pixels, rng, n_probe=4096):
    """A threshold function for :meth:`TreeGrower.grow` that splits at the data.

    Each candidate's threshold is the pixel difference of a random sample in its
    node, less 0.5: the samples differing at least as much go left. So a candidate
    splits its node where its samples are, unless the sample drawn has the node's
    smallest difference (thresholds from a fixed range, as dlib draws them, often
    send every sample one way). Samples come from one random probe set of
    ``n_probe`` per tree, which keeps this cheap.
    """
    probe = rng.choice(len(pixels), size=min(n_probe, len(pixels)), replace=False)

    def thresholds(u, v, node_of):
        n_nodes, n_candidates = u.shape
        nodes = node_of[probe]
        order = np.argsort(nodes, kind="stable")
        counts = np.bincount(nodes, minlength=n_nodes)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = (rng.random((n_nodes, n_candidates)) * np.maximum(counts, 1)[:, None]).astype(np.intp)
        member = probe[order[np.minimum(starts[:, None] + rank, len(probe) - 1)]]
        difference = pixels[member, u].astype(np.float32) - pixels[member, v]
        return np.where(counts[:, None] > 0, difference - 0.5, 0.0)

    return thresholds


def leaves_of(pixels, split_u, split_v, split_threshold):
    """The leaf (0 .. n_splits) each row of ``pixels`` reaches in one tree, ``(n,)`` int32."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    node_of = np.zeros(len(pixels), dtype=np.int32)
    depth = int(np.log2(len(split_u) + 1))
    for level in range(depth):
        nodes = slice(2 ** level - 1, 2 ** (level + 1) - 1)
        _trees.route(pixels, node_of, np.ascontiguousarray(split_u[nodes], dtype=np.intp),
                     np.ascontiguousarray(split_v[nodes], dtype=np.intp),
                     np.ascontiguousarray(split_threshold[nodes], dtype=np.float32))
    return node_of


def leaf_sums(rows, leaf_of, n_leaves):
    """``(n_leaves, D)`` float64 sums of the float32 ``rows`` reaching each leaf (compiled)."""
    out = np.zeros((n_leaves, rows.shape[1]))
    _trees.leaf_sums(rows, np.ascontiguousarray(leaf_of, dtype=np.int32), out)
    return out


class BoostedResiduals:
    """The ``(n, D)`` float32 residuals of a stage's samples as its weak regressors are added.

    Where a target coordinate is missing (``present`` 0) the residual is held at 0, so
    it pulls no regressor, and the stage's update is kept apart from the residuals.
    """

    def __init__(self, residuals, present):
        self.values = residuals
        self.present = present
        self._at_start = residuals.copy() if present is None else None
        self._minus_update = None if present is None else np.zeros_like(residuals)

    def counts(self, leaf_of, n_leaves):
        """Samples reaching each leaf with each coordinate known: ``(n_leaves, 1 or D)``."""
        if self.present is None:
            return np.bincount(leaf_of, minlength=n_leaves)[:, None]
        return leaf_sums(self.present, leaf_of, n_leaves)

    def subtract(self, leaf_of, leaf_values):
        """Take one regressor's leaf values (``(n_leaves, D)``) off the samples reaching them."""
        subtract_leaves(self.values, leaf_of, leaf_values)
        if self.present is not None:
            subtract_leaves(self._minus_update, leaf_of, leaf_values)
            self.values *= self.present

    def update(self):
        """What the regressors so far add to every sample, ``(n, D)``."""
        return self._at_start - self.values if self.present is None else -self._minus_update


def subtract_leaves(residuals, leaf_of, leaf_values):
    """``residuals[i] -= leaf_values[leaf_of[i]]`` in place (compiled)."""
    _trees.subtract_leaves(residuals, leaf_of, np.ascontiguousarray(leaf_values, dtype=np.float32))
