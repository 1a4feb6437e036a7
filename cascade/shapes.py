"""Shape geometry: boxes and the unit frame, similarity fits, flips, jitter, initial shapes.

Coordinates
-----------
Pixel coordinates are 0-based ``(x, y)`` with the centre of the top-left pixel
at ``(0, 0)``. A box is ``(left, top, right, bottom)``. The *unit frame* of a
box maps ``left -> 0, right -> 1`` on x and ``top -> 0, bottom -> 1`` on y:
``u = (x - left) / (right - left)``, ``v = (y - top) / (bottom - top)``.
Mean shapes and cascade residuals live in that frame, so they do not depend
on face size.

A similarity is stored as ``(A, t)`` with ``A`` a ``(2, 2)`` scaled rotation
``[[a, -b], [b, a]]`` and ``t`` a ``(2,)`` shift, applied as ``x @ A.T + t``.
Batched functions take ``(n, L, 2)`` shapes and return ``(n, 2, 2)`` and ``(n, 2)``.
NaN marks a missing point throughout and is ignored by every fit and mean.
"""
import numpy as np

from ._ext import forest as _forest
from .schemes import scheme_of
from .validation import check_boxes, check_image, check_shapes


def tight_boxes(shapes):
    """Tight ``(left, top, right, bottom)`` box of each shape, NaN points ignored.

    ``(L, 2) -> (4,)`` or ``(n, L, 2) -> (n, 4)``.
    """
    shapes = np.asarray(shapes, dtype=np.float64)
    single = shapes.ndim == 2
    shapes = check_shapes(shapes[None] if single else shapes)
    boxes = np.concatenate([np.nanmin(shapes, axis=1), np.nanmax(shapes, axis=1)], axis=1)
    return boxes[0] if single else boxes


def to_unit(shapes, boxes):
    """Map ``(n, L, 2)`` pixel shapes into the unit frames of their ``(n, 4)`` boxes."""
    origin, size = _box_origin_size(boxes)
    return (np.asarray(shapes, dtype=np.float64) - origin) / size


def from_unit(unit_shapes, boxes):
    """Map ``(n, L, 2)`` unit-frame shapes back to pixels in their ``(n, 4)`` boxes."""
    origin, size = _box_origin_size(boxes)
    return np.asarray(unit_shapes, dtype=np.float64) * size + origin


