"""A cascade of pixel-difference trees at prediction time: the C runtime's loop, called with the
GIL released.

ERT, LBF and ESR share it. The loop itself, and how it is built around reading the leaves, is
``runtime/src/forest.c`` (the library that C programs link too: one implementation for Python,
boards, phones and the browser); this module describes a fitted model's NumPy arrays to it
(:class:`CheckedModel`, checked once), packs the split nodes (:func:`pack_splits`) and places
five-point starts (:func:`frames_from_points`). ``cascade.forest`` holds the NumPy twin that tests
compare with.
"""
cimport numpy as cnp
import threading

import numpy as np
from libc.stdint cimport int16_t, int32_t, uint16_t
from libc.math cimport isfinite
from libc.stdlib cimport free

from imageview cimport ImageView, fill_view, image_views

cnp.import_array()

ctypedef fused leaf_t:
    float
    int16_t


cdef extern from "internal.h" nogil:
    enum: CASCADE_MAX_STAGE_POINTS
    ctypedef struct cascade_forest:
        Py_ssize_t n_landmarks, n_stages, n_points, n_trees, n_splits, width
        const float* mean_shape
        const int32_t* anchors
        const float* offsets
        const uint16_t* nodes
        const void* leaves
        int leaves_int16
        const double* leaf_scale
        const float* basis
        const int32_t* int16_chunks
        int mean_frame_updates
    void cascade_int16_chunks(const cascade_forest* forest, int32_t* chunks)
    size_t cascade_forest_scratch_size(const cascade_forest* forest)
    void cascade_forest_run(const cascade_forest* forest, const ImageView* views, Py_ssize_t n_faces,
                            const double* boxes, const float* start_shapes, const double* rolls,
                            int zero_outside, void* scratch, double* out, double* seconds)
    void cascade_place_on_points(const double* mean_points, const double* points, Py_ssize_t k, double* box,
                                 double* roll)


#: Feature points a stage may have: a split node holds its two as uint16 (:func:`pack_splits`).
MAX_STAGE_POINTS = CASCADE_MAX_STAGE_POINTS


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
    cdef object chunks
    cdef object scratch                # each thread's scratch buffer, made on its first call
    cdef cascade_forest forest         # pointers into the arrays above, which it keeps alive

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
        self.chunks = np.ones(anchors.shape[0], dtype=np.int32)
        cdef const uint16_t[:, :, :, ::1] nodes = self.split_nodes
        cdef const float[:, ::1] mean = mean_shape
        cdef const int32_t[:, ::1] anchor_view = anchors
        cdef const float[:, :, ::1] offset_view = offsets
        cdef const double[::1] scale = leaf_scale
        cdef const float[:, :, ::1] basis = leaf_basis
        cdef int32_t[::1] chunks = self.chunks
        self.forest.n_landmarks, self.forest.n_stages = mean_shape.shape[0], anchors.shape[0]
        self.forest.n_points, self.forest.n_trees = anchors.shape[1], split_u.shape[1]
        self.forest.n_splits, self.forest.width = split_u.shape[2], leaf_values.shape[3]
        self.forest.mean_shape = &mean[0, 0]
        self.forest.anchors = &anchor_view[0, 0] if anchors.size else NULL
        self.forest.offsets = &offset_view[0, 0, 0] if offsets.size else NULL
        self.forest.nodes = &nodes[0, 0, 0, 0] if self.split_nodes.size else NULL
        self.forest.leaves = <const void*>cnp.PyArray_DATA(leaf_values)
        self.forest.leaves_int16 = leaf_values.dtype == np.int16
        self.forest.leaf_scale = &scale[0] if leaf_scale.size else NULL
        self.forest.basis = NULL if leaf_basis is None else &basis[0, 0, 0]
        self.forest.int16_chunks = &chunks[0] if chunks.shape[0] else NULL
        self.forest.mean_frame_updates = mean_frame_updates
        cascade_int16_chunks(&self.forest, &chunks[0] if chunks.shape[0] else NULL)
        self.scratch = threading.local()

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
        """The C loop (``cascade_forest_run``) on checked arrays; the per-call inputs are checked here."""
        cdef Py_ssize_t n_faces = boxes.shape[0], n_landmarks = self.forest.n_landmarks
        if len(images) != n_faces or boxes.shape[1] != 4:
            raise ValueError("need one image per box, boxes (n, 4)")
        if out.shape[0] != n_faces or out.shape[1] != n_landmarks or out.shape[2] != 2:
            raise ValueError("out must be (n_faces, n_landmarks, 2)")
        if phase_seconds is not None and phase_seconds.shape[0] != 3:
            raise ValueError("phase_seconds must have 3 entries")
        if start_shapes is not None and (start_shapes.shape[0] != n_faces or start_shapes.shape[1] != n_landmarks
                                         or start_shapes.shape[2] != 2):
            raise ValueError("start_shapes must be (n_faces, n_landmarks, 2)")
        if rolls is not None and rolls.shape[0] != n_faces:
            raise ValueError("rolls must be (n_faces,)")
        if n_faces == 0:
            return
        # A thread's scratch is kept for its next calls: a fresh one each call would be paged in
        # again (about 130 KB for ert-68: 15 us a face a call).
        buffer = getattr(self.scratch, "buffer", None)
        if buffer is None:
            buffer = self.scratch.buffer = np.empty(cascade_forest_scratch_size(&self.forest), np.uint8)
        cdef void* scratch = cnp.PyArray_DATA(buffer)
        cdef ImageView* views = image_views(images)
        cdef const float* starts = NULL if start_shapes is None else &start_shapes[0, 0, 0]
        cdef const double* turns = NULL if rolls is None else &rolls[0]
        cdef double* seconds = NULL if phase_seconds is None else &phase_seconds[0]
        try:
            with nogil:
                cascade_forest_run(&self.forest, views, n_faces, &boxes[0, 0], starts, turns, zero_outside,
                                   scratch, &out[0, 0, 0], seconds)
        finally:
            free(views)

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
        cascade_place_on_points(&mean_points[0, 0], &points[0, 0], mean_points.shape[0], &box[0, 0], &roll[0])
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
            cascade_place_on_points(&mean_points[0, 0], &points[i, 0, 0], mean_points.shape[0], &boxes[i, 0],
                                    &rolls[i])
    return boxes_array, rolls_array



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
