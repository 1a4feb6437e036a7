"""A cascade of pixel-difference trees at prediction time, in C with the GIL released.

ERT and LBF share this loop: their fitted models are the same flat arrays (an
LBF stage's global regression, one weight row per leaf, is a leaf value table).
Per face: start from the mean shape (or a given start) in the face's unit frame; at each stage fit
the similarity from the mean shape to the current shape, read the stage's
shape-indexed pixels, walk every tree and add the leaf it reaches to the shape.
The model is the flat arrays below; this loop reads nothing else.

The model's leaves (MBs) do not fit in a core's cache, so the loop is built
around reading them: faces go through in blocks of ``BLOCK``, sharing each
tree's leaf rows; per stage every tree is walked first, then the reached rows
are added with the rows of the trees ahead already being fetched (about
``PREFETCH_ROWS`` rows in flight), so memory latency overlaps with the adding.
A walk is a chain of dependent reads, so about ``WALKS_TOGETHER`` walks (trees x
faces) go down level by level at once, over split nodes packed 8 bytes each
(:func:`pack_splits`), the next trees' nodes fetched meanwhile; a call of one face
walks them with its nodes in registers (:func:`walk_one`). int16 rows are added in int16,
as many trees at a time as cannot overflow (:func:`int16_chunks`), then widened.

A stage's leaves may be stored compressed: ``leaf_basis`` ``(T, R, 2L)`` holds each
stage's R basis vectors of shape space, and a leaf row then holds R coefficients; the
reached rows are summed as coefficients and the sum projected once per stage onto the
basis (R adds a tree instead of 2L). :class:`CheckedModel` checks a model's arrays once
and predicts without checking them again, so a call of one face does not pay for
checking every split of the model.

The arithmetic is dlib's, so that models read from dlib files predict exactly
what dlib does: the shape and the feature offsets are float32, a feature
position is ``float32(A @ offset + shape[anchor])`` before the box maps it to
pixels in double, and leaves are added to the float32 shape one tree at a time
(int16 leaves are summed exactly per stage, then scaled).
``cascade.forest`` holds the NumPy twin that tests compare with.
"""
cimport numpy as cnp
import numpy as np
from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t
from libc.math cimport atan2, cos, isfinite, sin, sqrt
from libc.stdlib cimport free, malloc
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from imageview cimport ImageView, fill_view, grey_of, image_views, pixel_address

cnp.import_array()

ctypedef fused leaf_t:
    float
    int16_t

ctypedef fused real_t:
    float
    double