def _box_origin_size(boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    return boxes[:, None, :2], boxes[:, None, 2:] - boxes[:, None, :2]


def mean_shape(shapes, boxes=None):
    """Mean ``(L, 2)`` shape in the unit frame; ``boxes`` default to the tight boxes."""
    shapes = check_shapes(shapes)
    boxes = tight_boxes(shapes) if boxes is None else check_boxes(boxes, len(shapes))
    unit = to_unit(shapes, boxes)
    never_seen = np.isnan(unit[..., 0]).all(axis=0)
    if never_seen.any():
        raise ValueError(f"landmarks {np.flatnonzero(never_seen).tolist()} are missing in every face")
    return np.nanmean(unit, axis=0)


def to_mean_frame(shapes):
    """Similarities ``(A, t)`` taking each ``(n, L, 2)`` shape onto the unit-frame mean of them all
    (:func:`mean_shape`; least squares over its points): a frame in which every face has the
    mean's position, size and roll, to compare or carry over what happens around faces."""
    shapes = check_shapes(shapes)
    return similarity_fit(shapes, np.broadcast_to(mean_shape(shapes), shapes.shape))


def similarity_fit(source, target):
    """Least-squares similarity taking ``source`` onto ``target`` (Procrustes, no reflection).

    ``source`` is ``(L, 2)`` or ``(n, L, 2)``, ``target`` is ``(n, L, 2)``; points
    missing (NaN) in either are left out of the fit of that face. Returns
    ``(A, t)`` with ``target[i] ~= source[i] @ A[i].T + t[i]``.
    """
    target = np.asarray(target, dtype=np.float64)
    source = np.asarray(source, dtype=np.float64)
    present = ~(np.isnan(source).any(axis=-1) | np.isnan(target).any(axis=2))   # (n, L)
    if present.all():
        src_mean = source.mean(axis=-2)
        dst_mean = target.mean(axis=1)
        src_c = source - src_mean[..., None, :]       # stays (L, 2) when source is one shape
        dst_c = target - dst_mean[:, None]
    else:
        count = present.sum(axis=1, keepdims=True)
        if (count == 0).any():
            raise ValueError("similarity_fit needs at least one point present in both shapes")
        w = present[..., None]
        src = np.where(w, source, 0.0)
        dst = np.where(w, target, 0.0)
        src_mean = src.sum(axis=1) / count
        dst_mean = dst.sum(axis=1) / count
        src_c = np.where(w, src - src_mean[:, None], 0.0)
        dst_c = np.where(w, dst - dst_mean[:, None], 0.0)
    norm = np.einsum("...ld,...ld->...", src_c, src_c)
    dot = np.einsum("...ld,...ld->...", src_c, dst_c)
    cross = (np.einsum("...l,...l->...", src_c[..., 0], dst_c[..., 1])
             - np.einsum("...l,...l->...", src_c[..., 1], dst_c[..., 0]))
    # A single point (or all points coincident) fixes no scale or angle: keep identity.
    degenerate = norm <= 1e-12 * np.maximum(1.0, np.einsum("...ld,...ld->...", dst_c, dst_c))
    safe_norm = np.where(degenerate, 1.0, norm)
    a = np.where(degenerate, 1.0, dot / safe_norm)
    b = np.where(degenerate, 0.0, cross / safe_norm)
    src_mean = np.broadcast_to(src_mean, dst_mean.shape)
    A = np.stack([np.stack([a, -b], axis=1), np.stack([b, a], axis=1)], axis=1)
    t = dst_mean - np.einsum("nij,nj->ni", A, src_mean)
    return A, t


def apply_similarity(shapes, A, t):
    """Apply batched similarities: ``(n, L, 2), (n, 2, 2), (n, 2) -> (n, L, 2)``."""
    return np.einsum("nlj,nij->nli", np.asarray(shapes, dtype=np.float64), A) + t[:, None, :]


def flip_image(image):
    """Mirror an image left to right (a view; no pixels are copied)."""
    return check_image(image)[:, ::-1]


def flip_shapes(shapes, image_width, scheme=None):
    """Mirror ``(n, L, 2)`` shapes left to right in images ``image_width`` pixels wide.

    ``x -> image_width - 1 - x``, then points are renumbered by the scheme's mirror
    map (:attr:`cascade.schemes.Scheme.flip`; ``scheme`` as :func:`cascade.schemes.scheme_of`
    takes it) so that the left eye stays the left eye.
    """
    shapes = check_shapes(shapes)
    permutation = scheme_of(scheme, shapes.shape[1]).flip_permutation
    flipped = shapes[:, permutation].copy()
    flipped[..., 0] = (np.asarray(image_width, dtype=np.float64).reshape(-1, 1) - 1.0) - flipped[..., 0]
    return flipped


def flip_boxes(boxes, image_width):
    """Mirror ``(n, 4)`` boxes left to right in images ``image_width`` pixels wide (as :func:`flip_shapes`)."""
    boxes = check_boxes(boxes)
    width = np.asarray(image_width, dtype=np.float64).reshape(-1) - 1.0
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def jitter_shapes(shapes, rng, scale=0.05, shift=0.05, rotation=0.0):
    """Perturb each shape by a random similarity about its centroid.

    The log of the scale factor, the shift (as a fraction of the shape's size,
    the square root of its tight box area) and the rotation (degrees) are drawn
    from normal distributions with the given standard deviations.
    """
    shapes = check_shapes(shapes)
    n = len(shapes)
    factor = np.exp(rng.normal(0.0, scale, n))
    angle = np.deg2rad(rng.normal(0.0, rotation, n))
    boxes = tight_boxes(shapes)
    size = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    centre = np.nanmean(shapes, axis=1)
    a, b = factor * np.cos(angle), factor * np.sin(angle)
    A = np.stack([np.stack([a, -b], axis=1), np.stack([b, a], axis=1)], axis=1)
    t = centre + rng.normal(0.0, shift, (n, 2)) * size[:, None] - np.einsum("nij,nj->ni", A, centre)
    return apply_similarity(shapes, A, t)


def jitter_boxes(boxes, rng, scale=0.05, shift=0.05):
    """Randomly rescale (log-normal, about the centre) and shift (fraction of size) boxes."""
    boxes = check_boxes(boxes)
    n = len(boxes)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * np.exp(rng.normal(0.0, scale, (n, 1)))
    centre = centre + rng.normal(0.0, shift, (n, 2)) * half * 2
    return np.concatenate([centre - half, centre + half], axis=1)


def sample_initial_indices(n_faces, n_init, rng, pool=None):
    """For each of ``n_faces`` training faces, ``n_init`` other faces to start from.

    Returns ``(n_faces, n_init)`` indices; a face never starts from itself, and
    the choices are distinct when there are enough other faces. ``pool`` (indices)
    restricts the choice to those faces (all of them by default).
    """
    pool = np.arange(n_faces) if pool is None else np.asarray(pool, dtype=np.intp)
    if len(pool) < 2:
        raise ValueError("initial shapes are drawn from other faces: need at least 2 faces")
    if n_init < 1:
        raise ValueError(f"n_init must be at least 1, got {n_init}")
    in_pool = np.full(n_faces, -1, dtype=np.intp)
    in_pool[pool] = np.arange(len(pool))
    indices = np.empty((n_faces, n_init), dtype=np.intp)
    for face in range(n_faces):
        own = in_pool[face]
        others = len(pool) - (own >= 0)
        chosen = rng.choice(others, size=n_init, replace=n_init > others)
        indices[face] = pool[chosen + ((chosen >= own) & (own >= 0))]
    return indices


def frames_from_points(mean_points, points):
    """Where a cascade starts from five points: the frame in which its mean shape lands on them.

    ``mean_points`` are the ``(5, 2)`` five points of the mean shape in the unit frame
    (:meth:`cascade.schemes.Scheme.five_points`), ``points`` ``(n, 5, 2)`` five points per
    face in pixels, in the same order. The similarity ``x -> s R x + t``
    taking the mean's five points onto each face's (least squares) places the mean shape; it is
    returned as a square box, its unit frame the similarity without the rotation (centre
    ``s R (0.5, 0.5) + t``, side ``s``), and the roll, the rotation's angle in radians.
    So the start is the mean shape turned by the roll about the box centre
    (:func:`rotate_about_centre`), and a face that is not rolled starts from the mean
    shape in a box, exactly as from a face box. Returns ``(boxes (n, 4), rolls (n,))``; a face
    with a NaN point gets a NaN frame (callers check their points first).
    """
    # Compiled: a face per call starts here, and NumPy's overhead would cost more than its cascade.
    return _forest.frames_from_points(np.ascontiguousarray(mean_points, dtype=np.float64),
                                      np.ascontiguousarray(points, dtype=np.float64))


def rotate_about_centre(unit_shapes, rolls):
    """``(n, L, 2)`` unit-frame shapes turned by ``rolls`` ``(n,)`` radians about the frame's
    centre ``(0.5, 0.5)``; ``unit_shapes`` may be one ``(L, 2)`` shape for every face."""
    rolls = np.asarray(rolls, dtype=np.float64)
    cos, sin = np.cos(rolls)[:, None], np.sin(rolls)[:, None]
    centred = np.asarray(unit_shapes, dtype=np.float64) - 0.5
    x, y = centred[..., 0], centred[..., 1]
    return np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1) + 0.5
