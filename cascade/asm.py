"""ASM: the active shape model (Cootes, Taylor, Cooper & Graham 1995) with 2-D local descriptors.

Not a regressor but a fitter. A point distribution model (:mod:`cascade.pdm`)
says which shapes are faces; a local appearance model per landmark and
resolution says how well the image around a position matches that landmark.
The search starts from the mean shape placed on the face (in its box, or by five
points, which also give the face's roll) and, from the coarsest resolution to
the finest: crops the face upright at that resolution by the similarity that
maps the current shape onto the mean shape, then repeats: score every position
within ``search_range`` pixels of each landmark (a 2-D grid) with the
landmark's appearance model, move the landmark to the positions' mean weighted
towards the best scores (``MATCH_TEMPERATURE``), and replace the points by the
closest shape of the PDM (shape parameters clamped to ``clamp``
standard deviations), until the points stop moving.

Local descriptor. In a crop, gradient orientations (unsigned, ``N_ORIENTATIONS``
bins, each pixel's magnitude split between its two nearest bins) are summed over
``cell_size`` x ``cell_size`` cells (a box filter: one map per orientation);
the descriptor of a position is the ``N_CELLS`` x ``N_CELLS`` cells around it
(a SIFT/HOG-like vector of 128 values), normalised to unit length, clipped at
``DESCRIPTOR_CLIP`` and normalised again, which discounts lighting and contrast.

Appearance model. A linear map from the descriptor to how close the position
is to the true point: ridge regression onto ``exp(-d^2 / (2 sigma^2))`` (``d``
the distance in pixels of the resolution, ``sigma`` = ``MATCH_SIGMA``), trained
at the true points of the training faces and at positions displaced around
them (Milborrow & Nicolls' stacked ASMs learn descriptor matches too, with MARS).

Frames. At level ``l`` the crop puts the mean shape (``mean_shape_``, unit
frame) at ``face_size / 2**l`` pixels per unit with a margin of ``CROP_MARGIN``
of that size around it, and the current shape is mapped there by its
least-squares similarity; a training face is cropped by its true shape's.
"""
import cv2
import numpy as np

from .base import BaseCascade
from .pdm import fit_to_points, principal_components, procrustes_align
from .shapes import apply_similarity, from_unit, rotate_about_centre, similarity_fit
from .threads import map_in_order
from .validation import check_integer, check_real

#: Orientation bins of the local descriptor (unsigned gradients, 0 to 180 degrees).
N_ORIENTATIONS = 8
#: Cells on a side of the descriptor's grid.
N_CELLS = 4
#: SIFT's clip of normalised descriptor values (then normalised again).
DESCRIPTOR_CLIP = 0.2
#: The width, in pixels of the level, of the match score the appearance models learn.
MATCH_SIGMA = 1.0
#: How sharply a landmark's target favours its best-scoring positions: the target is the mean of
#: the positions weighted by ``exp((score - best score) / MATCH_TEMPERATURE)`` (sub-pixel, and
#: steadier than the best position alone: on the validation split, 6.75 % NME from five points
#: against 7.36 %, both with 4 iterations a level).
MATCH_TEMPERATURE = 0.02
#: The crop's margin around the mean shape's unit square, as a fraction of its side, per side.
CROP_MARGIN = 0.5
#: Training faces whose samples are stacked into one matrix product.
FACES_PER_BLOCK = 16
#: A face has converged at a level when its points moved less than this (pixels of the level), median.
CONVERGED_MOVE = 0.5


