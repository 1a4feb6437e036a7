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

from .validation import check_boxes, check_image, check_shapes


def _ibug68_flip():
    pairs = [(i, 16 - i) for i in range(8)]                   # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]             # brows
    pairs += [(31, 35), (32, 34)]                             # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]            # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]                                # inner lips
    permutation = np.arange(68)
    for left, right in pairs:
        permutation[left], permutation[right] = right, left
    permutation.flags.writeable = False
    return permutation


#: Left/right permutation of the 68-point iBUG scheme: after a horizontal flip,
#: point ``i`` of the new shape is point ``IBUG68_FLIP[i]`` of the old one, mirrored.
IBUG68_FLIP = _ibug68_flip()


#: Left/right permutation of the five points of :func:`five_points` (as :data:`IBUG68_FLIP`).
FIVE_POINT_FLIP = np.array([1, 0, 2, 4, 3])
FIVE_POINT_FLIP.flags.writeable = False


def five_points(shapes):
    """``(..., 5, 2)``: the eye centres (means of points 36-41 and 42-47), the nose tip (30) and
    the mouth corners (48, 54) of ``(..., 68, 2)`` shapes, in the order face detectors (YuNet)
    and face-recognition crops use: the eye on the image's left, the other eye, the nose tip,
    the mouth corner on the image's left, the other corner."""
    shapes = np.asarray(shapes, dtype=np.float64)
    if shapes.shape[-2:] != (68, 2):
        raise ValueError(f"five points are defined on the 68-point scheme; got shapes of {shapes.shape[-2]} points")
    return np.stack([shapes[..., 36:42, :].mean(axis=-2), shapes[..., 42:48, :].mean(axis=-2),
                     shapes[..., 30, :], shapes[..., 48, :], shapes[..., 54, :]], axis=-2)


#: The curves of the 68-point iBUG scheme, as ``(first, last, closed)`` index ranges:
#: jaw, brows, nose bridge, nostrils, eyes, outer and inner lips.
IBUG68_CONTOURS = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False),
                   (31, 35, False), (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))


def contour_neighbours(n_landmarks, contours=None, mean=None):
    """``(L, 2)`` indices: each point's neighbours before and after it along its curve.

    An open curve's end is its own neighbour on the open side. Without
    ``contours`` (built in for 68 points), a point's neighbours are its two
    nearest points in ``mean`` ``(L, 2)``.
    """
    if contours is None and n_landmarks == 68:
        contours = IBUG68_CONTOURS
    if contours is None:
        if mean is None or n_landmarks < 3:
            return np.stack([np.arange(n_landmarks), (np.arange(n_landmarks) + 1) % n_landmarks],
                            axis=1).astype(np.int32)
        distance = np.linalg.norm(mean[:, None] - mean[None], axis=2)
        np.fill_diagonal(distance, np.inf)
        return np.argsort(distance, axis=1)[:, :2].astype(np.int32)
    neighbours = np.stack([np.arange(n_landmarks)] * 2, axis=1)
    for contour in contours:
        first, last, closed = _check_contour(contour, n_landmarks)
        points = np.arange(first, last + 1)
        before, after = np.roll(points, 1), np.roll(points, -1)
        if not closed:
            before[0], after[-1] = points[0], points[-1]
        neighbours[points] = np.stack([before, after], axis=1)
    return neighbours.astype(np.int32)


def _check_contour(contour, n_landmarks):
    """``contour`` as ``(first, last, closed)``; a ValueError unless it is one inside the scheme."""
    def is_index(value):
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not (isinstance(contour, (tuple, list)) and len(contour) == 3 and is_index(contour[0])
            and is_index(contour[1]) and 0 <= contour[0] <= contour[1] < n_landmarks):
        raise ValueError(f"a contour must be (first, last, closed) with integers 0 <= first <= last "
                         f"< {n_landmarks}, got {contour!r}")
    return contour


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


