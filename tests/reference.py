"""A slow NumPy twin of the tree cascades' compiled prediction (ext/forest.pyx): the tests' oracle,
and a reading of the algorithm for anyone who does not read Cython."""
import numpy as np

from cascade.features import pixels_at
from cascade.forest import every_start, median_over_starts
from cascade.shapes import similarity_fit


def predict_reference(model, images, boxes):
    """``(n, L, 2)`` landmarks of ``model`` (a fitted ERT, LBF or ESR), as the compiled loop gives them.

    A model with start shapes (``initial_shapes_``, ESR) runs from each and takes the median.
    It follows the compiled loop's (and dlib's) arithmetic: float32 shapes and
    offsets, feature positions rounded to float32 before the box maps them to pixels.
    """
    starts = getattr(model, "initial_shapes_", None)
    if starts is None:
        return reference_run(model, images, boxes, None)
    return median_over_starts(reference_run(model, *every_start(images, boxes, starts)), len(images))


def reference_run(model, images, boxes, start_shapes):
    """One run per face, from ``start_shapes`` ``(n, L, 2)`` in the unit frame or the mean shape."""
    f32 = np.float32
    boxes = np.asarray(boxes, dtype=np.float64)
    origin, size = boxes[:, None, :2], boxes[:, None, 2:] - boxes[:, None, :2]
    n_splits = model.split_u_.shape[2]
    faces = np.arange(len(images))
    shapes = (np.repeat(model.mean_shape_[None], len(images), axis=0) if start_shapes is None
              else np.asarray(start_shapes, dtype=f32))                           # float32
    for stage in range(len(model.anchors_)):
        A, _ = similarity_fit(model.mean_shape_, shapes)
        A = A.astype(f32)
        offsets, anchors = model.offsets_[stage], model.anchors_[stage]
        dx, dy = offsets[:, 0], offsets[:, 1]
        unit = np.stack([(A[:, None, 0, 0] * dx + A[:, None, 0, 1] * dy) + shapes[:, anchors, 0],
                         (A[:, None, 1, 0] * dx + A[:, None, 1, 1] * dy) + shapes[:, anchors, 1]], axis=2)
        positions = unit.astype(np.float64) * size + origin                        # (n, P, 2) pixels
        pixels = pixels_at(images, positions, outside=model.outside, reference=True).astype(f32)
        basis = getattr(model, "leaf_basis_", None)
        width = model.leaf_values_.shape[3]
        sums = np.zeros((len(images), width), dtype=np.int64)
        # Leaves go onto the shape itself, or (LBF) onto an update turned into place after; the
        # leaves of a compressed model are coefficients, summed apart and projected at the end.
        flat = np.zeros_like(shapes) if model._MEAN_FRAME_UPDATES else shapes
        flat = flat.reshape(len(images), -1)
        coefficients = np.zeros((len(images), width), dtype=f32)
        adding = flat if basis is None else coefficients
        for tree in range(model.split_u_.shape[1]):
            node = np.zeros(len(images), dtype=int)
            while (node < n_splits).any():
                u = model.split_u_[stage, tree, node]
                v = model.split_v_[stage, tree, node]
                left = pixels[faces, u] - pixels[faces, v] > model.split_threshold_[stage, tree, node]
                node = 2 * node + np.where(left, 1, 2)
            leaves = model.leaf_values_[stage, tree, node - n_splits]
            if leaves.dtype == np.int16:
                sums += leaves
            else:
                adding = adding + leaves                                           # float32, tree by tree
        if model.leaf_values_.dtype == np.int16:
            summed = (sums * model.leaf_scale_[stage]).astype(f32)
            adding = summed if basis is not None else adding + summed
        if basis is None:
            flat = adding
        else:
            for j in range(width):                                                 # float32, vector by vector
                flat = flat + adding[:, j, None] * basis[stage, j]
        if model._MEAN_FRAME_UPDATES:
            dx, dy = flat[:, 0::2], flat[:, 1::2]
            a, b = A[:, 1, 1, None], A[:, 1, 0, None]
            shapes = shapes + np.stack([a * dx - b * dy, b * dx + a * dy], axis=2)
        else:
            shapes = flat.reshape(shapes.shape)
    return shapes.astype(np.float64) * size + origin