cdef enum:
    BLOCK = 32            # faces walked together
    PREFETCH_ROWS = 64    # leaf rows in flight: a small block (one face a call) looks further ahead
    READ_GROUP = 64       # feature points whose pixels are prefetched together
    WALKS_TOGETHER = 16   # tree walks (trees x faces of a block) taken down level by level at once

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define CASCADE_PREFETCH(address) __builtin_prefetch(address)
    #else
    #define CASCADE_PREFETCH(address) ((void)0)
    #endif
    """
    void CASCADE_PREFETCH(const void* address) noexcept nogil


#: Feature points a stage may have: a split node holds its two as uint16 (:func:`pack_splits`).
MAX_STAGE_POINTS = 65536


cdef class CheckedModel:
    """A fitted model's arrays, checked once (:func:`_check_model`) and made read-only, so that
    :meth:`predict` needs no check of them: what a tree cascade's prediction holds on to. The
    arrays are the model's own (no copy); read-only, they cannot change under it.

    mean_shape:      (L, 2) unit frame
    anchors:         (T, P) landmark of each stage's feature points
    offsets:         (T, P, 2) their offsets in the mean-shape unit frame
    split_u/v, split_threshold: (T, K, 2**depth - 1) split nodes in heap order
    leaf_values:     (T, K, 2**depth, W) float32, or int16 scaled by leaf_scale[t]; W = 2L,
                     or R coefficients of the stage's basis vectors with ``leaf_basis``
    leaf_scale:      (T,) multiplier of stage t's int16 leaf values (ignored for float32)
    leaf_basis:      if given, (T, R, 2L): each stage's basis vectors (compressed leaves)
    mean_frame_updates: a stage's summed leaves are a shape update in the mean shape's
                     frame, turned by the stage's similarity before being added (LBF);
                     otherwise they are added as they are (ERT, dlib)

    The loop walks the splits packed 8 bytes a node (:func:`pack_splits`), which needs at
    most 65,536 feature points a stage.
    """

    cdef readonly tuple arrays
    cdef readonly object split_nodes
    cdef bint int16_leaves, mean_frame_updates
    # Typed views of the arrays, taken once: taking them costs about a microsecond a call.
    cdef const float[:, ::1] mean_shape
    cdef const int32_t[:, ::1] anchors
    cdef const float[:, :, ::1] offsets
    cdef const uint16_t[:, :, :, ::1] nodes
    cdef const float[:, :, :, ::1] float_leaves
    cdef const int16_t[:, :, :, ::1] int16_leaf_values
    cdef const double[::1] scale
    cdef const float[:, :, ::1] basis
    cdef int32_t[::1] int16_chunks

    def __init__(self, mean_shape, anchors, offsets, split_u, split_v, split_threshold, leaf_values,
                 leaf_scale, leaf_basis=None, bint mean_frame_updates=False):
        arrays = (mean_shape, anchors, offsets, split_u, split_v, split_threshold, leaf_values, leaf_scale,
                  leaf_basis)
        for array in arrays:
            if array is not None:
                array.flags.writeable = False
        _check_model(*arrays)
        self.arrays = arrays
        self.split_nodes = pack_splits(split_u, split_v, split_threshold, anchors.shape[1])
        self.int16_leaves = leaf_values.dtype == np.int16
        self.mean_frame_updates = mean_frame_updates
        self.mean_shape, self.anchors, self.offsets = mean_shape, anchors, offsets
        self.nodes, self.scale, self.basis = self.split_nodes, leaf_scale, leaf_basis
        self.int16_chunks = np.ones(anchors.shape[0], dtype=np.int32)
        if self.int16_leaves:
            self.int16_leaf_values = leaf_values
            int16_chunks(self.int16_leaf_values, self.int16_chunks)
        else:
            self.float_leaves = leaf_values

    def holds(self, list arrays):
        """Whether ``arrays`` are the very arrays checked (the model's attributes were not replaced)."""
        cdef Py_ssize_t i
        if len(arrays) != len(self.arrays):
            return False
        for i in range(len(arrays)):
            if arrays[i] is not self.arrays[i]:
                return False
        return True

    def predict(self, list images, const double[:, ::1] boxes, double[:, :, ::1] out, bint zero_outside=False,
                double[::1] phase_seconds=None, const float[:, :, ::1] start_shapes=None,
                const double[::1] rolls=None):
        """Fill ``out`` (n, L, 2) with the shapes, in pixels, of the faces in ``boxes`` (n, 4).

        images:          one uint8 image per face (HxW or HxWx3 BGR)
        zero_outside:    pixels off the image read 0 (dlib) rather than the nearest border pixel
        phase_seconds:   if given, (3,): seconds spent reading pixels, walking trees and adding
                         leaves are added to it (for profiling; the clock reads cost ~1 %)
        start_shapes:    if given, (n, L, 2): each face's start in its box's unit frame, in
                         place of the mean shape (ESR's several starts per face)
        rolls:           if given, (n,): each face's start (the mean shape or its own) is first
                         turned by its roll, in radians, about the box's centre (a face placed
                         on five points, :func:`frames_from_points`)
        """
        self._predict(images, boxes, out, zero_outside, phase_seconds, start_shapes, rolls)

    cdef _predict(self, list images, const double[:, ::1] boxes, double[:, :, ::1] out, bint zero_outside,
                  double[::1] phase_seconds, const float[:, :, ::1] start_shapes, const double[::1] rolls):
        if self.int16_leaves:
            _run(images, boxes, self.mean_shape, self.anchors, self.offsets, self.nodes, self.int16_leaf_values,
                 self.scale, self.basis, out, zero_outside, self.mean_frame_updates, phase_seconds, start_shapes,
                 rolls, self.int16_chunks)
        else:
            _run(images, boxes, self.mean_shape, self.anchors, self.offsets, self.nodes, self.float_leaves,
                 self.scale, self.basis, out, zero_outside, self.mean_frame_updates, phase_seconds, start_shapes,
                 rolls, self.int16_chunks)

    def predict_on_points(self, image, const double[:, ::1] points, const double[:, ::1] mean_points,
                          double[:, :, ::1] out, bint zero_outside=False):
        """Fill ``out`` (1, L, 2) with the shape, in pixels, of one face started from its five (K)
        ``points`` (K, 2), pixels, on which ``mean_points`` (K, 2), the mean shape's in its unit
        frame, are placed (:func:`frames_from_points`): the path of a face a call, checks
        included, without NumPy's per-call costs. Returns whether every coordinate of ``out`` is
        finite (from checked points, only a damaged model gives others). ValueError for points
        that are not finite or that place no frame on the image (collapsed, or off it)."""
        cdef ImageView view
        fill_view(&view, image)
        if points.shape[0] != mean_points.shape[0] or points.shape[1] != 2 or mean_points.shape[1] != 2:
            raise ValueError("points and mean_points must both be (K, 2)")
        cdef Py_ssize_t j
        for j in range(points.shape[0]):
            if not (isfinite(points[j, 0]) and isfinite(points[j, 1])):
                raise ValueError("points contains NaN or infinite coordinates")
        cdef double[:, ::1] box = np.empty((1, 4))
        cdef double[::1] roll = np.empty(1)
        place_on_points(mean_points, &points[0, 0], &box[0, 0], &roll[0])
        if not (box[0, 2] > box[0, 0]):
            raise ValueError(f"the boxes of the points[0] = {list(box[0])} has zero or negative size "
                             "(need right > left and bottom > top): the points are collapsed")
        if not (box[0, 0] < view.width and box[0, 1] < view.height and box[0, 2] > 0 and box[0, 3] > 0):
            raise ValueError(f"the boxes of the points[0] = {list(box[0])} lies outside its "
                             f"{view.height}x{view.width} image")
        self._predict([image], box, out, zero_outside, None, None, roll)
        for j in range(out.shape[1]):
            if not (isfinite(out[0, j, 0]) and isfinite(out[0, j, 1])):
                return False
        return True


cdef _run(list images,
          const double[:, ::1] boxes,
          const float[:, ::1] mean_shape,
          const int32_t[:, ::1] anchors,
          const float[:, :, ::1] offsets,
          const uint16_t[:, :, :, ::1] split_nodes,
          const leaf_t[:, :, :, ::1] leaf_values,
          const double[::1] leaf_scale,
          const float[:, :, ::1] leaf_basis,
          double[:, :, ::1] out,
          bint zero_outside,
          bint mean_frame_updates,
          double[::1] phase_seconds,
          const float[:, :, ::1] start_shapes,
          const double[::1] rolls,
          const int32_t[::1] int16_chunks):
    """The loop, on arrays :func:`_check_model` has passed (the per-call inputs are checked here)."""
    cdef Py_ssize_t n_faces = boxes.shape[0], n_landmarks = mean_shape.shape[0]
    cdef Py_ssize_t n_stages = anchors.shape[0], n_points = anchors.shape[1]
    cdef Py_ssize_t n_trees = split_nodes.shape[1], n_splits = split_nodes.shape[2]
    cdef Py_ssize_t dim = 2 * n_landmarks
    cdef bint compressed = leaf_basis is not None
    cdef Py_ssize_t width = leaf_values.shape[3]
    if len(images) != n_faces or boxes.shape[1] != 4:
        raise ValueError("need one image per box, boxes (n, 4)")
    if out.shape[0] != n_faces or out.shape[1] != n_landmarks or out.shape[2] != 2:
        raise ValueError("out must be (n_faces, n_landmarks, 2)")
    if phase_seconds is not None and phase_seconds.shape[0] != 3:
        raise ValueError("phase_seconds must have 3 entries")
    cdef bint timed = phase_seconds is not None
    cdef bint own_start = start_shapes is not None
    if own_start and (start_shapes.shape[0] != n_faces or start_shapes.shape[1] != n_landmarks
                      or start_shapes.shape[2] != 2):
        raise ValueError("start_shapes must be (n_faces, n_landmarks, 2)")
    cdef bint rolled = rolls is not None
    if rolled and rolls.shape[0] != n_faces:
        raise ValueError("rolls must be (n_faces,)")
    if n_faces == 0:
        return

    cdef ImageView* views = image_views(images)
    cdef float* shapes = <float*>malloc(BLOCK * dim * sizeof(float))
    cdef int32_t* sums = <int32_t*>malloc(BLOCK * width * sizeof(int32_t))
    cdef int16_t* partial_sums = <int16_t*>malloc(BLOCK * width * sizeof(int16_t))
    cdef float* coefficients = <float*>malloc(BLOCK * width * sizeof(float))
    cdef uint8_t* pixels = <uint8_t*>malloc(BLOCK * n_points * sizeof(uint8_t))
    cdef int32_t* reached = <int32_t*>malloc(BLOCK * n_trees * sizeof(int32_t))
    cdef float* update = <float*>malloc(BLOCK * dim * sizeof(float))
    cdef double similarity[2 * BLOCK]
    cdef float* adding_to = update if mean_frame_updates else shapes
    cdef Py_ssize_t block, first, size, g, t, k, d, j, ahead, trees_ahead, trees_together
    cdef int chunk = 1, in_partial = 0
    cdef const leaf_t* leaf
    cdef Py_ssize_t row_bytes = width * sizeof(leaf_t)
    cdef Py_ssize_t node_bytes = n_splits * 4 * sizeof(uint16_t)
    cdef float coefficient
    cdef double clock = 0.0
    cdef double seconds[3]
    seconds[0] = seconds[1] = seconds[2] = 0.0
    try:
        if (shapes == NULL or sums == NULL or partial_sums == NULL or coefficients == NULL or pixels == NULL
                or reached == NULL or update == NULL):
            raise MemoryError()
        with nogil:
            for block in range((n_faces + BLOCK - 1) // BLOCK):
                first = block * BLOCK
                size = min(BLOCK, n_faces - first)
                trees_ahead = max(4, PREFETCH_ROWS // size)
                trees_together = max(1, WALKS_TOGETHER // size)
                for g in range(size):
                    for d in range(dim):
                        if own_start:
                            shapes[g * dim + d] = start_shapes[first + g, d // 2, d % 2]
                        else:
                            shapes[g * dim + d] = mean_shape[d // 2, d % 2]
                    if rolled:
                        turn_about_centre(&shapes[g * dim], n_landmarks, rolls[first + g])
                for t in range(n_stages):
                    if timed:
                        clock = now()
                    for g in range(size):
                        similarity_from_mean(mean_shape, &shapes[g * dim], &similarity[2 * g])
                        read_features(&views[first + g], &boxes[first + g, 0], &similarity[2 * g],
                                      &shapes[g * dim], &anchors[t, 0], &offsets[t, 0, 0], n_points,
                                      &pixels[g * n_points], zero_outside)
                    if timed:
                        clock = lap(clock, &seconds[0])
                    # Walk every tree first: the walks only read pixels and the small split
                    # arrays, and knowing all leaves up front lets their rows be prefetched.
                    # A walk is a chain of dependent reads, so several (trees x faces) go down
                    # level by level together and their reads overlap.
                    for j in range((n_trees + trees_together - 1) // trees_together):
                        k = j * trees_together
                        if k + trees_together < n_trees:      # the next trees' nodes, while these are walked
                            prefetch_row(&split_nodes[t, k + trees_together, 0, 0],
                                         min(trees_together, n_trees - k - trees_together) * node_bytes)
                        if size == 1 and k + WALKS_TOGETHER <= n_trees:
                            walk_one(&split_nodes[t, k, 0, 0], n_splits, pixels, &reached[k * BLOCK])
                        else:
                            walk_together(&split_nodes[t, k, 0, 0], min(trees_together, n_trees - k), n_splits,
                                          pixels, n_points, size, &reached[k * BLOCK])
                    if timed:
                        clock = lap(clock, &seconds[1])
                    if leaf_t is int16_t:
                        for d in range(size * width):
                            sums[d] = 0
                            partial_sums[d] = 0
                        chunk, in_partial = int16_chunks[t], 0
                    if compressed:
                        for d in range(size * width):
                            coefficients[d] = 0
                    if mean_frame_updates:
                        for d in range(size * dim):
                            update[d] = 0
                    for k in range(n_trees):
                        ahead = k + trees_ahead
                        if ahead < n_trees:
                            for g in range(size):
                                prefetch_row(&leaf_values[t, ahead, reached[ahead * BLOCK + g], 0], row_bytes)
                        for g in range(size):
                            leaf = &leaf_values[t, k, reached[k * BLOCK + g], 0]
                            if leaf_t is float:
                                if compressed:
                                    for d in range(width):
                                        coefficients[g * width + d] += leaf[d]
                                else:
                                    for d in range(dim):
                                        adding_to[g * dim + d] += leaf[d]
                            elif chunk == 1:
                                for d in range(width):
                                    sums[g * width + d] += leaf[d]
                            else:
                                for d in range(width):
                                    partial_sums[g * width + d] += leaf[d]
                        if leaf_t is int16_t and chunk > 1:
                            in_partial += 1
                            if in_partial == chunk or k == n_trees - 1:
                                for d in range(size * width):
                                    sums[d] += partial_sums[d]
                                    partial_sums[d] = 0
                                in_partial = 0
                    if leaf_t is int16_t:
                        if compressed:
                            for d in range(size * width):
                                coefficients[d] = <float>(sums[d] * leaf_scale[t])
                        else:
                            for d in range(size * dim):
                                adding_to[d] += <float>(sums[d] * leaf_scale[t])
                    if compressed:
                        # One projection a stage: the summed coefficients onto the stage's basis.
                        for g in range(size):
                            for j in range(width):
                                coefficient = coefficients[g * width + j]
                                for d in range(dim):
                                    adding_to[g * dim + d] += coefficient * leaf_basis[t, j, d]
                    if mean_frame_updates:
                        for g in range(size):
                            add_turned(&update[g * dim], &similarity[2 * g], n_landmarks, &shapes[g * dim])
                    if timed:
                        lap(clock, &seconds[2])
                for g in range(size):
                    unit_to_pixels(&shapes[g * dim], n_landmarks, &boxes[first + g, 0], &out[first + g, 0, 0])
        if timed:
            for d in range(3):
                phase_seconds[d] += seconds[d]
    finally:
        free(views)
        free(shapes)
        free(sums)
        free(partial_sums)
        free(coefficients)
        free(pixels)
        free(reached)
        free(update)


cdef inline double now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


cdef inline double lap(double since, double* total) noexcept nogil:
    """Add the time since ``since`` to ``total``; returns the current time."""
    cdef double t = now()
    total[0] += t - since
    return t


cdef inline int goes_left(const uint16_t* packed, const uint8_t* pixels) noexcept nogil:
    """Whether a face whose ``pixels`` are these goes left at the split node ``packed``
    (:func:`pack_splits`): u - v > threshold, as dlib. A node's children are 2 node + 1 (left) and
    2 node + 2, and a walk steps to ``2 * node + 2 - goes_left(...)``: branch-free, since which way
    a face goes is unpredictable and a branch would mispredict."""
    return <int>pixels[packed[0]] - <int>pixels[packed[1]] > <int>(<int16_t>packed[2])


cdef inline void walk_together(const uint16_t* split_nodes, Py_ssize_t n_trees, Py_ssize_t n_splits,
                               const uint8_t* pixels, Py_ssize_t n_points, Py_ssize_t n_faces,
                               int32_t* reached) noexcept nogil:
    """The leaf (0 .. n_splits) each of ``n_trees`` consecutive trees (their packed nodes from
    ``split_nodes``) sends each of ``n_faces`` faces to, into ``reached[k * BLOCK + g]``; every
    walk goes down the trees' log2(n_splits + 1) levels (n_splits >= 1, :func:`_check_model`)."""
    cdef Py_ssize_t k, g, level = n_splits
    cdef const uint16_t* tree
    cdef int32_t* nodes
    for k in range(n_trees):
        for g in range(n_faces):
            reached[k * BLOCK + g] = 0
    while level > 0:
        level >>= 1
        for k in range(n_trees):
            tree = &split_nodes[4 * k * n_splits]
            nodes = &reached[k * BLOCK]
            for g in range(n_faces):
                nodes[g] = 2 * nodes[g] + 2 - goes_left(&tree[4 * nodes[g]], &pixels[g * n_points])
    for k in range(n_trees):
        for g in range(n_faces):
            reached[k * BLOCK + g] -= <int32_t>n_splits


cdef inline void walk_one(const uint16_t* split_nodes, Py_ssize_t n_splits, const uint8_t* pixels,
                          int32_t* reached) noexcept nogil:
    """:func:`walk_together` of ``WALKS_TOGETHER`` trees for one face (a call of one face), the
    walks' nodes in a small local array the compiler keeps in registers, not in ``reached``."""
    cdef int32_t node[WALKS_TOGETHER]
    cdef Py_ssize_t k, level = n_splits
    for k in range(WALKS_TOGETHER):
        node[k] = 0
    while level > 0:
        level >>= 1
        for k in range(WALKS_TOGETHER):
            node[k] = 2 * node[k] + 2 - goes_left(&split_nodes[4 * (k * n_splits + node[k])], pixels)
    for k in range(WALKS_TOGETHER):
        reached[k * BLOCK] = node[k] - <int32_t>n_splits


cdef void int16_chunks(const int16_t[:, :, :, ::1] leaf_values, int32_t[::1] chunks) noexcept nogil:
    """Per stage, how many trees' int16 leaf values always sum within int16: the loop sums that
    many trees' rows in int16 (eight values an SSE2 instruction, against four in int32) before
    widening them, exactly. Leaves kept at ``bits`` bits (:meth:`cascade.forest.ForestCascade.compress`)
    lie within 2^(bits - 1), so 10 bits sum 63 trees at a time; 1: each row goes to the int32
    sums as it is."""
    cdef Py_ssize_t t, i, n = leaf_values.shape[1] * leaf_values.shape[2] * leaf_values.shape[3]
    cdef const int16_t* values
    cdef int largest
    for t in range(leaf_values.shape[0]):
        values = &leaf_values[t, 0, 0, 0]
        largest = 1
        for i in range(n):
            largest = max(largest, -<int>values[i] if values[i] < 0 else <int>values[i])
        chunks[t] = max(1, 32767 // largest)


def pack_splits(split_u, split_v, split_threshold, n_points):
    """The split nodes as the loop walks them, ``(T, K, S, 4)`` uint16: feature ``u``, feature
    ``v``, the threshold as int16 bits, and a pad to 8 bytes (a tree's nodes in two cache lines
    instead of three arrays). A pixel difference is a whole number in [-255, 255], so
    ``u - v > threshold`` is ``u - v > floor(threshold)``, with floor clipped to [-256, 255]:
    every split goes the same way (NaN compares false, as 255 does)."""
    if n_points > MAX_STAGE_POINTS:
        raise ValueError(f"at most {MAX_STAGE_POINTS:,} feature points a stage, got {n_points}")
    nodes = np.zeros((*split_u.shape, 4), dtype=np.uint16)
    nodes[..., 0] = split_u
    nodes[..., 1] = split_v
    threshold = np.floor(np.nan_to_num(split_threshold, nan=255.0, posinf=255.0, neginf=-256.0))
    nodes[..., 2] = np.clip(threshold, -256, 255).astype(np.int16).view(np.uint16)
    nodes.flags.writeable = False
    return nodes


cdef inline void turn_about_centre(float* shape, Py_ssize_t n_landmarks, double angle) noexcept nogil:
    """Turn a unit-frame shape by ``angle`` radians about the frame's centre (0.5, 0.5)."""
    cdef double c = cos(angle), s = sin(angle), x, y
    cdef Py_ssize_t j
    for j in range(n_landmarks):
        x = <double>shape[2 * j] - 0.5
        y = <double>shape[2 * j + 1] - 0.5
        shape[2 * j] = <float>(c * x - s * y + 0.5)
        shape[2 * j + 1] = <float>(s * x + c * y + 0.5)


def frames_from_points(const double[:, ::1] mean_points, const double[:, :, ::1] points):
    """``(boxes (n, 4), rolls (n,))``: the frames placing ``mean_points`` (K, 2), unit frame, on
    each face's ``points`` (n, K, 2), pixels, by least squares; see
    :func:`cascade.shapes.frames_from_points`, which documents the convention."""
    cdef Py_ssize_t n = points.shape[0], i
    if mean_points.shape[1] != 2 or points.shape[1] != mean_points.shape[0] or points.shape[2] != 2:
        raise ValueError("need mean_points (K, 2) and points (n, K, 2)")
    if mean_points.shape[0] < 2:
        raise ValueError("need at least 2 points to place a frame")
    boxes_array, rolls_array = np.empty((n, 4)), np.empty(n)
    cdef double[:, ::1] boxes = boxes_array
    cdef double[::1] rolls = rolls_array
    with nogil:
        for i in range(n):
            place_on_points(mean_points, &points[i, 0, 0], &boxes[i, 0], &rolls[i])
    return boxes_array, rolls_array


cdef void place_on_points(const double[:, ::1] mean_points, const double* points, double* box,
                          double* roll) noexcept nogil:
    """The least-squares similarity ``x -> A x + t`` (``A`` a scaled rotation [[a, -b], [b, a]])
    taking ``mean_points`` (K, 2) onto ``points`` (K x 2, row-major), as a square box (centre
    ``A (0.5, 0.5) + t``, side ``sqrt(a^2 + b^2)``) and a roll ``atan2(b, a)``."""
    cdef double ab[2]
    cdef double c[4]
    scaled_rotation(&mean_points[0, 0], points, mean_points.shape[0], ab, c)
    cdef double a = ab[0], b = ab[1], half = sqrt(a * a + b * b) / 2
    # t = p - A m, so the centre A (0.5, 0.5) + t is A ((0.5, 0.5) - m) + p.
    box[0] = a * (0.5 - c[0]) - b * (0.5 - c[1]) + c[2] - half
    box[1] = b * (0.5 - c[0]) + a * (0.5 - c[1]) + c[3] - half
    box[2] = box[0] + 2 * half
    box[3] = box[1] + 2 * half
    roll[0] = atan2(b, a)


cdef inline void prefetch_row(const void* row, Py_ssize_t n_bytes) noexcept nogil:
    """Prefetch the ceil(n_bytes / 64) lines from ``row``'s on: every line of the row when its offset
    in its line plus its length fit in as many, as a bundled leaf row's do in a table that starts on
    a line (:func:`cascade.io.cache_aligned`; from NumPy's 16-byte start, every other 96-byte row
    spanned a third line, left unfetched)."""
    cdef Py_ssize_t offset
    for offset in range(0, n_bytes, 64):
        CASCADE_PREFETCH(<const char*>row + offset)


cdef inline void unit_to_pixels(const float* shape, Py_ssize_t n_landmarks, const double* box,
                                double* out) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n_landmarks):
        out[2 * j] = <double>shape[2 * j] * (box[2] - box[0]) + box[0]
        out[2 * j + 1] = <double>shape[2 * j + 1] * (box[3] - box[1]) + box[1]


cdef inline void add_turned(const float* update, const double* similarity, Py_ssize_t n_landmarks,
                            float* shape) noexcept nogil:
    """``shape += A @ update`` point by point, ``A`` the similarity (float32, as features use it)."""
    cdef float a = <float>similarity[0], b = <float>similarity[1], dx, dy
    cdef Py_ssize_t j
    for j in range(n_landmarks):
        dx = update[2 * j]
        dy = update[2 * j + 1]
        shape[2 * j] += a * dx - b * dy
        shape[2 * j + 1] += b * dx + a * dy


cdef void read_features(const ImageView* view, const double* box, const double* similarity,
                        const float* shape, const int32_t* anchors, const float* offsets,
                        Py_ssize_t n_points, uint8_t* pixels, bint zero_outside) noexcept nogil:
    """Grey values at one stage's feature points for one face (dlib's float32 positions)."""
    cdef double a = similarity[0], b = similarity[1]
    cdef float m00 = <float>a, m01 = <float>-b, m10 = <float>b, m11 = <float>a
    cdef double left = box[0], top = box[1]
    cdef double width = box[2] - left, height = box[3] - top
    cdef Py_ssize_t group, first, p, stop, anchor
    cdef float dx, dy, u, v
    # Two passes per group of points: find and prefetch every address, then read. The
    # images of a block of faces outgrow the core's cache, and the reads are independent,
    # so this overlaps their latencies instead of waiting for each in turn.
    cdef const uint8_t* address[READ_GROUP]
    for group in range((n_points + READ_GROUP - 1) // READ_GROUP):
        first = group * READ_GROUP
        stop = min(first + READ_GROUP, n_points)
        for p in range(first, stop):
            anchor = anchors[p]
            dx = offsets[2 * p]
            dy = offsets[2 * p + 1]
            u = (m00 * dx + m01 * dy) + shape[2 * anchor]
            v = (m10 * dx + m11 * dy) + shape[2 * anchor + 1]
            address[p - first] = pixel_address(view, <double>u * width + left,
                                               <double>v * height + top, zero_outside)
            CASCADE_PREFETCH(address[p - first])
        for p in range(first, stop):
            pixels[p] = grey_of(view, address[p - first])


cdef void similarity_from_mean(const float[:, ::1] mean_shape, const float* shape,
                               double* similarity) noexcept nogil:
    """``(a, b)`` of the scaled rotation [[a, -b], [b, a]] fitting the mean shape onto ``shape``
    (least squares); the identity for a collapsed mean."""
    cdef double centres[4]
    if not scaled_rotation(&mean_shape[0, 0], shape, mean_shape.shape[0], similarity, centres):
        similarity[0] = 1.0
        similarity[1] = 0.0


cdef bint scaled_rotation(const real_t* source, const real_t* target, Py_ssize_t n, double* rotation,
                          double* centres) noexcept nogil:
    """Least squares ``target - t ~ [[a, -b], [b, a]] (source - s)`` over ``n`` points (x, y rows):
    ``rotation`` gets ``(a, b)``, ``centres`` the centroids ``(s, t)``; False (and a = b = 0)
    where the source's points all coincide."""
    cdef Py_ssize_t j
    cdef double mx = 0, my = 0, sx = 0, sy = 0, dot = 0, cross = 0, norm = 0, ux, uy, vx, vy
    for j in range(n):
        mx += source[2 * j]
        my += source[2 * j + 1]
        sx += target[2 * j]
        sy += target[2 * j + 1]
    mx /= n
    my /= n
    sx /= n
    sy /= n
    for j in range(n):
        ux = source[2 * j] - mx
        uy = source[2 * j + 1] - my
        vx = target[2 * j] - sx
        vy = target[2 * j + 1] - sy
        dot += ux * vx + uy * vy
        cross += ux * vy - uy * vx
        norm += ux * ux + uy * uy
    centres[0], centres[1], centres[2], centres[3] = mx, my, sx, sy
    rotation[0] = dot / norm if norm > 0 else 0.0
    rotation[1] = cross / norm if norm > 0 else 0.0
    return norm > 0


def _check_model(const float[:, ::1] mean_shape, const int32_t[:, ::1] anchors,
                 const float[:, :, ::1] offsets, const int32_t[:, :, ::1] split_u,
                 const int32_t[:, :, ::1] split_v, const float[:, :, ::1] split_threshold,
                 const leaf_t[:, :, :, ::1] leaf_values, const double[::1] leaf_scale,
                 const float[:, :, ::1] leaf_basis=None):
    """Refuse any array whose shape or indices would let the loop read out of bounds."""
    cdef Py_ssize_t n_stages = anchors.shape[0], n_points = anchors.shape[1]
    cdef Py_ssize_t n_trees = split_u.shape[1], n_splits = split_u.shape[2]
    cdef Py_ssize_t t, k, s
    if mean_shape.shape[0] < 1 or mean_shape.shape[1] != 2:
        raise ValueError("mean_shape must be (L, 2) with L >= 1")
    if offsets.shape[0] != n_stages or offsets.shape[1] != n_points or offsets.shape[2] != 2:
        raise ValueError("offsets must be (T, P, 2) to match anchors (T, P)")
    if (split_u.shape[0] != n_stages or split_v.shape[0] != n_stages
            or split_threshold.shape[0] != n_stages
            or split_v.shape[1] != n_trees or split_threshold.shape[1] != n_trees
            or split_v.shape[2] != n_splits or split_threshold.shape[2] != n_splits):
        raise ValueError("split_u, split_v and split_threshold must all be (T, K, n_splits)")
    cdef Py_ssize_t width = 2 * mean_shape.shape[0]
    if leaf_basis is not None:
        if (leaf_basis.shape[0] != n_stages or leaf_basis.shape[1] < 1
                or leaf_basis.shape[2] != 2 * mean_shape.shape[0]):
            raise ValueError("leaf_basis must be (T, R, 2L) with R >= 1")
        width = leaf_basis.shape[1]
    if (leaf_values.shape[0] != n_stages or leaf_values.shape[1] != n_trees
            or leaf_values.shape[2] != n_splits + 1 or leaf_values.shape[3] != width):
        raise ValueError("leaf_values must be (T, K, n_splits + 1, W): W = 2L, or R with leaf_basis (T, R, 2L)")
    if leaf_scale.shape[0] != n_stages:
        raise ValueError("leaf_scale must be (T,)")
    if n_splits < 1 or n_splits & (n_splits + 1):
        raise ValueError(f"{n_splits} split nodes do not make a complete binary tree of depth 1 or more")
    for t in range(n_stages):
        for s in range(n_points):
            if anchors[t, s] < 0 or anchors[t, s] >= mean_shape.shape[0]:
                raise ValueError(f"anchor {anchors[t, s]} out of range")
        for k in range(n_trees):
            for s in range(n_splits):
                if not (0 <= split_u[t, k, s] < n_points and 0 <= split_v[t, k, s] < n_points):
                    raise ValueError(f"split feature index out of range [0, {n_points})")