class ASM(BaseCascade):
    """Active shape model with 2-D descriptor search over several resolutions.

    Parameters
    ----------
    n_levels : resolutions searched, coarsest first (3): level ``l`` puts the face at
        ``face_size / 2**l`` pixels
    face_size : side of the mean shape's unit square at the finest level, in pixels (96)
    cell_size : side of a descriptor cell, in pixels of every level (4)
    search_range : positions tried each side of a landmark, in pixels of the level, on a 2-D
        grid (3: 7 x 7 positions)
    max_iterations : search iterations per level at most (8)
    variance_kept : fraction of the shape variance the PDM keeps (0.98)
    clamp : shape parameters are limited to this many standard deviations (3.0)
    alpha : ridge penalty of the appearance models, relative to their descriptors' mean
        energy (1.0)
    mirror : also train on the mirror image of every face (True)
    scheme : the landmark scheme (:class:`cascade.schemes.Scheme` or a registered name): the
        mirror map for ``mirror``, the five points for five-point starts; None: the built-in
        scheme of the training shapes' point count (68: iBUG)
    n_jobs : threads for training and prediction (1; -1 for all cores)

    ``fit`` leaves missing (NaN) points out of the appearance models and fills them from the
    mean shape for the PDM (:func:`cascade.pdm.procrustes_align`).
    """

    _ARRAYS = {
        "mean_shape_": (["float64"], 2),
        "pdm_mean_": (["float64"], 2),
        "components_": (["float64"], 2),
        "variances_": (["float64"], 1),
        "appearance_": (["float32"], 3),
    }
    _SHAPE_ARRAYS = ("mean_shape_", "pdm_mean_")

    def __init__(self, n_levels=3, face_size=96, cell_size=4, search_range=3, max_iterations=8,
                 variance_kept=0.98, clamp=3.0, alpha=1.0, mirror=True, scheme=None, n_jobs=1):
        self.n_levels = n_levels
        self.face_size = face_size
        self.cell_size = cell_size
        self.search_range = search_range
        self.max_iterations = max_iterations
        self.variance_kept = variance_kept
        self.clamp = clamp
        self.alpha = alpha
        self.mirror = mirror
        self.scheme = scheme
        self.n_jobs = n_jobs

    # -- training ---------------------------------------------------------------------

    def _fit(self, images, shapes, boxes, rolls, mean):
        self._check_params()
        self.mean_shape_ = mean
        aligned, self.pdm_mean_ = procrustes_align(shapes)
        self.components_, self.variances_ = principal_components(aligned, self.pdm_mean_, self.variance_kept)
        n_landmarks, size = shapes.shape[1], N_ORIENTATIONS * N_CELLS ** 2 + 1
        offsets = _training_offsets(self.search_range)
        wanted = np.exp(-(offsets ** 2).sum(axis=1) / (2 * MATCH_SIGMA ** 2))
        gram = np.zeros((self.n_levels, n_landmarks, size, size))
        moment = np.zeros((self.n_levels, n_landmarks, size))

        def block_sums(start):
            # A block of faces at a time: one matrix product per level for all its samples.
            block = range(start, min(start + FACES_PER_BLOCK, len(images)))
            sums = []
            for level in range(self.n_levels):
                features = np.concatenate([self._training_features(images[i], shapes[i], level, offsets)
                                           for i in block], axis=1)                 # (L, faces * K, D + 1)
                sums.append((np.matmul(features.transpose(0, 2, 1), features),
                             np.einsum("lsd,s->ld", features, np.tile(wanted, len(block)))))
            return sums

        # Added block by block in the blocks' order: the same sums, so the same model, whatever n_jobs.
        for sums in map_in_order(block_sums, range(0, len(images), FACES_PER_BLOCK), self.n_jobs):
            for level, (block_gram, block_moment) in enumerate(sums):
                gram[level] += block_gram
                moment[level] += block_moment
        energy = np.trace(gram, axis1=2, axis2=3) / size                        # (levels, L)
        penalty = self.alpha * energy[..., None, None] * np.eye(size)
        penalty[..., -1, -1] = 0.0                                              # the bias is free
        self.appearance_ = np.linalg.solve(gram + penalty, moment[..., None])[..., 0].astype(np.float32)

    def _training_features(self, image, shape, level, offsets):
        """``(L, K, D + 1)`` descriptors (and the bias) at ``offsets`` around each true point of one
        face at ``level``; zeros for its missing points."""
        maps, to_crop = self._descriptor_maps(image, shape, level)
        points = apply_similarity(shape[None], *to_crop)[0]
        features = _with_bias(self._descriptors(maps, np.nan_to_num(points)[:, None] + offsets))
        features[np.isnan(shape).any(axis=1)] = 0.0
        return features

    # -- search -----------------------------------------------------------------------

    def _predict(self, images, boxes, rolls=None):
        starts = (np.broadcast_to(self.mean_shape_, (len(images), *self.mean_shape_.shape)) if rolls is None
                  else rotate_about_centre(self.mean_shape_, rolls))
        out = from_unit(starts, boxes)

        def fill(chunk):
            for face in range(chunk.start, chunk.stop):
                out[face] = self._search(images[face], out[face])

        self._map_faces(fill, len(images))
        return out

    def _search(self, image, shape):
        """The landmarks of one face, searched from ``shape`` (pixels) over the levels."""
        grid = _search_grid(self.search_range)
        for level in reversed(range(self.n_levels)):
            maps, (A, t) = self._descriptor_maps(image, shape, level)
            points = apply_similarity(shape[None], A, t)[0]
            for _ in range(self.max_iterations):
                positions = points[:, None] + grid                                  # (L, K, 2)
                scores = _with_bias(self._descriptors(maps, positions)) @ self.appearance_[level][:, :, None]
                scores = scores[..., 0]
                weights = np.exp((scores - scores.max(axis=1, keepdims=True)) / MATCH_TEMPERATURE)
                targets = (weights[..., None] * positions).sum(axis=1) / weights.sum(axis=1)[:, None]
                fitted = fit_to_points(targets[None], self.pdm_mean_, self.components_, self.variances_,
                                       self.clamp)[0]
                moved = np.median(np.linalg.norm(fitted - points, axis=1))
                points = fitted
                if moved < CONVERGED_MOVE:
                    break
            inverse = np.linalg.inv(A[0])
            shape = (points - t[0]) @ inverse.T
        return shape

    # -- descriptors ------------------------------------------------------------------

    def _descriptor_maps(self, image, shape, level):
        """The orientation-cell maps ``(S, S, N_ORIENTATIONS)`` of the face's crop at ``level``
        and the similarity ``(A (1, 2, 2), t (1, 2))`` from image pixels to crop pixels."""
        scale = self.face_size / 2 ** level
        side = int(round(scale * (1 + 2 * CROP_MARGIN)))
        reference = (self.mean_shape_ + CROP_MARGIN) * scale
        A, t = similarity_fit(shape[None], reference[None])
        crop = _crop(image, A[0], t[0], side)
        return _orientation_cells(crop, self.cell_size), (A, t)

    def _descriptors(self, maps, positions):
        """Normalised descriptors ``(..., 128)`` at ``positions`` ``(..., 2)`` (crop pixels)."""
        cells = (np.arange(N_CELLS) - (N_CELLS - 1) / 2) * self.cell_size
        offsets = np.stack(np.meshgrid(cells, cells), axis=-1).reshape(-1, 2)       # (C, 2), x then y
        where = np.rint(positions[..., None, :] + offsets).astype(np.intp)
        side = maps.shape[0]
        x = np.clip(where[..., 0], 0, side - 1)
        y = np.clip(where[..., 1], 0, side - 1)
        values = maps[y, x].reshape(*positions.shape[:-1], -1)
        return _normalised(values)

    def _check_params(self):
        for name in ("n_levels", "face_size", "cell_size", "search_range", "max_iterations"):
            check_integer(getattr(self, name), name)
        if self.face_size >> (self.n_levels - 1) < N_CELLS * self.cell_size:
            raise ValueError(f"face_size {self.face_size} is too small for {self.n_levels} levels: the "
                             f"coarsest face would be smaller than a descriptor")
        check_real(self.variance_kept, "variance_kept", high=1)
        check_real(self.clamp, "clamp")
        check_real(self.alpha, "alpha")

    def _check_arrays(self):
        self._check_params()
        n_landmarks = len(self.mean_shape_)
        n_components = len(self.variances_)
        expected = {
            "mean_shape_": (n_landmarks, 2), "pdm_mean_": (n_landmarks, 2),
            "components_": (n_components, 2 * n_landmarks), "variances_": (n_components,),
            "appearance_": (self.n_levels, n_landmarks, N_ORIENTATIONS * N_CELLS ** 2 + 1),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape} "
                                 f"(from the parameters and the landmark count)")
        if n_landmarks < 1:
            raise ValueError("the model has no landmarks")
        if (self.variances_ < 0).any():
            raise ValueError("variances_ must not be negative")
        for name in ("components_", "appearance_"):
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"{name} holds non-finite values")