def flip_shapes(shapes, image_width, permutation=None):
    """Mirror ``(n, L, 2)`` shapes left to right in images ``image_width`` pixels wide.

    ``x -> image_width - 1 - x``, then points are renumbered with ``permutation``
    so that the left eye stays the left eye. It defaults to :data:`IBUG68_FLIP`
    for 68 points; other schemes must give their own.
    """
    shapes = check_shapes(shapes)
    permutation = flip_permutation(shapes.shape[1], permutation)
    flipped = shapes[:, permutation].copy()
    flipped[..., 0] = (np.asarray(image_width, dtype=np.float64).reshape(-1, 1) - 1.0) - flipped[..., 0]
    return flipped


def flip_boxes(boxes, image_width):
    """Mirror ``(n, 4)`` boxes left to right in images ``image_width`` pixels wide (as :func:`flip_shapes`)."""
    boxes = check_boxes(boxes)
    width = np.asarray(image_width, dtype=np.float64).reshape(-1) - 1.0
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def flip_permutation(n_landmarks, permutation=None):
    """Check a left/right permutation (an involution of ``range(n_landmarks)``)."""
    if permutation is None:
        if n_landmarks != 68:
            raise ValueError(f"no built-in flip permutation for {n_landmarks} landmarks; "
                             "pass permutation= (point i of the mirror is point permutation[i])")
        return IBUG68_FLIP
    permutation = np.asarray(permutation)
    if permutation.shape != (n_landmarks,) or not np.issubdtype(permutation.dtype, np.integer):
        raise ValueError(f"permutation must be {n_landmarks} integers, got {permutation!r}")
    if not np.array_equal(np.sort(permutation), np.arange(n_landmarks)):
        raise ValueError("permutation must contain each landmark index exactly once")
    if not np.array_equal(permutation[permutation], np.arange(n_landmarks)):
        raise ValueError("permutation must be its own inverse (left<->right pairs)")
    return permutation


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


def sample_initial_indices(n_faces, n_init, rng):
    """For each of ``n_faces`` training faces, ``n_init`` other faces to start from.

    Returns ``(n_faces, n_init)`` indices; a face never starts from itself, and
    the choices are distinct when there are enough other faces.
    """
    if n_faces < 2:
        raise ValueError("initial shapes are drawn from other faces: need at least 2 faces")
    if n_init < 1:
        raise ValueError(f"n_init must be at least 1, got {n_init}")
    others = n_faces - 1
    indices = np.empty((n_faces, n_init), dtype=np.intp)
    for face in range(n_faces):
        chosen = rng.choice(others, size=n_init, replace=n_init > others)
        indices[face] = chosen + (chosen >= face)
    return indices


def frames_from_points(mean, points):
    """Where a cascade starts from five points: the frame in which its mean shape lands on them.

    ``mean`` is the ``(68, 2)`` mean shape in the unit frame, ``points`` ``(n, 5, 2)`` five
    points per face in pixels (:func:`five_points` order). The similarity ``x -> s R x + t``
    taking the mean's five points onto each face's (least squares) places the mean shape; it is
    returned as a square box, its unit frame the similarity without the rotation (centre
    ``s R (0.5, 0.5) + t``, side ``s``), and the roll, the rotation's angle in radians.
    So the start is the mean shape turned by the roll about the box centre
    (:func:`rotate_about_centre`), and a face that is not rolled starts from the mean
    shape in a box, exactly as from a face box. Returns ``(boxes (n, 4), rolls (n,))``.
    """
    A, t = similarity_fit(five_points(mean), points)
    scale = np.hypot(A[:, 0, 0], A[:, 1, 0])
    rolls = np.arctan2(A[:, 1, 0], A[:, 0, 0])
    centre = A @ np.array([0.5, 0.5]) + t
    half = scale[:, None] / 2
    return np.concatenate([centre - half, centre + half], axis=1), rolls


def rotate_about_centre(unit_shapes, rolls):
    """``(n, L, 2)`` unit-frame shapes turned by ``rolls`` ``(n,)`` radians about the frame's
    centre ``(0.5, 0.5)``; ``unit_shapes`` may be one ``(L, 2)`` shape for every face."""
    rolls = np.asarray(rolls, dtype=np.float64)
    cos, sin = np.cos(rolls)[:, None], np.sin(rolls)[:, None]
    centred = np.asarray(unit_shapes, dtype=np.float64) - 0.5
    x, y = centred[..., 0], centred[..., 1]
    return np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1) + 0.5