def _crop(image, A, t, side):
    """The ``side`` x ``side`` grey crop of ``image`` under the similarity ``x -> A x + t``.

    Only the region the crop covers is read and converted; a face much larger than the crop is
    first shrunk by averaging, so the crop does not alias."""
    scale = np.sqrt(abs(np.linalg.det(A)))
    inverse = np.linalg.inv(A)
    corners = (np.array([[0, 0], [side, 0], [0, side], [side, side]], np.float64) - t) @ inverse.T
    left, top = np.floor(corners.min(axis=0) - 2).astype(int)
    right, bottom = np.ceil(corners.max(axis=0) + 2).astype(int)
    height, width = image.shape[:2]
    left, top = min(max(left, 0), width - 1), min(max(top, 0), height - 1)
    right, bottom = max(min(right, width), left + 1), max(min(bottom, height), top + 1)
    region = np.ascontiguousarray(image[top:bottom, left:right])
    grey = region if region.ndim == 2 else cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    affine = np.hstack([A, (t + A @ [left, top])[:, None]])                      # region pixels -> crop
    if scale < 0.5:
        h, w = grey.shape
        size = (max(1, round(w * 2 * scale)), max(1, round(h * 2 * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        fx, fy = size[0] / w, size[1] / h
        # A shrunk pixel q covers region pixels around p = (q + 0.5) / f - 0.5.
        affine = affine @ np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
    return cv2.warpAffine(grey, affine, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _orientation_cells(crop, cell_size):
    """``(S, S, N_ORIENTATIONS)`` float32: each pixel's gradient magnitudes by orientation,
    summed over the ``cell_size`` x ``cell_size`` cell centred on it."""
    grey = crop.astype(np.float32)
    dx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=1)
    dy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=1)
    magnitude, angle = cv2.cartToPolar(dx, dy)
    position = (angle % np.pi) * (N_ORIENTATIONS / np.pi)                          # [0, N)
    lower = np.floor(position).astype(np.intp) % N_ORIENTATIONS
    upper_share = position - np.floor(position)
    maps = np.zeros((*crop.shape, N_ORIENTATIONS), np.float32)
    rows, columns = np.indices(crop.shape)
    maps[rows, columns, lower] = magnitude * (1 - upper_share)
    maps[rows, columns, (lower + 1) % N_ORIENTATIONS] += magnitude * upper_share
    return cv2.boxFilter(maps, -1, (cell_size, cell_size), normalize=False, borderType=cv2.BORDER_REPLICATE)


def _normalised(values):
    values = values / (np.linalg.norm(values, axis=-1, keepdims=True) + 1e-6)
    values = np.minimum(values, DESCRIPTOR_CLIP)
    return values / (np.linalg.norm(values, axis=-1, keepdims=True) + 1e-6)


def _with_bias(descriptors):
    return np.concatenate([descriptors, np.ones((*descriptors.shape[:-1], 1), descriptors.dtype)], axis=-1)


def _search_grid(reach):
    """``(K, 2)`` integer offsets within ``reach`` pixels on each axis (the centre first)."""
    steps = np.arange(-reach, reach + 1)
    grid = np.stack(np.meshgrid(steps, steps), axis=-1).reshape(-1, 2).astype(np.float64)
    return grid[np.argsort(np.abs(grid).sum(axis=1), kind="stable")]


def _training_offsets(reach):
    """Where the appearance models learn, around each true point: every position of the search
    grid of ``reach`` + 1 (so the model has seen what lies just beyond the grid)."""
    return _search_grid(reach + 1)
